"""Delivering a message: render the template, claim the message key, send, record what happened.

The key (journey, step, channel) is stored under a unique constraint before any provider is
called, so a retried activity or a restarted worker never sends the same message twice. The one
window left: a worker that dies after the provider accepted a message but before we marked it
sent. On retry the claim is found still `claimed`, and the message is sent again; neither SendGrid
nor Twilio offers an idempotency key that would close this window, nor a way to ask whether a
message arrived. It is as narrow as one provider call (the mark follows the provider's answer at
once), and when it happens the resend is logged and its timeline entry says the debtor may have
the message twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import DeliveryError, Sender
from activities.journal import database_error
from activities.rendering import MessageContext, TemplateNotFound, render
from db.store import Store
from workflows.common import DELIVER_ACTIVITY
from workflows.models import (
    ChannelOutcome,
    MessageRequest,
    MessageResult,
    RecordRequest,
    TimelineEvent,
)
from workflows.policy import Channel

_DONE = ("sent", "outbox")
_MAYBE_TWICE = "sent again after a worker stopped mid-send: the debtor may have received it twice"
log = logging.getLogger("dunwell.messaging")


class MessagingActivities:
    def __init__(self, senders: dict[Channel, Sender], store: Store) -> None:
        self._senders = senders
        self._store = store

    @activity.defn(name=DELIVER_ACTIVITY)
    def deliver_message(self, request: MessageRequest) -> MessageResult:
        """Send one message on the request's channels, in order, each at most once."""
        try:
            return self._deliver(request)
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc

    def _deliver(self, request: MessageRequest) -> MessageResult:
        result = MessageResult()
        for channel in request.channels:
            outcome = self._deliver_on(request, channel)
            result.outcomes.append(outcome)
            if outcome.status in _DONE and not request.all_channels:
                break
        return result

    def _deliver_on(self, request: MessageRequest, channel: Channel) -> ChannelOutcome:
        customer = request.invoice.customer
        to = customer.email if channel == Channel.email else customer.phone
        if not to or channel in request.unreachable:
            return ChannelOutcome(channel=channel, status="skipped", reason="no usable contact")
        if self._store.opted_out(to, channel.value):
            # Kept centrally (an SMS STOP, a spam report): true for every journey of this debtor.
            reason = f"the debtor opted out of {channel.value} at {to}"
            self._record(
                request, f"{request.key_prefix}:{channel.value}", channel, "failed", reason
            )
            return ChannelOutcome(channel=channel, status="failed", reason=reason, permanent=True)
        key = f"{request.key_prefix}:{channel.value}"
        try:
            message = render(
                request.template, request.tone, customer.locale, channel, _context(request)
            )
        except TemplateNotFound as exc:
            raise ApplicationError(str(exc), type="TemplateNotFound") from exc

        row, claimed_now = self._store.claim_message(
            key,
            request.invoice.invoice_id,
            channel.value,
            request.template,
            request.tone.value,
            customer.locale,
            to,
        )
        resent = not claimed_now and row.status == "claimed"
        if resent:
            # The one window left: an attempt died after claiming. Did the provider get it before
            # the worker died? Neither SendGrid nor Twilio can say, so it goes again, and the
            # timeline says the debtor may have it twice.
            log.warning("sending %s again: an earlier attempt died before marking it sent", key)
        if not claimed_now and row.status in (*_DONE, "failed"):
            # Done by an earlier attempt: make sure it is on the timeline, send nothing.
            self._record(request, key, channel, row.status, row.error or "")
            return ChannelOutcome(
                channel=channel, status=row.status, reason=row.error or "", permanent=False
            )
        try:
            receipt = self._senders[channel].send(channel, to, message, key)
        except DeliveryError as exc:
            if exc.retryable or not exc.recipient_problem:
                delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
                kind = "ProviderUnavailable" if exc.retryable else "ProviderMisconfigured"
                raise ApplicationError(exc.reason, type=kind, next_retry_delay=delay) from exc
            self._store.finish_message(
                key, "failed", _provider(channel), None, message.subject, message.text, exc.reason
            )
            self._record(request, key, channel, "failed", exc.reason)
            return ChannelOutcome(
                channel=channel, status="failed", reason=exc.reason, permanent=True
            )
        status = "sent" if receipt.delivered else "outbox"
        self._store.finish_message(
            key, status, receipt.provider, receipt.message_id, message.subject, message.text
        )
        note = _MAYBE_TWICE if resent else ""
        self._record(request, key, channel, status, "", note)
        return ChannelOutcome(channel=channel, status=status)

    def _record(
        self,
        request: MessageRequest,
        key: str,
        channel: Channel,
        status: str,
        error: str,
        note: str = "",
    ) -> None:
        detail: dict[str, object] = {
            "channel": channel.value,
            "tone": request.tone.value,
            "template": request.template,
            "status": status,
            "outstanding": str(request.outstanding),
        }
        if status == "outbox":
            detail["note"] = "local outbox: not delivered to anyone"
        if note:
            detail["note"] = note
        if error:
            detail["error"] = error
        event = TimelineEvent(key=key, at=request.at, kind="message", actor="system", detail=detail)
        self._store.record(RecordRequest(snapshot=request.snapshot, events=[event]))


def _provider(channel: Channel) -> str:
    return "sendgrid" if channel == Channel.email else "twilio"


def _context(request: MessageRequest) -> MessageContext:
    invoice = request.invoice
    return MessageContext(
        customer_name=invoice.customer.name,
        invoice_id=invoice.invoice_id,
        amount=invoice.amount,
        outstanding=request.outstanding,
        currency=invoice.currency,
        due_on=invoice.due_on,
        payment_url=invoice.payment_url,
        next_step=request.next_step,
        timezone=invoice.customer.timezone,
        extra=request.extra,
    )
