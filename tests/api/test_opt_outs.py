"""The README's promises about what providers and debtors tell us: every STOP word, UNSTOP, a
WhatsApp STOP, SendGrid `dropped` and `spamreport`, Twilio `undelivered`, an unconfigured
inbound."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

import fake_providers as fake
from api.app import create_app
from tests.api.conftest import System, invoice_body, new_id
from tests.api.test_webhooks import (
    kinds,
    messages,
    phone,
    sendgrid_request,
    texted,
    twilio_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

INBOUND = "/v1/webhooks/twilio/inbound"


async def reply(system: System, sender: str, text: str) -> None:
    form, headers = twilio_request(
        INBOUND, {"From": sender, "Body": text, "MessageSid": "SM" + uuid.uuid4().hex}
    )
    answer = await system.api.post(INBOUND, content=form, headers=headers)
    assert answer.status_code == 200 and answer.text == "<Response/>", answer.text


# Written out here, not imported from the product: dropping a word there must fail this test.
@pytest.mark.parametrize("word", ["STOP", "stopall", " Unsubscribe ", "cancel", "END", "quit"])
async def test_every_stop_word_opts_the_number_out_and_unstop_brings_it_back(
    system: System, word: str
) -> None:
    number = phone()
    await reply(system, number, word)
    assert system.store.opted_out(number, "sms")
    await reply(system, number, "unstop")
    assert not system.store.opted_out(number, "sms")


async def test_a_word_that_is_not_stop_changes_nothing(system: System) -> None:
    number = phone()
    await reply(system, number, "please stop sending me these")  # a sentence, not the keyword
    assert not system.store.opted_out(number, "sms")


async def test_a_whatsapp_stop_opts_out_of_whatsapp_only(system: System) -> None:
    number = phone()
    await reply(system, f"whatsapp:{number}", "STOP")
    assert system.store.opted_out(number, "whatsapp")
    assert not system.store.opted_out(number, "sms")


async def test_an_unconfigured_twilio_inbound_answers_503_naming_the_setting(
    system: System,
) -> None:
    settings = system.settings.model_copy(update={"twilio_auth_token": None})
    app = create_app(settings, temporal=system.env.client, store=system.store)
    number = phone()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            form, headers = twilio_request(INBOUND, {"From": number, "Body": "STOP"})
            answer = await api.post(INBOUND, content=form, headers=headers)
    assert answer.status_code == 503
    assert "DUNWELL_TWILIO_AUTH_TOKEN" in answer.json()["detail"]
    assert not system.store.opted_out(number, "sms")  # nothing recorded: Twilio will retry


async def _emailed(system: System) -> tuple[str, dict[str, str]]:
    invoice_id = new_id()
    body = invoice_body(invoice_id, phone=phone(), due_in=0)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: "message" in kinds(v))
    email = next(m for m in await messages(system, invoice_id) if m["channel"] == "email")
    return invoice_id, email


async def test_a_sendgrid_dropped_is_a_bounce(system: System) -> None:
    invoice_id, email = await _emailed(system)
    events = [{"event": "dropped", "sg_event_id": f"dr-{invoice_id}", "timestamp": int(time.time()),
               "reason": "Bounced Address", "dunwell_key": email["key"]}]  # fmt: skip
    content, headers = sendgrid_request(events)
    answer = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert answer.json() == {"received": 1, "handled": 1}
    view = await system.until(invoice_id, lambda v: "message_bounced" in kinds(v))
    bounced = next(e for e in view["timeline"] if e["kind"] == "message_bounced")
    assert bounced["detail"]["reason"] == "Bounced Address"
    stored = next(m for m in await messages(system, invoice_id) if m["key"] == email["key"])
    assert stored["delivery_status"] == "dropped"


async def test_a_spam_report_opts_the_address_out_of_email(system: System) -> None:
    invoice_id, email = await _emailed(system)
    events = [{"event": "spamreport", "sg_event_id": f"sp-{invoice_id}",
               "timestamp": int(time.time()), "dunwell_key": email["key"]}]  # fmt: skip
    content, headers = sendgrid_request(events)
    answer = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert answer.json() == {"received": 1, "handled": 1}
    assert system.store.opted_out(email["recipient"], "email")
    view = await system.until(invoice_id, lambda v: "opted_out" in kinds(v))
    assert "message_bounced" not in kinds(view)


@pytest.mark.parametrize(("code", "bounce"), [("30005", True), ("30008", False)])
async def test_a_twilio_undelivered_to_an_unknown_handset_is_a_bounce_a_passing_fault_is_not(
    system: System, code: str, bounce: bool
) -> None:
    invoice_id, number, sid = await texted(system)
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": code,
              "To": number, "AccountSid": fake.TWILIO_ACCOUNT_SID}  # fmt: skip
    form, headers = twilio_request("/v1/webhooks/twilio/status", params)
    answer = await system.api.post("/v1/webhooks/twilio/status", content=form, headers=headers)
    assert answer.status_code == 204, answer.text
    view = await system.until(invoice_id, lambda v: "delivery" in kinds(v))
    receipt = next(e for e in view["timeline"] if e["kind"] == "delivery")
    assert receipt["detail"]["status"] == "undelivered"
    if bounce:
        view = await system.until(invoice_id, lambda v: "message_bounced" in kinds(v))
        bounced = next(e for e in view["timeline"] if e["kind"] == "message_bounced")
        assert "unknown destination handset" in bounced["detail"]["reason"]
    else:
        # A pause is answered once recorded, with everything the journey heard before it.
        paused = await system.post(f"/v1/invoices/{invoice_id}/pause", {"reason": "checking"})
        assert paused.status_code == 200, paused.text
        view = await system.invoice(invoice_id)
        assert "paused" in kinds(view) and "message_bounced" not in kinds(view)


async def test_a_contact_change_reaches_the_journey_and_a_stop_from_the_new_number_finds_it(
    system: System,
) -> None:
    invoice_id, number = new_id(), phone()
    body = invoice_body(invoice_id, due_in=3600)  # nothing due for an hour
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    path = f"/v1/invoices/{invoice_id}/contact"
    agent = system.headers("agent")

    empty = await system.api.put(path, json={}, headers=agent)
    assert empty.status_code == 422 and "at least one of email" in empty.json()["detail"]
    changed = await system.api.put(
        path, json={"email": "ap@new.example", "phone": number}, headers=agent
    )
    assert changed.status_code == 202, changed.text
    view = await system.until(invoice_id, lambda v: "contact_changed" in kinds(v))
    change = next(e for e in view["timeline"] if e["kind"] == "contact_changed")
    assert change["detail"]["fields"] == ["email", "phone"]
    assert change["actor"].startswith("agent")  # the agent key that made the change

    await reply(system, number, "STOP")  # the new number's STOP finds this journey
    view = await system.until(invoice_id, lambda v: "opted_out" in kinds(v))
    assert system.store.opted_out(number, "sms")
