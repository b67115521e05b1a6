"""Delivering a message: render the template, claim the message key, send, record what happened.

Each message (journey, step, channel) is claimed under a unique key before any provider is called,
and the claim is a lease: it is renewed while the attempt holding it sends, as the attempt
heartbeats to Temporal (`activities.leases`). So:

- A retry that finds another attempt's lease still live waits (a retryable `SendInProgress`)
  instead of sending: a slow provider call is never doubled by Temporal's next attempt.
- An attempt sends one channel and gives itself `SEND_DEADLINE`, well inside the activity's
  start-to-close timeout, so Temporal never starts another attempt while this one may still be
  talking to the provider.
- "Mark sent" is retried here before the attempt gives up: the provider has the message, and only
  our record of it is missing.
- An attempt that died after claiming (a killed worker) leaves a lease that runs out. The next
  attempt takes the message over and first asks the provider whether the message reached it
  (Twilio's message list; SendGrid's Email Activity API, by the key in the email's custom args).
  A question that goes unanswered keeps the claim: the next attempt asks again. Only where the
  provider cannot tell (SendGrid without its paid Email Activity add-on) does it send again, log
  it, and say on the timeline that the debtor may have it twice.

Rate limits are not kept here: each provider has its own task queue whose workers carry
Temporal's `max_task_queue_activities_per_second` (see `worker.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import CannotTell, DeliveryError, Sender, SendReceipt, redacted
from activities.journal import database_error
from activities.leases import LEASE, Heartbeat, lease_wait, retrying, this_attempt
from activities.rendering import (
    Creditor,
    MessageContext,
    RenderedMessage,
    TemplateNotFound,
    render,
)
from db.store import Claim, Receipt, Store
from portal_links import PortalLinks
from workflows.common import DELIVER_ACTIVITY
from workflows.messaging import PROVIDERS
from workflows.models import (
    ChannelOutcome,
    MessageRequest,
    MessageResult,
    RecordRequest,
    TimelineEvent,
)
from workflows.policy import Channel

SEND_DEADLINE = 90.0
"""Seconds an attempt may spend, inside `workflows.messaging.ATTEMPT_TIMEOUT` (120 s)."""
MISCONFIGURED_RETRY = timedelta(minutes=1)
"""How often a message waiting on a misconfigured provider tries again."""

_DONE = ("sent", "outbox")
_MAYBE_TWICE = "sent again after a worker stopped mid-send: the debtor may have received it twice"
_FOUND = "an earlier attempt had sent it (the provider's list shows it): not sent again"
log = logging.getLogger("dunwell.messaging")


class MessagingActivities:
    def __init__(
        self,
        senders: dict[Channel, Sender],
        store: Store,
        provider_timeout: float = 45,
        *,
        links: PortalLinks | None = None,
        creditor: Creditor | None = None,
    ) -> None:
        self._senders = senders
        self._store = store
        self._links = links
        self._creditor = creditor or Creditor()
        self._provider_timeout = provider_timeout
        # Sent, but our mark did not land (the database was down): the next attempt in this
        # process marks it without asking the provider or sending again.
        self._unmarked: dict[str, tuple[SendReceipt, RenderedMessage]] = {}
        self._misconfigured: set[str] = set()
        self._states_checked = 0.0
        self._lock = threading.Lock()

    def _context(self, request: MessageRequest) -> MessageContext:
        invoice = request.invoice
        portal_url = (
            self._links.url_for(invoice.customer.id, invoice.invoice_id) if self._links else ""
        )
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
            portal_url=portal_url,
            creditor=self._creditor,
        )

    @activity.defn(name=DELIVER_ACTIVITY)
    def deliver_message(self, request: MessageRequest) -> MessageResult:
        """Send one message on the request's channels, in order, each at most once."""
        started = time.monotonic()
        with Heartbeat(self._store) as beat:
            try:
                if request.start is not None:  # the invoice's row, if its start record was lost
                    self._store.record_start(request.start)
                return self._deliver(request, beat, started)
            except SQLAlchemyError as exc:
                raise database_error(exc) from exc

    def _deliver(self, request: MessageRequest, beat: Heartbeat, started: float) -> MessageResult:
        result = MessageResult()
        context: list[MessageContext] = []  # made once, when a channel first needs it
        for channel in request.channels:
            outcome = self._deliver_on(request, channel, beat, started, context)
            result.outcomes.append(outcome)
            if outcome.status in _DONE and not request.all_channels:
                break
        return result

    def _deliver_on(
        self,
        request: MessageRequest,
        channel: Channel,
        beat: Heartbeat,
        started: float,
        context: list[MessageContext],
    ) -> ChannelOutcome:
        customer = request.invoice.customer
        to = customer.email if channel == Channel.email else customer.phone
        key = f"{request.key_prefix}:{channel.value}"
        if not to or channel in request.unreachable:
            return ChannelOutcome(channel=channel, status="skipped", reason="no usable contact")
        if self._store.opted_out(to, channel.value):
            # Kept centrally (an SMS STOP, a spam report): true for every journey of this debtor.
            reason = f"the debtor opted out of {channel.value} at {to}"
            self._store.record(message_record(request, key, channel, "failed", reason))
            return ChannelOutcome(channel=channel, status="failed", reason=reason, permanent=True)
        if not context:
            context.append(self._context(request))
        try:
            message = render(request.template, request.tone, customer.locale, channel, context[0])
        except TemplateNotFound as exc:
            raise ApplicationError(str(exc), type="TemplateNotFound") from exc
        if channel == Channel.email and self._links is not None:
            reply_to = self._links.reply_address(request.invoice.invoice_id, customer.id)
            if reply_to:
                message = message.model_copy(update={"reply_to": reply_to})

        holder = this_attempt()
        # From the claim to the mark, a cancellation must not cut in: it would leave a message
        # the provider accepted looking unsent.
        with activity.shield_thread_cancel_exception():
            claim = self._store.claim_message(
                key,
                request.invoice.invoice_id,
                channel.value,
                request.template,
                request.tone.value,
                customer.locale,
                to,
                holder=holder,
                lease=LEASE,
            )
            if claim.state == "done":
                row = claim.message
                self._store.record(
                    message_record(request, key, channel, row.status, row.error or "")
                )
                return ChannelOutcome(
                    channel=channel, status=row.status, reason=row.error or "", permanent=False
                )
            if claim.state == "busy":
                raise ApplicationError(
                    f"message {key} is being sent by another attempt ({claim.message.claimed_by}, "
                    f"claimed at {claim.message.claimed_at:%H:%M:%S}); waiting for it to finish",
                    type="SendInProgress",
                    next_retry_delay=lease_wait(claim.message.lease_until),
                )
            beat.hold(key, holder)
            return self._send(request, channel, to, key, message, claim, started)

    def _send(
        self,
        request: MessageRequest,
        channel: Channel,
        to: str,
        key: str,
        message: RenderedMessage,
        claim: Claim,
        started: float,
    ) -> ChannelOutcome:
        sender = self._senders[channel]
        note = ""
        receipt: SendReceipt | None = None
        with self._lock:
            unmarked = self._unmarked.pop(key, None)
        if unmarked is not None:
            receipt, message = unmarked
        elif claim.state == "taken_over":
            assert claim.previous_at is not None
            try:
                receipt = sender.find_sent(channel, to, message, claim.previous_at, key)
            except CannotTell as exc:
                log.warning("sending %s again: an earlier attempt died mid-send (%s)", key, exc)
                note = _MAYBE_TWICE
            except DeliveryError as exc:
                # The question went unanswered, not the message: the earlier attempt may still
                # have sent it, so the claim is kept and the next attempt asks again.
                exc.ambiguous = True
                raise self._provider_error(exc, key, channel, request) from exc
            if receipt is not None:
                log.info("%s: an earlier attempt had sent it (%s)", key, receipt.message_id)
                note = _FOUND
        if receipt is None:
            if time.monotonic() - started > SEND_DEADLINE - self._provider_timeout:
                self._store.release_claim(key, this_attempt())  # nothing went out: free it now
                raise ApplicationError(
                    f"message {key}: too little time left in this attempt to send safely",
                    type="SendDeadline",
                )
            try:
                receipt = sender.send(channel, to, message, key)
            except DeliveryError as exc:
                if exc.retryable or not exc.recipient_problem:
                    raise self._provider_error(exc, key, channel, request) from exc
                failed = message_record(request, key, channel, "failed", exc.reason)
                self._mark(
                    key, "failed", _provider(channel), None, message, started, failed, exc.reason
                )
                return ChannelOutcome(
                    channel=channel, status="failed", reason=exc.reason, permanent=True
                )
        status = "sent" if receipt.delivered else "outbox"
        # The mark and the timeline's event (with the journey's snapshot) in one transaction.
        record = message_record(request, key, channel, status, "", note)
        try:
            early = self._mark(
                key, status, receipt.provider, receipt.message_id, message, started, record
            )
        except SQLAlchemyError:
            with self._lock:
                self._unmarked[key] = (receipt, message)
            raise
        if receipt.delivered:
            self._provider_works(channel)
        bounced = [r for r in early if r.bounce]
        if bounced:
            # Its undelivered receipt came before our mark: the journey tries another channel.
            return ChannelOutcome(
                channel=channel, status="failed", reason=bounced[0].reason, permanent=True
            )
        return ChannelOutcome(channel=channel, status=status)

    def _mark(
        self,
        key: str,
        status: str,
        provider: str,
        message_id: str | None,
        message: RenderedMessage,
        started: float,
        record: RecordRequest,
        error: str | None = None,
    ) -> list[Receipt]:
        def mark() -> list[Receipt]:
            return self._store.finish_message(
                key, status, provider, message_id, message.subject, message.text, error, record
            )

        return retrying(mark, until=started + SEND_DEADLINE)

    def _provider_error(
        self, exc: DeliveryError, key: str, channel: Channel, request: MessageRequest
    ) -> ApplicationError:
        """A provider that did not take the message: retry later, louder if it is our fault."""
        provider = _provider(channel)
        # The message goes to Temporal and the worker's log: no debtor's address in it.
        customer = request.invoice.customer
        reason = redacted(exc.reason, customer.email or "", customer.phone or "")
        if not exc.ambiguous:
            # It certainly did not take the message: the next attempt may send at once.
            self._store.release_claim(key, this_attempt())
        if exc.retryable:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
            return ApplicationError(reason, type="ProviderUnavailable", next_retry_delay=delay)
        # Our own configuration (a revoked key, an unverified sender): tell an admin, once, and
        # keep the message waiting until it is fixed.
        invoice = request.invoice
        if self._store.provider_misconfigured(
            provider, reason, invoice.invoice_id, invoice.customer.id
        ):
            log.error("%s is misconfigured: %s", provider, reason)
        with self._lock:
            self._misconfigured.add(provider)
        return ApplicationError(
            reason, type="ProviderMisconfigured", next_retry_delay=MISCONFIGURED_RETRY
        )

    def _provider_works(self, channel: Channel) -> None:
        """A send went through: if the provider was known to be misconfigured, it is fixed."""
        provider = _provider(channel)
        with self._lock:
            known_bad = provider in self._misconfigured
            self._misconfigured.discard(provider)
            # Another worker may have found it misconfigured: look at the shared state now and
            # then (not on every send).
            look = time.monotonic() - self._states_checked > 10
            if look:
                self._states_checked = time.monotonic()
        if look and not known_bad:
            states = {s.provider: s.state for s in self._store.provider_states()}
            known_bad = states.get(provider) == "misconfigured"
        if known_bad:
            self._store.provider_ok(provider)


def _provider(channel: Channel) -> str:
    return PROVIDERS[channel]


def message_record(
    request: MessageRequest, key: str, channel: Channel, status: str, error: str, note: str = ""
) -> RecordRequest:
    """The message's timeline event, with its journey's snapshot."""
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
    return RecordRequest(snapshot=request.snapshot, events=[event])
