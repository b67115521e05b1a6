"""Through the API against the real dev server and worker: what an integration and an agent see."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.service import RPCError

from activities.channels import build_senders
from api.app import create_app
from tests.api.conftest import PROBLEM, System, invoice_body, new_id
from worker import build_workers, running
from workflows.journey import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


def body_link(invoice_id: str) -> str:
    return f"https://pay.example.com/{invoice_id}"


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]


def messages(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["detail"] for e in view["timeline"] if e["kind"] == "message"]


async def test_start_is_idempotent_and_conflicts_are_refused(system: System) -> None:
    invoice_id = new_id()
    body = invoice_body(invoice_id, due_in=3600)
    first = await system.post("/v1/invoices", body, role="integration")
    assert first.status_code == 201, first.text
    assert first.json()["stage"] == "scheduled"
    assert first.json()["outstanding"] == "1250.00"

    again = await system.post("/v1/invoices", body, role="integration")
    assert again.status_code == 200
    assert again.json()["invoice_id"] == invoice_id

    conflicting = await system.post("/v1/invoices", {**body, "amount": "99.00"}, role="integration")
    assert conflicting.status_code == 409
    assert conflicting.headers["content-type"] == PROBLEM
    assert invoice_id in conflicting.json()["detail"]
    assert (await system.invoice(invoice_id))["amount"] == "1250.00"


async def test_rejected_input_leaves_nothing_behind(system: System) -> None:
    invoice_id = new_id()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"currency": "EUX"}, "currency"),
        ({"amount": "12.345"}, "decimals"),
        ({"amount": "-5.00"}, "amount"),
        ({"policy": "no-such-policy"}, "no policy"),
        ({"customer": {"id": "C-1", "name": "No contact"}}, "email or a phone"),
        ({"customer": {"id": "C-1", "name": "x", "email": "a@b.nl", "timezone": "Mars/Olympus"}},
         "time zone"),
    ]  # fmt: skip
    for change, words in cases:
        response = await system.post(
            "/v1/invoices", {**invoice_body(invoice_id), **change}, role="integration"
        )
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert words in response.json()["detail"], response.json()["detail"]

    assert (await system.get(f"/v1/invoices/{invoice_id}")).status_code == 404
    with pytest.raises(RPCError):
        await system.env.client.get_workflow_handle(workflow_id(invoice_id)).describe()


async def test_authentication_and_roles(system: System) -> None:
    body = invoice_body(new_id())
    no_key = await system.api.post("/v1/invoices", json=body)
    assert no_key.status_code == 401 and no_key.headers["content-type"] == PROBLEM
    bad_key = await system.api.post(
        "/v1/invoices", json=body, headers={"Authorization": "Bearer guess"}
    )
    assert bad_key.status_code == 401
    wrong_role = await system.post("/v1/invoices", body, role="agent")
    assert wrong_role.status_code == 403
    assert "integration" in wrong_role.json()["detail"]
    admin = await system.post("/v1/invoices", body, role="admin")
    assert admin.status_code == 201


async def test_unknown_invoice_and_unknown_route_are_404_problems(system: System) -> None:
    missing = await system.get("/v1/invoices/INV-nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "POST /v1/invoices" in missing.json()["detail"]
    dispute = await system.post("/v1/invoices/INV-nope/disputes", {"reason": "x"})
    assert dispute.status_code == 404
    route = await system.get("/v1/nothing-here")
    assert route.status_code == 404 and route.headers["content-type"] == PROBLEM


async def test_an_action_the_journey_applied_is_answered_even_when_its_row_cannot_be_read(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row (for the answer's currency) is read beside the update: a database that fails that
    read must not turn an applied dispute into an error the agent would retry."""
    invoice_id = new_id()
    body = {**invoice_body(invoice_id, due_in=3600), "currency": "JPY", "amount": "125000"}
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    await system.until(invoice_id, lambda v: v["stage"] == "scheduled")
    real = system.store.get_invoice

    def unreadable(wanted: str, *args: Any, **kwargs: Any) -> Any:
        if wanted == invoice_id:
            raise sa.exc.OperationalError("SELECT invoices", {}, ConnectionError("server closed"))
        return real(wanted, *args, **kwargs)

    monkeypatch.setattr(system.store, "get_invoice", unreadable)
    disputed = await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "damaged"})

    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["stage"] == "disputed"
    assert disputed.json()["outstanding"] == "125000"  # yen: no decimals, from the start event
    monkeypatch.undo()
    assert (await system.invoice(invoice_id))["stage"] == "disputed"


async def test_short_policy_runs_through_dispute_and_payments_to_paid(system: System) -> None:
    invoice_id = new_id()
    started = await system.post("/v1/invoices", invoice_body(invoice_id), role="integration")
    assert started.status_code == 201, started.text

    view = await system.until(invoice_id, lambda v: len(messages(v)) == 3)  # email, email+sms
    # A step's channels go out together: their order within the step is not fixed.
    assert sorted((m["template"], m["channel"]) for m in messages(view)) == [
        ("overdue_1", "email"),
        ("overdue_2", "email"),
        ("overdue_2", "sms"),
    ]
    assert {m["status"] for m in messages(view)} == {"sent"}
    assert view["next_action"]["step"] == "final_notice"
    emails = [r for r in system.providers.received if r["provider"] == "sendgrid"]
    assert len(emails) == 2 and invoice_id in str(emails[0])
    sent = (await system.get(f"/v1/invoices/{invoice_id}/messages")).json()
    assert sorted((m["template"], m["channel"], m["status"]) for m in sent) == [
        ("overdue_1", "email", "sent"),
        ("overdue_2", "email", "sent"),
        ("overdue_2", "sms", "sent"),
    ]
    assert sent[0]["template"] == "overdue_1"  # steps in order, oldest first
    assert "€ 1.250,00" in sent[0]["body"] and body_link(invoice_id) in sent[0]["body"]

    disputed = await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "damaged"})
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["stage"] == "disputed"
    assert (await system.invoice(invoice_id))["stage"] == "disputed"  # read your writes
    twice = await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "again"})
    assert twice.status_code == 409 and "already open" in twice.json()["detail"]

    resolved = await system.post(
        f"/v1/invoices/{invoice_id}/disputes/resolution", {"outcome": "rejected"}
    )
    assert resolved.json()["stage"] == "reminding"

    payment = {"amount": "250.00", "reference": "BANK-1"}
    applied = await system.post(f"/v1/invoices/{invoice_id}/payments", payment, "integration")
    assert applied.status_code == 200, applied.text
    assert applied.json() | {"detail": ""} == {
        "invoice_id": invoice_id, "reference": "BANK-1", "applied": True,
        "outstanding": "1000.00", "stage": "reminding", "outcome": None, "detail": "",
    }  # fmt: skip
    assert (await system.invoice(invoice_id))["outstanding"] == "1000.00"  # read your writes
    # The billing system reports the same payment again: counted once, not as an overpayment.
    again = await system.post(f"/v1/invoices/{invoice_id}/payments", payment, "integration")
    assert again.status_code == 200 and again.json()["outstanding"] == "1000.00"
    view = await system.invoice(invoice_id)
    assert view["outstanding"] == "1000.00" and view["stage"] == "reminding"
    assert kinds(view).count("payment") == 1
    assert view["workflow_id"] == f"invoice-{invoice_id}"

    rest = {"amount": "1000.00", "reference": "BANK-2"}
    await system.post(f"/v1/invoices/{invoice_id}/payments", rest, "integration")
    view = await system.until(
        invoice_id, lambda v: v["stage"] == "paid" and "thank_you" in str(messages(v))
    )
    assert view["outcome"] == "paid" and view["outstanding"] == "0.00"
    assert view["next_action"] is None
    for kind in ("journey_started", "dispute_opened", "dispute_resolved", "payment", "closed"):
        assert kind in kinds(view)
    assert kinds(view)[0] == "journey_started"

    late = await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "late"})
    assert late.status_code == 409 and "closed (paid)" in late.json()["detail"]

    # Operators find the journey in Temporal by customer, with its stage kept current.
    query = f'CustomerId="C-{invoice_id}" AND JourneyStage="paid"'
    found = [w.id async for w in system.env.client.list_workflows(query)]
    assert found == [workflow_id(invoice_id)]


async def test_validation_inside_the_journey_answers_422_or_409(system: System) -> None:
    invoice_id = new_id()
    await system.post("/v1/invoices", invoice_body(invoice_id, due_in=3600), "integration")
    no_dispute = await system.post(
        f"/v1/invoices/{invoice_id}/disputes/resolution", {"outcome": "rejected"}
    )
    assert no_dispute.status_code == 409 and "no open dispute" in no_dispute.json()["detail"]
    await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "price"})
    too_much = await system.post(
        f"/v1/invoices/{invoice_id}/disputes/resolution",
        {"outcome": "adjusted", "amount": "5000.00"},
    )
    assert too_much.status_code == 422 and "more than the outstanding" in too_much.json()["detail"]
    missing_amount = await system.post(
        f"/v1/invoices/{invoice_id}/disputes/resolution", {"outcome": "adjusted"}
    )
    assert missing_amount.status_code == 422
    cancelled = await system.post(f"/v1/invoices/{invoice_id}/cancel", {"reason": "credit note"})
    assert cancelled.json()["outcome"] == "cancelled"
    resumed = await system.post(f"/v1/invoices/{invoice_id}/resume", {"reason": "x"})
    assert resumed.status_code == 409


async def test_pause_resume_and_write_off(system: System) -> None:
    invoice_id = new_id()
    await system.post("/v1/invoices", invoice_body(invoice_id, due_in=3600), "integration")
    paused = await system.post(f"/v1/invoices/{invoice_id}/pause", {"reason": "holiday"})
    assert paused.json()["stage"] == "paused"
    assert (await system.invoice(invoice_id))["next_action"] is None
    resumed = await system.post(f"/v1/invoices/{invoice_id}/resume", {"reason": "back"})
    assert resumed.json()["stage"] == "scheduled"
    written = await system.post(f"/v1/invoices/{invoice_id}/write-off", {"reason": "bankrupt"})
    assert written.json()["outcome"] == "written_off"
    view = await system.invoice(invoice_id)
    assert [k for k in kinds(view) if k in ("paused", "resumed", "closed")] == [
        "paused",
        "resumed",
        "closed",
    ]
    # The agent's key is the second in DUNWELL_API_KEYS: its actor names it by position.
    assert {e["actor"] for e in view["timeline"] if e["kind"] == "paused"} == {"agent-key-2"}


async def test_key_customer_call_task_and_customer_timeline(system: System) -> None:
    invoice_id = new_id()
    body = invoice_body(invoice_id, kind="key")
    await system.post("/v1/invoices", body, "integration")
    view = await system.until(invoice_id, lambda v: v["stage"] == "agent")
    assert messages(view) == []
    tasks = (await system.get(f"/v1/tasks?invoice_id={invoice_id}")).json()
    assert [t["kind"] for t in tasks] == ["personal_call"]

    done = await system.post(f"/v1/tasks/{tasks[0]['id']}/complete", {"note": "pays Friday"})
    assert done.status_code == 200 and done.json()["status"] == "done"
    view = await system.until(invoice_id, lambda v: len(messages(v)) >= 1)
    assert (await system.get(f"/v1/tasks?invoice_id={invoice_id}")).json() == []

    timeline = (await system.get(f"/v1/customers/C-{invoice_id}/timeline")).json()
    assert timeline["events"][0]["kind"] == "journey_started"
    assert {e["invoice_id"] for e in timeline["events"]} == {invoice_id}
    listed = (await system.get(f"/v1/invoices?customer_id=C-{invoice_id}")).json()
    assert [i["invoice_id"] for i in listed["items"]] == [invoice_id]


async def test_policies_are_versioned_and_validated(system: System) -> None:
    names = [p["name"] for p in (await system.get("/v1/policies")).json()]
    assert {"standard", "demo", "fast"} <= set(names)
    standard = (await system.get("/v1/policies/standard")).json()
    assert [s["offset"] for s in standard["steps"]][:2] == ["-P3D", "P1D"]

    edited = {**standard, "description": "edited"}
    put = await system.api.put(
        "/v1/policies/standard", json=edited, headers=system.headers("admin")
    )
    assert put.status_code == 200 and put.json()["version"] == standard["version"] + 1
    agent = await system.api.put(
        "/v1/policies/standard", json=edited, headers=system.headers("agent")
    )
    assert agent.status_code == 403

    broken = {**standard, "steps": [{**standard["steps"][0], "template": "nope"}]}
    refused = await system.api.put(
        "/v1/policies/standard", json=broken, headers=system.headers("admin")
    )
    assert refused.status_code == 422 and "nope" in refused.json()["detail"]


async def test_editing_a_policy_leaves_running_journeys_on_the_version_they_started_with(
    system: System,
) -> None:
    name = f"edit-{uuid.uuid4().hex[:8]}"
    steps: list[dict[str, Any]] = [
        {"name": "overdue_1", "offset": "PT0S", "tone": "friendly", "channels": ["email"],
         "template": "overdue_1"},
        {"name": "overdue_2", "offset": "PT4S", "tone": "neutral", "channels": ["email"],
         "template": "overdue_2"},
        {"name": "hand_over", "offset": "PT2H", "action": "hand_over"},
    ]  # fmt: skip
    assert await system.put_policy(name, steps) == 1
    running = new_id()
    body = invoice_body(running, policy=name, due_in=0)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(running, lambda v: v["stage"] == "reminding")

    steps[1] = {**steps[1], "offset": "PT1H"}  # the second reminder an hour later from now on
    assert await system.put_policy(name, steps) == 2
    later = new_id()
    body = invoice_body(later, policy=name, due_in=0)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201

    # The running journey keeps its ladder: overdue_2 four seconds after the due moment.
    view = await system.until(running, lambda v: any(
        e["kind"] == "message" and e["detail"]["template"] == "overdue_2"
        for e in v["timeline"]))  # fmt: skip
    assert view["policy_version"] == 1 and view["next_action"]["step"] == "hand_over"
    # The journey started after the edit follows version 2: overdue_2 an hour after the due moment.
    view = await system.until(later, lambda v: v["stage"] == "reminding")
    assert view["policy_version"] == 2 and view["next_action"]["step"] == "overdue_2"
    wait = datetime.fromisoformat(view["next_action"]["at"]) - datetime.now().astimezone()
    assert wait > timedelta(minutes=50), wait
    assert "overdue_2" not in [
        e["detail"].get("template") for e in view["timeline"] if e["kind"] == "message"
    ]


async def test_the_invoice_list_filters_by_outcome_and_days_overdue(system: System) -> None:
    # Due ten days ago, on a ladder whose first step is weeks away: days overdue are far from any
    # boundary, so the test holds at midnight too.
    name = f"list-{uuid.uuid4().hex[:8]}"
    steps: list[dict[str, Any]] = [
        {"name": "overdue_1", "offset": "P30D", "tone": "friendly", "channels": ["email"],
         "template": "overdue_1"},
        {"name": "hand_over", "offset": "P60D", "action": "hand_over"},
    ]  # fmt: skip
    await system.put_policy(name, steps)
    written, open_ = new_id(), new_id()
    for invoice_id in (written, open_):
        body = invoice_body(invoice_id, policy=name, due_in=-10 * 86400)
        response = await system.post("/v1/invoices", body, "integration")
        assert response.status_code == 201, response.text
        await system.until(invoice_id, lambda v: "journey_started" in kinds(v))
    await system.post(f"/v1/invoices/{written}/write-off", {"reason": "debtor bankrupt"})
    written_off = (await system.get("/v1/invoices?outcome=written_off")).json()["items"]
    assert [i["invoice_id"] for i in written_off] == [written]
    for days in (0, 5):
        overdue = (await system.get(f"/v1/invoices?overdue_days={days}")).json()["items"]
        assert [i["invoice_id"] for i in overdue] == [open_]  # ten days overdue, still open
    assert (await system.get("/v1/invoices?overdue_days=15")).json()["items"] == []
    assert (await system.get("/v1/invoices?overdue_days=-1")).status_code == 422


async def test_an_agent_records_an_opt_out_and_the_debtor_opting_back_in(system: System) -> None:
    invoice_id = new_id()
    started = await system.post(
        "/v1/invoices", invoice_body(invoice_id, due_in=3600), "integration"
    )
    assert started.status_code == 201, started.text

    refused = await system.post(f"/v1/invoices/{invoice_id}/opt-outs", {"channel": "fax"})
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    unknown = await system.post("/v1/invoices/INV-nobody/opt-outs", {"channel": "sms"})
    assert unknown.status_code == 404

    out = await system.post(f"/v1/invoices/{invoice_id}/opt-outs", {"channel": "sms"})
    assert out.status_code == 202, out.text
    view = await system.until(invoice_id, lambda v: "opted_out" in kinds(v))
    event = next(e for e in view["timeline"] if e["kind"] == "opted_out")
    assert event["detail"]["channel"] == "sms"
    assert event["actor"] == "agent-key-2"

    back = await system.api.delete(
        f"/v1/invoices/{invoice_id}/opt-outs/sms", headers=system.headers("agent")
    )
    assert back.status_code == 202, back.text
    await system.until(invoice_id, lambda v: "opted_in" in kinds(v))


async def test_a_payment_no_worker_applies_in_time_is_accepted_and_applied_later_once(
    system: System,
) -> None:
    idle = f"idle-{uuid.uuid4().hex[:8]}"  # a task queue no worker polls yet
    settings = system.settings.model_copy(
        update={"task_queue": idle, "temporal_ui_url": "http://ui.example:8233"}
    )
    app = create_app(settings, temporal=system.env.client, store=system.store)
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            started = await api.post(
                "/v1/invoices", json=invoice_body(invoice_id), headers=system.headers("integration")
            )
            assert started.status_code == 201, started.text
            assert started.json()["temporal_ui"] == (
                f"http://ui.example:8233/namespaces/default/workflows/invoice-{invoice_id}"
            )
            payment = {"amount": "250.00", "reference": "LATE-1"}
            accepted = await api.post(
                f"/v1/invoices/{invoice_id}/payments", json=payment,
                headers=system.headers("integration"),
            )  # fmt: skip
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["applied"] is False and accepted.json()["outstanding"] is None

    with ThreadPoolExecutor(4) as executor:
        workers = build_workers(
            system.env.client, system.store, build_senders(system.settings), idle, executor
        )
        async with running(workers):
            view = await system.until(invoice_id, lambda v: v["outstanding"] == "1000.00")
    assert kinds(view).count("payment") == 1
    await system.env.client.get_workflow_handle(f"invoice-{invoice_id}").terminate("test done")
