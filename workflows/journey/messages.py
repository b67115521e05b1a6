"""The journey's messages: ladder steps and one-off messages (a dispute's review, a promise kept or
broken, a lapsed plan, a bounce sent again), through the shared messenger.

A message goes to the channels it names, or to the debtor's first reachable channel; one that
reaches nobody falls back once to the debtor's other channels, and with none left an agent is asked
to find a working contact. While a hold stops the chasing, one-off messages wait for it to end;
during an instalment plan they are dropped (the timeline says so): the plan's messages replace them.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.common import ALL_CHANNELS, reachable_channels
from workflows.journey.base import JourneyBase
from workflows.journey.state import PLAN, LastMessage, QueuedMessage
from workflows.messaging import never, send
from workflows.models import MessageRequest
from workflows.policy import Channel, Tone

PATCH_WITHDRAW_SEND = "withdraw-send-on-hold"
PATCH_FALLBACK = "fall-back-to-another-channel"
PATCH_ONE_OFFS_WAIT = "one-off-messages-wait-for-holds"
PATCH_CONFIRM_DISPUTE = "confirm-a-debtors-dispute"
"""Before it, a one-off message that met a hold was withdrawn for good."""
PATCH_CLOSED_WHILE_RECORDING = "withdraw-a-message-when-closed-while-recording"
"""Before it, a message whose journey closed while the record before it was written was sent."""


class Messages(JourneyBase):
    def _one_off_waits(self) -> bool:
        """A one-off message is queued while a hold stops the chasing: it waits (or is dropped)."""
        return (
            bool(self._s.queued)
            and self._s.holds.shifting
            and not self._s.queued[0].during_holds
            and workflow.patched(PATCH_ONE_OFFS_WAIT)
        )

    def _drop_one_offs_during_plan(self) -> None:
        if PLAN in self._s.holds:
            for message in self._s.queued:
                self._emit(
                    "message_dropped",
                    "system",
                    template=message.template,
                    reason="an instalment plan runs; its own messages replace this one",
                )
            self._s.queued.clear()

    async def _send_queued(self) -> None:
        message = self._s.queued.pop(0)
        if message.resend:
            self._emit("message_resent", "system", template=message.template, reason="bounced")
        extra = dict(message.extra)
        sent = await self._deliver(
            message.key, message.template, message.tone, extra, any_hold=message.during_holds
        )
        if not sent and self._s.outcome is None and workflow.patched(PATCH_ONE_OFFS_WAIT):
            self._s.queued.insert(0, message)  # a hold came while it was sending: it waits

    def _queue_message(
        self, template: str, tone: Tone, during_holds: bool = False, **extra: str
    ) -> None:
        """Queue a one-off message; its key is unique, so a second one is not taken for a repeat."""
        key = f"{template}-{self._recorder.emitted}"
        queued = QueuedMessage(
            template=template, tone=tone, key=key, extra=extra, during_holds=during_holds
        )
        self._s.queued.append(queued)
        self._dirty = True

    async def _deliver(
        self,
        key: str,
        template: str,
        tone: Tone,
        extra: dict[str, str],
        channels: list[Channel] | None = None,
        *,
        first_that_works: bool = False,
        any_hold: bool = False,
    ) -> bool:
        """Deliver a message; False when it was withdrawn because the journey stopped chasing.

        `channels` given: send on each of them (a step's channels), unless `first_that_works`;
        none given: on the debtor's first reachable channel.
        """
        after_close = self._s.outcome is not None  # the thank-you
        await self._flush()
        s = self._s
        if (
            s.outcome is not None
            and not after_close
            and workflow.patched(PATCH_CLOSED_WHILE_RECORDING)
        ):
            # Paid (or closed) while the record before it was written: not sent.
            self._emit("message_withdrawn", "system", template=template, reason=self._stage().value)
            return False
        all_channels = channels is not None and not first_that_works
        ordered = reachable_channels(s.customer, channels or ALL_CHANNELS, s.unreachable)
        if not ordered:
            return await self._fall_back(key, template, tone, extra, channels, first_that_works)
        snapshot = self._snapshot()
        request = MessageRequest(
            key_prefix=f"{workflow.info().workflow_id}:{key}",
            start=self._recorder.carried_start(snapshot),
            invoice=self._invoice.model_copy(update={"customer": s.customer}),
            outstanding=s.outstanding,
            template=template,
            tone=tone,
            channels=ordered,
            all_channels=all_channels,
            unreachable=sorted(s.unreachable),
            next_step=self._ladder.next_step_note(s),
            extra=extra,
            snapshot=snapshot,
            at=workflow.now(),
        )
        open_ = s.outcome is None
        result = await send(
            request,
            s.must_stop_sending if open_ and not any_hold else never,
            lambda: open_ and workflow.patched(PATCH_WITHDRAW_SEND),
        )
        if result is None:
            self._emit("message_withdrawn", "system", template=template, reason=self._stage().value)
            return False
        if request.start is not None:
            self._recorder.start_written()  # each of its activities writes it first
        for outcome in result.outcomes:
            if outcome.permanent:
                s.unreachable.add(outcome.channel)
        if not result.delivered:
            return await self._fall_back(key, template, tone, extra, channels, first_that_works)
        reached = {o.channel for o in result.outcomes if o.status in ("sent", "outbox")}
        s.last_message = LastMessage(
            key=key, template=template, tone=tone, extra=dict(extra), reached=reached
        )
        if template != "thank_you":
            s.ladder.used(tone)
        return True

    async def _fall_back(
        self,
        key: str,
        template: str,
        tone: Tone,
        extra: dict[str, str],
        tried: list[Channel] | None,
        fallen_back: bool,
    ) -> bool:
        """The message reached nobody on its channels: try the debtor's other channels once."""
        if not fallen_back and tried is not None and workflow.patched(PATCH_FALLBACK):
            others = [c for c in ALL_CHANNELS if c not in tried]
            if reachable_channels(self._s.customer, others, self._s.unreachable):
                self._emit(
                    "channel_fallback",
                    "system",
                    template=template,
                    unreachable=[c.value for c in tried],
                )
                return await self._deliver(
                    key, template, tone, extra, others, first_that_works=True
                )
        self._no_working_contact(template)
        return True

    def _no_working_contact(self, template: str) -> None:
        if self._s.outcome is None:
            self._task(
                "no_working_contact",
                f"No working contact for invoice {self._invoice.invoice_id}: "
                f"message {template} reached nobody; find a new email or phone",
            )
