"""Replies reach a person: an email to a journey's reply address (SendGrid Inbound Parse) or a text
(Twilio) becomes a debtor_reply, a reply task and a hold on the reminders; a reply that matches
nothing is still a task; the unsigned Inbound Parse route wants its secret path and basic auth."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from tests.api.conftest import INBOUND_AUTH, INBOUND_SECRET, System, invoice_body, new_id
from tests.api.test_portal import first_message
from tests.api.test_webhooks import phone, twilio_request

INBOUND = f"/v1/webhooks/sendgrid/inbound/{INBOUND_SECRET}"
AUTH = {"Authorization": "Basic " + base64.b64encode(INBOUND_AUTH.encode()).decode()}


def parsed_email(to: str, sender: str, text: str, message_id: str) -> dict[str, Any]:
    """What Inbound Parse posts (multipart): the envelope, headers, text and attachments."""
    return {
        "data": {
            "to": to,
            "from": f"Bakkerij de Vries <{sender}>",
            "subject": "Re: Factuur",
            "text": text,
            "headers": f"Message-ID: <{message_id}>\nFrom: {sender}\n",
            "envelope": f'{{"to": ["{to}"], "from": "{sender}"}}',
            "attachments": "1",
            "attachment-info": json.dumps(
                {"attachment1": {"filename": "bon.pdf", "type": "application/pdf"}}
            ),
        },
        "files": {"attachment1": ("bon.pdf", b"%PDF-1.4 receipt", "application/pdf")},
    }


def replies(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in view["timeline"] if e["kind"] == "debtor_reply"]


async def test_an_email_reply_finds_its_journey_holds_the_reminders_and_asks_an_agent(
    system: System,
) -> None:
    _, view = await first_message(system)
    invoice_id = view["invoice_id"]
    [sent] = [m for m in system.providers.received if invoice_id in str(m.get("subject"))]
    reply_to = sent["reply_to"]
    assert reply_to.startswith("reply+") and reply_to.endswith("@reply.collections.example.com")

    email = parsed_email(reply_to, "ap@devries.example", "Ik heb gisteren betaald.", "m1@x")
    for _ in range(2):  # SendGrid retries: the same reply is recorded once
        answer = await system.api.post(INBOUND, headers=AUTH, **email)
        assert answer.status_code == 200, answer.text
    held = await system.until(invoice_id, lambda v: len(replies(v)) == 1)
    await system.until(invoice_id, lambda v: v["stage"] == "agent")
    [reply] = replies(held)
    assert reply["actor"] == "debtor"
    assert reply["detail"]["text"] == "Ik heb gisteren betaald."
    assert reply["detail"]["attachments"] == ["bon.pdf (application/pdf, 16 bytes)"]
    tasks = (await system.get("/v1/tasks?status=open")).json()
    [task] = [t for t in tasks if t["invoice_id"] == invoice_id]
    assert task["kind"] == "reply" and "Ik heb gisteren betaald." in task["title"]


async def test_the_inbound_route_wants_its_secret_and_basic_auth(system: System) -> None:
    sender = f"{uuid.uuid4().hex[:8]}@stranger.example"
    email = parsed_email("someone@example.com", sender, "hello", f"{sender}-m2")
    wrong = await system.api.post("/v1/webhooks/sendgrid/inbound/guess", headers=AUTH, **email)
    assert wrong.status_code == 404
    no_auth = await system.api.post(INBOUND, **email)
    assert no_auth.status_code == 401
    assert no_auth.headers["content-type"].startswith("application/problem+json")
    assert "DUNWELL_INBOUND_BASIC_AUTH" in no_auth.json()["detail"]
    tasks = (await system.get("/v1/tasks?status=open")).json()
    assert [t for t in tasks if sender in str(t)] == []  # nothing was kept


async def test_a_reply_that_matches_nothing_is_a_task(system: System) -> None:
    sender = f"{uuid.uuid4().hex[:8]}@stranger.example"
    email = parsed_email("billing@dunwell.example", sender, "Wie bent u?", f"{sender}-1")
    assert (await system.api.post(INBOUND, headers=AUTH, **email)).status_code == 200
    tasks = (await system.get("/v1/tasks?status=open")).json()
    [task] = [t for t in tasks if sender in t["title"]]
    assert task["kind"] == "reply" and task["invoice_id"] == ""
    assert task["detail"]["text"] == "Wie bent u?"


async def test_a_text_that_is_not_stop_is_a_reply_for_an_agent(system: System) -> None:
    number = phone()
    invoice_id = new_id()
    body = invoice_body(invoice_id, policy="fast", phone=number)
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    await system.until(invoice_id, lambda v: v["stage"] != "scheduled")
    form, headers = twilio_request(
        "/v1/webhooks/twilio/inbound",
        {"From": number, "Body": "Kan ik volgende maand betalen?", "MessageSid": "SM" + new_id()},
    )
    answer = await system.api.post("/v1/webhooks/twilio/inbound", content=form, headers=headers)
    assert answer.status_code == 200
    view = await system.until(invoice_id, lambda v: len(replies(v)) == 1)
    assert replies(view)[0]["detail"]["channel"] == "sms"
    assert (await system.until(invoice_id, lambda v: v["stage"] == "agent"))["outcome"] is None
