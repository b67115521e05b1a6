"""What SendGrid and Twilio tell us after a send: receipts, bounces, and debtors' STOP replies.

No API key here: each provider signs its requests, and a request whose signature does not verify
gets 403 and changes nothing. Every event is handled once, however often the provider redelivers
it: SendGrid's `sg_event_id`; Twilio's signed `MessageSid` with `MessageStatus` (inbound:
`MessageSid`), never the unsigned idempotency header. An event is recorded as handled in the same
transaction as its effect, after the journey was told: when the database or Temporal fails
part-way the answer is a 5xx, and the provider's redelivery is processed, not skipped.

- Receipts go on the message (`delivery_status`) and the invoice's timeline (`delivery`) straight
  from here: they are facts the journey does not act on, and signalling each one would only grow
  its history.
- Bounces, drops and undeliverable texts signal the journey (`message_bounced`): it marks the
  channel unreachable and sends the message again elsewhere.
- A STOP reply (or a spam report) is an opt-out kept centrally: no journey sends to that address on
  that channel again (the delivery activity checks), and each open journey of that debtor is told
  (`channel_opted_out`). START / UNSTOP undo it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from twilio.request_validator import RequestValidator

from activities.channels import TWILIO_RECIPIENT_CODES
from api import journeys
from api.deps import SettingsDep, StoreDep, TemporalClient
from api.problems import COMMON_PROBLEMS, Problem, problem_responses
from api.routes import replies
from api.routes.replies import capped
from db.store import MessageView, OptOut, Store
from workflows.models import ChannelOptedIn, ChannelOptedOut, DebtorReplied, MessageBounced
from workflows.policy import Channel

log = logging.getLogger("dunwell.webhooks")

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=COMMON_PROBLEMS)

_PROBLEMS = problem_responses(
    {
        403: "Unsigned, forged or stale request: nothing was changed",
        503: "The webhook's verification setting is not configured",
    }
)

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"

# SendGrid event -> delivery status; the last two also end the channel for the debtor.
_SENDGRID_STATUS = {
    "processed": "processed",
    "deferred": "deferred",
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "dropped",
    "spamreport": "spam_report",
    "unsubscribe": "unsubscribed",
}
_TWILIO_STATUS = ("sent", "delivered", "undelivered", "failed", "read")
# Twilio delivery error codes that mean the number cannot get texts (not a passing outage).
# https://www.twilio.com/docs/api/errors
_TWILIO_UNREACHABLE = {
    **TWILIO_RECIPIENT_CODES,
    30003: "unreachable destination handset",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30004: "message blocked by the recipient",
}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP"}


class Accepted(BaseModel):
    received: int
    """Events in the request."""
    handled: int
    """Events acted on now (the rest were repeats or unknown to us)."""


# ---- SendGrid ----------------------------------------------------------------------------------


@router.post("/sendgrid", response_model=Accepted, responses=_PROBLEMS)
async def sendgrid_events(
    request: Request, settings: SettingsDep, store: StoreDep, client: TemporalClient
) -> Accepted:
    """SendGrid's signed event webhook: delivered, open, bounce, dropped, spamreport…"""
    key = settings.sendgrid_webhook_public_key
    if not key:
        raise Problem(
            503,
            "Set DUNWELL_SENDGRID_WEBHOOK_PUBLIC_KEY to the verification key SendGrid shows for "
            "its signed event webhook.",
        )
    body = (await request.body()).decode("utf-8", "replace")
    signature = request.headers.get(SENDGRID_SIGNATURE, "")
    timestamp = request.headers.get(SENDGRID_TIMESTAMP, "")
    if not _sendgrid_signed(key, body, signature, timestamp, settings.webhook_max_age_s):
        raise Problem(403, "The SendGrid signature does not verify: nothing was recorded.")
    try:
        events = json.loads(body)
    except ValueError:
        raise Problem(422, "SendGrid events must be a JSON array.") from None
    if not isinstance(events, list):
        raise Problem(422, "SendGrid events must be a JSON array.")
    handled = 0
    for event in events:
        if isinstance(event, dict) and await _sendgrid_event(event, store, client):
            handled += 1
    return Accepted(received=len(events), handled=handled)


def _sendgrid_signed(key: str, body: str, signature: str, timestamp: str, max_age: int) -> bool:
    if not signature or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > max_age:
        return False  # a replay of an old request
    try:
        return bool(EventWebhook(key).verify_signature(body, signature, timestamp))
    except ValueError:
        return False  # a malformed key or signature


async def _sendgrid_event(event: dict[str, Any], store: Store, client: Client) -> bool:
    kind = str(event.get("event", ""))
    status = _SENDGRID_STATUS.get(kind)
    key = event.get("dunwell_key")  # our custom_args travel on every event
    event_id = event.get("sg_event_id")
    if status is None or not isinstance(key, str) or not event_id:
        return False
    event_key = f"sendgrid:{event_id}"
    message = await run_in_threadpool(store.get_message, key)
    if message is None or await run_in_threadpool(store.handled, event_key):
        return False
    reason = str(event.get("reason") or event.get("response") or "")[:300]
    opt_out = None
    # The journey hears first: if Temporal or the database fails, nothing is recorded as
    # handled, the answer is a 5xx, and SendGrid's redelivery is processed (the journey ignores
    # a signal it has had).
    if kind in ("bounce", "dropped"):
        bounce = MessageBounced(message_key=key, channel=Channel.email, reason=reason or kind)
        await _tell(client, store, message.invoice_id, "message_bounced", bounce)
    elif kind in ("spamreport", "unsubscribe"):
        await _tell_each(client, store, [message.invoice_id], OptChange(Channel.email, True))
        opt_out = OptOut(message.recipient, Channel.email.value, "debtor", kind)
    return await run_in_threadpool(store.apply_receipt, event_key, key, status, reason, opt_out)


# ---- Twilio ------------------------------------------------------------------------------------


@router.post("/twilio/status", responses=_PROBLEMS, status_code=204)
async def twilio_status(
    request: Request, settings: SettingsDep, store: StoreDep, client: TemporalClient
) -> Response:
    """Twilio's message status callback: sent, delivered, undelivered, failed."""
    form = await _twilio_form(request, settings)
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if status not in _TWILIO_STATUS or not sid:
        return Response(status_code=204)
    # Deduplicated on signed fields only: the idempotency token header is not signed.
    event_key = f"twilio:{sid}:{status}"
    if await run_in_threadpool(store.handled, event_key):
        return Response(status_code=204)
    code = int(form["ErrorCode"]) if form.get("ErrorCode", "").isdigit() else None
    reason = f"error {code}: {_TWILIO_UNREACHABLE.get(code, 'see Twilio')}" if code else ""
    bounce = status in ("undelivered", "failed") and code in _TWILIO_UNREACHABLE
    message = await run_in_threadpool(store.message_by_provider_id, sid)
    if message is None:
        # Our own "mark sent" has not stored this id yet: keep the receipt for it.
        applied = await run_in_threadpool(
            store.hold_receipt, event_key, sid, status, reason, bounce
        )
        message = await run_in_threadpool(store.message_by_provider_id, sid)
        if message is not None and any(r.bounce for r in applied):
            await _bounced(client, store, message, reason)
        return Response(status_code=204)
    if bounce:
        await _bounced(client, store, message, reason)
    await run_in_threadpool(store.apply_receipt, event_key, message.key, status, reason)
    return Response(status_code=204)


@router.post("/twilio/inbound", responses=_PROBLEMS, response_class=Response)
async def twilio_inbound(
    request: Request, settings: SettingsDep, store: StoreDep, client: TemporalClient
) -> Response:
    """A debtor's text to our number: STOP (and its synonyms) opts out, START opts back in, and
    anything else is a reply for an agent."""
    form = await _twilio_form(request, settings)
    sender, word = form.get("From", ""), form.get("Body", "").strip().upper()
    sid = form.get("MessageSid", "")
    channel = Channel.whatsapp if sender.startswith("whatsapp:") else Channel.sms
    number = sender.removeprefix("whatsapp:")
    event_key = f"twilio-inbound:{sid}"
    if (
        number
        and sid
        and word in STOP_WORDS | START_WORDS
        and not await run_in_threadpool(store.handled, event_key)
    ):
        stop = word in STOP_WORDS
        invoices = await run_in_threadpool(store.open_invoices_of_phone, number)
        await _tell_each(client, store, invoices, OptChange(channel, stop))
        change = OptOut(number, channel.value, "debtor", f"replied {word}")
        await run_in_threadpool(store.apply_opt_change, event_key, change, stop)
    elif number and sid and word:
        # Anything else is a reply a person must read (and it holds the reminders meanwhile).
        invoices = await run_in_threadpool(store.open_invoices_of_phone, number)
        reply = DebtorReplied(
            channel=channel,
            text=capped(form.get("Body", "")),
            sender=number,
            reference=f"twilio:{sid}",
        )
        await replies.deliver(client, store, invoices[0] if invoices else None, reply)
    # Empty TwiML: we send no reply of our own (Twilio confirms STOP/START itself).
    return Response("<Response/>", media_type="text/xml")


async def _twilio_form(request: Request, settings: SettingsDep) -> dict[str, str]:
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not token or not settings.public_url:
        raise Problem(
            503,
            "Set DUNWELL_TWILIO_AUTH_TOKEN and DUNWELL_PUBLIC_URL (the address Twilio calls) to "
            "verify Twilio's webhooks.",
        )
    body = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    # The URL exactly as Twilio requested it: our public address, this path, its query string.
    url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get(TWILIO_SIGNATURE, "")
    if not signature or not RequestValidator(token).validate(url, form, signature):
        raise Problem(403, "The Twilio signature does not verify: nothing was recorded.")
    return form


# ---- shared ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptChange:
    channel: Channel
    out: bool


async def _bounced(client: Client, store: Store, message: MessageView, reason: str) -> None:
    bounce = MessageBounced(
        message_key=message.key, channel=Channel(message.channel), reason=reason
    )
    await _tell(client, store, message.invoice_id, "message_bounced", bounce)


async def _tell_each(client: Client, store: Store, invoices: list[str], change: OptChange) -> None:
    for invoice_id in invoices:
        if change.out:
            name, arg = "channel_opted_out", ChannelOptedOut(channel=change.channel)
        else:
            name, arg = "channel_opted_in", ChannelOptedIn(channel=change.channel)  # type: ignore[assignment]
        await _tell(client, store, invoice_id, name, arg)


async def _tell(client: Client, store: Store, invoice_id: str, name: str, arg: BaseModel) -> None:
    """Signal the journey; a closed journey has nothing to hear (other failures propagate: 503)."""
    try:
        await journeys.signal(client, store, invoice_id, name, arg)
    except Problem:
        log.info("%s for %s: the journey has closed; nothing to tell it", name, invoice_id)
