"""Providers' webhooks, signed as SendGrid and Twilio sign them: receipts, bounces, STOP."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

import fake_providers as fake
from api.app import create_app
from tests.api.conftest import (
    PROBLEM,
    PUBLIC_URL,
    SENDGRID_WEBHOOK_KEY,
    System,
    invoice_body,
    new_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def phone() -> str:
    return "+316" + str(uuid.uuid4().int)[:8]


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]


def sendgrid_request(events: list[dict[str, Any]], *, age: int = 0) -> tuple[bytes, dict[str, str]]:
    """Signed as SendGrid signs: ECDSA P-256 / SHA-256 over timestamp + body, base64 DER."""
    body = json.dumps(events)
    timestamp = str(int(time.time()) - age)
    signature = SENDGRID_WEBHOOK_KEY.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return body.encode(), headers


def twilio_request(
    path: str, params: dict[str, str], token: str = ""
) -> tuple[str, dict[str, str]]:
    """Signed as Twilio signs: HMAC-SHA1 of the public URL and the sorted parameters."""
    validator = RequestValidator(fake.TWILIO_AUTH_TOKEN)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": validator.compute_signature(PUBLIC_URL + path, params),
    }
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return urlencode(params), headers


async def messages(system: System, invoice_id: str) -> list[dict[str, Any]]:
    response = await system.get(f"/v1/invoices/{invoice_id}/messages")
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_bounced_email_reaches_the_timeline_and_the_reminder_goes_by_sms(
    system: System,
) -> None:
    invoice_id, number = new_id(), phone()
    # An email now and the next step an hour later: nothing else goes while the bounce is handled.
    name = f"bounce-{uuid.uuid4().hex[:8]}"
    steps: list[dict[str, Any]] = [
        {"name": "before_due", "offset": "PT0S", "tone": "friendly", "channels": ["email"],
         "template": "reminder_before_due"},
        {"name": "overdue_1", "offset": "PT1H", "tone": "neutral", "channels": ["email"],
         "template": "overdue_1"},
    ]  # fmt: skip
    await system.put_policy(name, steps)
    body = invoice_body(invoice_id, phone=number, due_in=0, policy=name)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: any(
        e["kind"] == "message" and e["detail"]["status"] == "sent"
        for e in v["timeline"]))  # fmt: skip
    email = next(m for m in await messages(system, invoice_id) if m["channel"] == "email")
    events = [
        {"event": "delivered", "sg_event_id": f"d-{invoice_id}", "email": email["recipient"],
         "timestamp": int(time.time()), "dunwell_key": email["key"]},
        {"event": "bounce", "sg_event_id": f"b-{invoice_id}", "email": email["recipient"],
         "timestamp": int(time.time()), "reason": "550 5.1.1 mailbox does not exist",
         "dunwell_key": email["key"]},
    ]  # fmt: skip
    content, headers = sendgrid_request(events)
    answer = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 2, "handled": 2}

    view = await system.until(invoice_id, lambda v: "message_resent" in kinds(v))
    delivery = [e["detail"]["status"] for e in view["timeline"] if e["kind"] == "delivery"]
    assert delivery == ["delivered", "bounced"]
    bounced = next(e for e in view["timeline"] if e["kind"] == "message_bounced")
    assert "mailbox does not exist" in bounced["detail"]["reason"]

    def texts_of(view: dict[str, Any]) -> list[dict[str, Any]]:
        return [e["detail"] for e in view["timeline"]
                if e["kind"] == "message" and e["detail"]["channel"] == "sms"]  # fmt: skip

    view = await system.until(invoice_id, lambda v: bool(texts_of(v)))
    resent = texts_of(view)
    assert [(m["template"], m["status"]) for m in resent] == [(email["template"], "sent")]
    texts = [m for m in system.providers.received if m["to"] == number]
    assert len(texts) == 1 and "INV-" in texts[0]["body"]  # the same reminder, once, by SMS
    stored = next(m for m in await messages(system, invoice_id) if m["key"] == email["key"])
    assert stored["delivery_status"] == "bounced"

    # SendGrid redelivers (it retries until it sees a 2xx): nothing happens twice.
    again = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert again.json() == {"received": 2, "handled": 0}
    view = await system.invoice(invoice_id)
    assert kinds(view).count("message_bounced") == 1 and kinds(view).count("delivery") == 2


async def test_forged_unsigned_or_stale_webhooks_are_refused_and_change_nothing(
    system: System,
) -> None:
    invoice_id = new_id()
    body = invoice_body(invoice_id, due_in=0)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: "message" in kinds(v))
    email = next(m for m in await messages(system, invoice_id) if m["channel"] == "email")
    bounce = [{"event": "bounce", "sg_event_id": f"x-{invoice_id}", "timestamp": int(time.time()),
               "dunwell_key": email["key"]}]  # fmt: skip

    content, headers = sendgrid_request(bounce)
    forged = {
        **headers,
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"x" * 64).decode(),
    }
    altered = content.replace(b"bounce", b"dropped")
    stale_content, stale = sendgrid_request(bounce, age=3600)
    for data, hdrs in (
        (content, forged),
        (altered, headers),
        (content, {"Content-Type": "application/json"}),
        (stale_content, stale),
    ):
        refused = await system.api.post("/v1/webhooks/sendgrid", content=data, headers=hdrs)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM

    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "failed", "ErrorCode": "30005"}
    form, signed = twilio_request("/v1/webhooks/twilio/status", params)
    bad = {**signed, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert (
        await system.api.post("/v1/webhooks/twilio/status", content=form, headers=bad)
    ).status_code == 403
    stop, stop_headers = twilio_request(
        "/v1/webhooks/twilio/inbound", {"From": body["customer"]["phone"], "Body": "STOP"}
    )
    stop_headers.pop("X-Twilio-Signature")
    assert (
        await system.api.post("/v1/webhooks/twilio/inbound", content=stop, headers=stop_headers)
    ).status_code == 403

    view = await system.invoice(invoice_id)
    assert "delivery" not in kinds(view) and "opted_out" not in kinds(view)
    assert "message_bounced" not in kinds(view)


async def test_unconfigured_webhooks_answer_503_naming_the_setting(system: System) -> None:
    settings = system.settings.model_copy(
        update={"sendgrid_webhook_public_key": None, "public_url": None}
    )
    app = create_app(settings, temporal=system.env.client, store=system.store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            sendgrid = await api.post("/v1/webhooks/sendgrid", content=b"[]")
            assert sendgrid.status_code == 503
            assert "DUNWELL_SENDGRID_WEBHOOK_PUBLIC_KEY" in sendgrid.json()["detail"]
            twilio = await api.post("/v1/webhooks/twilio/status", content=b"")
            assert twilio.status_code == 503 and "DUNWELL_PUBLIC_URL" in twilio.json()["detail"]


async def texted(system: System) -> tuple[str, str, str]:
    """A journey that has texted its debtor (overdue_2: email and SMS): invoice, number, sid."""
    invoice_id, number = new_id(), phone()
    body = invoice_body(invoice_id, phone=number, due_in=-3)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: any(
        e["kind"] == "message" and e["detail"]["channel"] == "sms"
        for e in v["timeline"]))  # fmt: skip
    sid = next(m["id"] for m in system.providers.received if m["to"] == number)
    return invoice_id, number, sid


async def test_sms_receipts_reach_the_timeline_once(system: System) -> None:
    invoice_id, number, sid = await texted(system)
    sms = next(m for m in await messages(system, invoice_id) if m["channel"] == "sms")
    # Twilio redelivers a `delivered`, and a `sent` comes again late, each with a fresh (unsigned)
    # idempotency token: the same signed message and status is the same event.
    for status, token in (("sent", "t1"), ("delivered", "t2"), ("delivered", "t3"), ("sent", "t4")):
        form, headers = twilio_request(
            "/v1/webhooks/twilio/status",
            {
                "MessageSid": sid,
                "MessageStatus": status,
                "To": number,
                "AccountSid": fake.TWILIO_ACCOUNT_SID,
            },
            token=f"{sid}-{token}",
        )
        answer = await system.api.post("/v1/webhooks/twilio/status", content=form, headers=headers)
        assert answer.status_code == 204, answer.text
    view = await system.until(invoice_id, lambda v: "delivery" in kinds(v))
    receipts = [e["detail"]["status"] for e in view["timeline"] if e["kind"] == "delivery"]
    assert receipts == ["sent", "delivered"]  # each redelivery counted once
    stored = next(m for m in await messages(system, invoice_id) if m["key"] == sms["key"])
    assert stored["delivery_status"] == "delivered"


async def test_stop_ends_texting_that_number_and_start_brings_it_back(system: System) -> None:
    number = phone()
    first, second = new_id(), new_id()
    for invoice_id in (first, second):  # two invoices of one debtor: STOP covers both
        # overdue_1 (email) 20 s from now, overdue_2 (email and SMS) 2 s later: the STOP below
        # has 20 s to reach both journeys, and the test checks that it did.
        body = invoice_body(invoice_id, phone=number, due_in=20)
        assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
        await system.until(invoice_id, lambda v: "journey_started" in kinds(v))

    form, headers = twilio_request(
        "/v1/webhooks/twilio/inbound",
        {
            "From": number,
            "To": "+3197010000000",
            "Body": " stop ",
            "MessageSid": "SM" + uuid.uuid4().hex,
        },
    )
    answer = await system.api.post("/v1/webhooks/twilio/inbound", content=form, headers=headers)
    assert answer.status_code == 200 and answer.text == "<Response/>"
    for invoice_id in (first, second):
        view = await system.until(invoice_id, lambda v: "opted_out" in kinds(v))
    # overdue_2 (email and SMS) goes out by email only, for both invoices.
    for invoice_id in (first, second):
        view = await system.until(invoice_id, lambda v: any(
            e["kind"] == "message" and e["detail"]["template"] == "overdue_2"
            for e in v["timeline"]))  # fmt: skip
        sent = [(e["detail"]["channel"], e["detail"]["status"]) for e in view["timeline"]
                if e["kind"] == "message" and e["detail"]["template"] == "overdue_2"]  # fmt: skip
        assert sent == [("email", "sent")]
        order = [e["kind"] for e in view["timeline"] if e["kind"] in ("opted_out", "message")]
        assert order[0] == "opted_out", f"the STOP came after the reminders: {order}"
    assert [m for m in system.providers.received if m["to"] == number] == []

    # A new journey of the same debtor starts with the opt-out already in force.
    third = new_id()
    assert (
        await system.post(
            "/v1/invoices", invoice_body(third, phone=number, due_in=-3), "integration"
        )
    ).status_code == 201
    view = await system.until(third, lambda v: any(
        e["kind"] == "message" and e["detail"]["channel"] == "sms"
        for e in v["timeline"]))  # fmt: skip
    text = next(
        e for e in view["timeline"] if e["kind"] == "message" and e["detail"]["channel"] == "sms"
    )
    assert text["detail"]["status"] == "failed" and "opted out" in text["detail"]["error"]
    assert [m for m in system.providers.received if m["to"] == number] == []

    form, headers = twilio_request(
        "/v1/webhooks/twilio/inbound",
        {"From": number, "Body": "START", "MessageSid": "SM" + uuid.uuid4().hex},
    )
    assert (
        await system.api.post("/v1/webhooks/twilio/inbound", content=form, headers=headers)
    ).status_code == 200
    await system.until(third, lambda v: "opted_in" in kinds(v))
    assert not system.store.opted_out(number, "sms")


async def test_a_database_failure_mid_event_answers_503_and_the_redelivery_applies_it_once(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoice_id, number = new_id(), phone()
    body = invoice_body(invoice_id, phone=number, due_in=0)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: "message" in kinds(v))
    email = next(m for m in await messages(system, invoice_id) if m["channel"] == "email")
    events = [{"event": "bounce", "sg_event_id": f"db-{invoice_id}", "timestamp": int(time.time()),
               "reason": "550 mailbox gone", "dunwell_key": email["key"]}]  # fmt: skip
    content, headers = sendgrid_request(events)
    real = system.store.apply_receipt
    calls = iter([True])

    def database_down(*args: Any, **kwargs: Any) -> bool:
        if next(calls, False):
            raise sa.exc.OperationalError("UPDATE messages", {}, ConnectionError("server closed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(system.store, "apply_receipt", database_down)
    failed = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert failed.status_code == 503 and failed.headers["content-type"] == PROBLEM
    assert failed.headers["retry-after"] == "5"
    assert not system.store.handled(f"sendgrid:db-{invoice_id}")  # SendGrid will redeliver

    again = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)

    assert again.json() == {"received": 1, "handled": 1}
    view = await system.until(invoice_id, lambda v: "message_bounced" in kinds(v))
    assert kinds(view).count("delivery") == 1
    third = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)
    assert third.json() == {"received": 1, "handled": 0}
    view = await system.invoice(invoice_id)
    assert kinds(view).count("message_bounced") == 1 and kinds(view).count("delivery") == 1


async def test_a_captured_start_replayed_with_a_fresh_token_changes_nothing(
    system: System,
) -> None:
    number = phone()
    start_sid, stop_sid = "SM" + uuid.uuid4().hex, "SM" + uuid.uuid4().hex
    start, start_headers = twilio_request(
        "/v1/webhooks/twilio/inbound",
        {"From": number, "Body": "START", "MessageSid": start_sid},
        token="first",
    )
    stop, stop_headers = twilio_request(
        "/v1/webhooks/twilio/inbound", {"From": number, "Body": "STOP", "MessageSid": stop_sid}
    )
    for form, headers in ((start, start_headers), (stop, stop_headers)):
        answer = await system.api.post("/v1/webhooks/twilio/inbound", content=form, headers=headers)
        assert answer.status_code == 200
    assert system.store.opted_out(number, "sms")

    # Someone captured the signed START and sends it again with a new idempotency token.
    replayed = {**start_headers, "I-Twilio-Idempotency-Token": uuid.uuid4().hex}
    answer = await system.api.post("/v1/webhooks/twilio/inbound", content=start, headers=replayed)

    assert answer.status_code == 200
    assert system.store.opted_out(number, "sms")  # the debtor's STOP still holds


async def test_sendgrid_batches_of_megabytes_are_accepted_other_routes_keep_the_small_limit(
    system: System,
) -> None:
    filler = "x" * 900
    events = [{"event": "open", "sg_event_id": f"big-{n}", "timestamp": int(time.time()),
               "dunwell_key": "unknown", "useragent": filler} for n in range(2300)]  # fmt: skip
    content, headers = sendgrid_request(events)
    assert len(content) > 2 * 1024 * 1024

    answer = await system.api.post("/v1/webhooks/sendgrid", content=content, headers=headers)

    assert answer.status_code == 200, answer.text[:200]
    assert answer.json() == {"received": 2300, "handled": 0}  # none of ours: nothing to do
    big = await system.api.post(
        "/v1/invoices", content=content, headers={**system.headers("integration"), **headers}
    )
    assert big.status_code == 413 and "DUNWELL_API_MAX_BODY_BYTES" in big.json()["detail"]


async def test_a_status_callback_that_beats_our_mark_is_kept_for_it(system: System) -> None:
    invoice_id, number = new_id(), phone()
    body = invoice_body(invoice_id, phone=number, due_in=3600)
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: "journey_started" in kinds(v))
    sid = "SM" + uuid.uuid4().hex
    params = {"MessageSid": sid, "MessageStatus": "delivered", "To": number,
              "AccountSid": fake.TWILIO_ACCOUNT_SID}  # fmt: skip
    form, headers = twilio_request("/v1/webhooks/twilio/status", params)

    early = await system.api.post("/v1/webhooks/twilio/status", content=form, headers=headers)
    assert early.status_code == 204  # Twilio called back before our "mark sent" stored the sid

    key = f"invoice-{invoice_id}:manual:sms"
    system.store.claim_message(key, invoice_id, "sms", "overdue_1", "friendly", "en", number)
    system.store.finish_message(key, "sent", "twilio", sid, None, "Beste klant")
    stored = next(m for m in await messages(system, invoice_id) if m["key"] == key)
    assert stored["delivery_status"] == "delivered"
    view = await system.invoice(invoice_id)
    assert [e["detail"]["status"] for e in view["timeline"] if e["kind"] == "delivery"] == [
        "delivered"
    ]
