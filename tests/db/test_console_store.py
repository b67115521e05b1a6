"""What the console reads and writes, on SQLite and PostgreSQL alike: its sessions, the work list,
paged invoice lists, notes, a customer's payment behaviour and every policy version."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from db.store import Store
from tests.db.test_store import T0, event, invoice, snapshot, start
from workflows.models import Outcome, RecordRequest, Stage, TaskRequest
from workflows.policy import STANDARD_POLICY

IDLE = timedelta(minutes=30)


def test_a_session_lives_until_signed_out(store: Store) -> None:
    store.start_console_session("h1", "agent-key-2", "agent", stored_key=False)
    found = store.console_session("h1", IDLE)
    assert found is not None and (found.actor, found.role) == ("agent-key-2", "agent")
    store.end_console_session("h1")
    assert store.console_session("h1", IDLE) is None
    assert store.console_session("unknown", IDLE) is None


def test_an_idle_session_ends(store: Store) -> None:
    store.start_console_session("h2", "agent-key-2", "agent", stored_key=False)
    # The test clock moves one second per read: a one-second idle limit has passed by now.
    store.console_session("h2", IDLE)
    assert store.console_session("h2", timedelta(seconds=0)) is None
    assert store.console_session("h2", IDLE) is None, "an ended session does not come back"


def test_a_session_of_a_revoked_stored_key_ends(store: Store) -> None:
    from db.keys import KeyStore

    keys = KeyStore(store.sessions)
    view, _ = keys.create("maria", "agent")
    store.start_console_session("h3", view.name, "agent", stored_key=True)
    assert store.console_session("h3", IDLE) is not None
    keys.revoke("maria")
    assert store.console_session("h3", IDLE) is None


def _tasks(store: Store) -> None:
    """Three invoices of different sizes, each with an open task (oldest: the smallest)."""
    for number, amount in ((1, "100.00"), (2, "900.00"), (3, "500.00")):
        store.ensure_invoice(invoice(f"INV-{number}", "C-17", amount), "fp", "standard", 1)
        store.record(
            RecordRequest(
                snapshot=snapshot(f"INV-{number}", outstanding=amount),
                tasks=[
                    TaskRequest(
                        key=f"INV-{number}:review",
                        kind="dispute_review" if number != 2 else "call",
                        title=f"Task {number}",
                    )
                ],
            )
        )


def test_the_work_list_is_oldest_first_and_filters(store: Store) -> None:
    _tasks(store)
    items, total = store.work_list()
    assert total == 3
    assert [i.task.invoice_id for i in items] == ["INV-1", "INV-2", "INV-3"]
    assert items[1].outstanding == Decimal("900.00") and items[1].currency == "EUR"

    largest, _ = store.work_list(order="largest")
    assert [i.task.invoice_id for i in largest] == ["INV-2", "INV-3", "INV-1"]

    reviews, total = store.work_list(kind="dispute_review")
    assert total == 2 and {i.task.kind for i in reviews} == {"dispute_review"}
    assert store.task_kinds() == ["call", "dispute_review"]

    page, total = store.work_list(limit=2, offset=2)
    assert total == 3 and [i.task.invoice_id for i in page] == ["INV-3"]


def test_a_taken_task_is_on_the_agents_list_only(store: Store) -> None:
    _tasks(store)
    first = store.work_list()[0][0].task
    taken = store.take_task(first.id, "agent-key-2")
    assert taken is not None and taken.assigned_to == "agent-key-2"
    mine, total = store.work_list(assigned_to="agent-key-2")
    assert total == 1 and mine[0].task.id == first.id
    assert store.work_list(assigned_to="someone-else")[1] == 0
    # Completed, it leaves every list; taking it again changes nothing.
    store.complete_task(first.id, "agent-key-2", "called, will pay")
    assert store.work_list(assigned_to="agent-key-2")[1] == 0
    again = store.take_task(first.id, "another-agent")
    assert again is not None and again.assigned_to == "agent-key-2"


def test_invoice_pages_filter_by_state_stage_customer_and_number(store: Store) -> None:
    for number in range(1, 6):
        start(store, f"INV-{number}", "C-17" if number < 5 else "C-18")
    store.record(RecordRequest(snapshot=snapshot("INV-2", stage=Stage.disputed)))
    paid = snapshot("INV-3", stage=Stage.paid, outstanding="0", outcome=Outcome.paid)
    store.record(RecordRequest(snapshot=paid))

    rows, total = store.page_invoices(limit=2)
    assert total == 5 and [r.invoice_id for r in rows] == ["INV-5", "INV-4"]
    assert store.page_invoices(limit=2, offset=4)[0][0].invoice_id == "INV-1"
    assert {r.invoice_id for r in store.page_invoices("closed")[0]} == {"INV-3"}
    assert store.page_invoices("open")[1] == 4
    assert [r.invoice_id for r in store.page_invoices(stage="disputed")[0]] == ["INV-2"]
    assert [r.invoice_id for r in store.page_invoices(customer_id="C-18")[0]] == ["INV-5"]
    # Due 2026-12-22: overdue the day after, not on the day.
    assert store.page_invoices("overdue", today=date(2026, 12, 22))[1] == 0
    assert store.page_invoices("overdue", today=date(2026, 12, 23))[1] == 4
    assert [r.invoice_id for r in store.page_invoices(search="INV-4")[0]] == ["INV-4"]
    assert store.page_invoices(search="INV_")[1] == 0, "a search is a prefix, not a pattern"


def test_notes_are_kept_newest_first_with_their_author(store: Store) -> None:
    store.add_note("C-17", "agent-key-2", "Prefers a call after 14:00.")
    store.add_note("C-17", "admin-key-3", "Key customer since 2019.")
    store.add_note("C-18", "agent-key-2", "Someone else.")
    notes = store.notes("C-17")
    assert [(n.author, n.body) for n in notes] == [
        ("admin-key-3", "Key customer since 2019."),
        ("agent-key-2", "Prefers a call after 14:00."),
    ]


def test_payment_behaviour_comes_from_the_journeys(store: Store) -> None:
    for number in (1, 2, 3):
        start(store, f"INV-{number}")
    # INV-1 paid on the due day, INV-2 paid four days late; INV-3 still open, and overdue.
    for number, late in ((1, 0), (2, 4)):
        at = T0 - timedelta(days=1) + timedelta(days=late)
        store.record(
            RecordRequest(
                snapshot=snapshot(f"INV-{number}", stage=Stage.paid, outstanding="0",
                                  outcome=Outcome.paid),
                events=[
                    event(f"p{number}", at=at, kind="payment", amount="1250.10"),
                    event(f"c{number}", at=at, kind="closed", outcome="paid"),
                ],
            )
        )  # fmt: skip
    store.record(
        RecordRequest(
            snapshot=snapshot("INV-3"),
            events=[event("k", kind="promise_kept"), event("b", kind="promise_broken"),
                    event("b2", kind="promise_broken")],
        )
    )  # fmt: skip
    figures = store.behaviour("C-17", date(2026, 12, 30))
    assert figures.paid_invoices == 2 and figures.on_time == 1
    assert figures.average_days_late == 2.0
    assert (figures.promises_kept, figures.promises_broken) == (1, 2)
    assert figures.open_total == {"EUR": Decimal("1250.10")}
    assert figures.overdue_total == {"EUR": Decimal("1250.10")}
    assert figures.paid_this_year == {"EUR": Decimal("2500.20")}


def test_every_policy_version_is_kept(store: Store) -> None:
    store.ensure_shipped_policies([STANDARD_POLICY])
    edited = STANDARD_POLICY.model_copy(update={"description": "edited"})
    assert store.put_policy(edited, "admin-key-3").version == 2
    assert [(v, by) for v, by, _ in store.policy_versions("standard")] == [
        (2, "admin-key-3"),
        (1, "system"),
    ]
    first = store.policy_version("standard", 1)
    assert first is not None and first.description == STANDARD_POLICY.description
    second = store.policy_version("standard", 2)
    assert second is not None and second.description == "edited"
    assert store.policy_version("standard", 3) is None
