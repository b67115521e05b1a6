"""The collection journey: one long-lived workflow per unpaid invoice.

`run()` reads like the policy: for each step, wait until it falls due (or until something changes),
then perform it. Facts from outside arrive as signals, refusable commands as updates with
validators, and the current state is the `status` query. Everything the journey learns is written to
the read model through the `record_journey` activity; messages go out through `deliver_message`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import schedule
    from workflows.models import (
        ActionResult,
        ChannelOptedOut,
        Close,
        ContactChanged,
        Customer,
        DisputeOutcome,
        Invoice,
        JourneyInput,
        JourneyStatus,
        MessageRequest,
        MessageResult,
        NextAction,
        NextStepNote,
        OpenDispute,
        Outcome,
        Pause,
        PaymentReceived,
        RecordRequest,
        ResolveDispute,
        Resume,
        Snapshot,
        Stage,
        TaskCompleted,
        TaskRequest,
        TimelineEvent,
    )
    from workflows.policy import Channel, Step, StepAction, Tone

CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
JOURNEY_STAGE = SearchAttributeKey.for_keyword("JourneyStage")
AMOUNT_OUTSTANDING = SearchAttributeKey.for_float("AmountOutstanding")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
SEARCH_ATTRIBUTES = (CUSTOMER_ID, INVOICE_ID, JOURNEY_STAGE, AMOUNT_OUTSTANDING, NEXT_ACTION_AT)

RECORD_ACTIVITY = "record_journey"
_PATCH_UPDATE_RECORDS = "update-records-its-own-event"
_PATCH_WITHDRAW_SEND = "withdraw-send-on-hold"
DELIVER_ACTIVITY = "deliver_message"

# Retry for as long as it takes: an outage or a bad template must delay the journey (visibly, in
# the UI's pending activity), never fail it and so lose it.
_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
)

_HOLD_DISPUTE = "dispute"
_HOLD_PAUSE = "pause"
_HOLD_CALL = "personal_call"
# Disputes and pauses move the rest of the ladder; waiting for a key customer's call does not (the
# catch-up rule applies instead: the invoice's real due date still counts).
_SHIFTING_HOLDS = frozenset({_HOLD_DISPUTE, _HOLD_PAUSE})


def workflow_id(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


def journey_summary(invoice: Invoice) -> str:
    """The one-line summary shown for each journey in the Temporal UI."""
    return f"{invoice.invoice_id} · {invoice.currency} {invoice.amount} · due {invoice.due_on}"


def start_search_attributes(invoice: Invoice) -> TypedSearchAttributes:
    """Search attributes set when a journey starts. Never names, emails or phone numbers."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(CUSTOMER_ID, invoice.customer.id),
            SearchAttributePair(INVOICE_ID, invoice.invoice_id),
            SearchAttributePair(JOURNEY_STAGE, Stage.scheduled.value),
            SearchAttributePair(AMOUNT_OUTSTANDING, float(invoice.amount)),
        ]
    )


def _refuse(message: str, type: str) -> ApplicationError:
    return ApplicationError(message, type=type, non_retryable=True)


@workflow.defn(name="InvoiceJourney")
class InvoiceJourney:
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        self._input = input
        self._invoice = input.invoice
        self._customer: Customer = input.invoice.customer
        self._policy = input.policy
        self._steps: list[Step] = list(input.policy.steps)
        self._outstanding: Decimal = input.invoice.amount
        self._outcome: Outcome | None = None
        self._payments: dict[str, PaymentReceived] = {}
        self._next_index = 0
        self._performed_any = False
        self._shift = timedelta(0)
        self._holds: set[str] = set()
        self._hold_since: datetime | None = None
        self._dispute: OpenDispute | None = None
        self._dispute_opened_at: datetime | None = None
        self._dispute_task_created = False
        self._pause: Pause | None = None
        self._unreachable: set[Channel] = set()
        self._last_tone: Tone | None = None
        self._queued_messages: list[tuple[str, Tone, dict[str, str]]] = []
        self._pending: list[TimelineEvent] = []
        self._pending_tasks: list[TaskRequest] = []
        self._emitted = 0
        self._flushed = 0
        self._flush_lock = asyncio.Lock()
        self._first_flush_done = False
        self._dirty = False
        self._sa_stage: str | None = Stage.scheduled.value
        self._sa_outstanding: float | None = float(input.invoice.amount)
        self._sa_next: datetime | None = None

    # ---- the journey ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyStatus:
        self._emit(
            "journey_started",
            input.actor,
            policy=self._policy.name,
            policy_version=self._policy.version,
            amount=str(self._invoice.amount),
            currency=self._invoice.currency,
            due_on=self._invoice.due_on.isoformat(),
        )
        await self._flush(first=True)
        if self._customer.kind == "key":
            self._hold(_HOLD_CALL)
            self._task(
                "personal_call",
                f"Call key customer {self._customer.id} about invoice {self._invoice.invoice_id} "
                "before any automatic reminder",
            )
        self._skip_overdue_steps("late start")

        while self._outcome is None:
            self._dirty = False
            await self._flush()
            if self._queued_messages:
                await self._send_queued()
            elif self._holds:
                await self._wait_on_hold()
            elif self._next_index >= len(self._steps):
                await self._wait_for_change(None, "ladder finished: waiting on an agent")
            else:
                at = self._step_at(self._next_index)
                if at > workflow.now():
                    step = self._steps[self._next_index]
                    summary = schedule.describe_wait(at, self._customer.timezone, step.name)
                    await self._wait_for_change(at, summary)
                else:
                    self._skip_overdue_steps("late: several steps fell due at once")
                    await self._perform(self._next_index)

        await self._flush()
        if self._outcome == Outcome.paid:
            await self._deliver("thank_you", "thank_you", Tone.friendly, {})
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return self.status()

    async def _perform(self, index: int) -> None:
        """Perform one step. The index moves on first, so what is recorded shows the step after."""
        step = self._steps[index]
        performed_before = self._performed_any
        self._next_index = index + 1
        self._performed_any = True
        if step.action == StepAction.agent_task:
            self._task(
                "call_debtor",
                f"Call the debtor about invoice {self._invoice.invoice_id} "
                f"({self._invoice.currency} {self._outstanding} outstanding)",
                step=step.name,
            )
        elif step.action == StepAction.hand_over:
            self._task(
                "hand_over",
                f"Hand invoice {self._invoice.invoice_id} over to the collection agency",
                step=step.name,
            )
            self._close(Outcome.handed_over, "system", "policy step hand_over")
        else:
            assert step.template is not None and step.tone is not None
            if not await self._deliver(
                step.name, step.template, step.tone, {}, list(step.channels)
            ):
                # Withdrawn: as if not yet performed, so it goes out when the journey resumes.
                self._next_index, self._performed_any = index, performed_before

    def _skip_overdue_steps(self, reason: str) -> None:
        """Send at most one catch-up message: skip every overdue step but the latest."""
        now = workflow.now()
        times = [self._step_at(i) for i in range(len(self._steps))]
        target = schedule.catch_up(times, self._next_index, now)
        if target > self._next_index:
            skipped = [s.name for s in self._steps[self._next_index : target]]
            self._emit("steps_skipped", "system", steps=skipped, reason=reason)
            self._next_index = target

    def _step_at(self, index: int) -> datetime:
        c = self._customer
        # The holiday tables look up (unused) translations through `locale`, which the sandbox
        # forbids; the dates themselves are pure data, so the call is deterministic.
        with workflow.unsafe.sandbox_unrestricted():
            return schedule.step_time(
                self._due_moment(),
                self._steps[index].offset,
                self._shift,
                self._policy.send_window,
                c.timezone,
                c.country,
            )

    def _due_moment(self) -> datetime:
        return schedule.due_moment(
            self._invoice.due_on,
            self._invoice.due_at,
            self._customer.timezone,
            self._policy.send_window,
        )

    # ---- holds: dispute, pause, personal call --------------------------------------------------

    def _hold(self, kind: str) -> None:
        if kind in _SHIFTING_HOLDS and not self._holds & _SHIFTING_HOLDS:
            self._hold_since = workflow.now()
        self._holds.add(kind)
        self._dirty = True

    def _release(self, kind: str) -> None:
        self._holds.discard(kind)
        if not self._holds & _SHIFTING_HOLDS and self._hold_since is not None:
            # Every remaining step moves by the time spent on hold: no burst after a pause.
            self._shift += workflow.now() - self._hold_since
            self._hold_since = None
        self._dirty = True

    async def _wait_on_hold(self) -> None:
        deadlines: list[tuple[datetime, str]] = []
        if (
            _HOLD_DISPUTE in self._holds
            and not self._dispute_task_created
            and self._dispute_opened_at is not None
        ):
            deadlines.append(
                (self._dispute_opened_at + self._policy.dispute_review_after, "dispute review")
            )
        if _HOLD_PAUSE in self._holds and self._pause and self._pause.until:
            deadlines.append((self._pause.until, "end of pause"))
        deadline = min(deadlines) if deadlines else None
        summary = (
            schedule.describe_wait(deadline[0], self._customer.timezone, deadline[1])
            if deadline
            else f"on hold: {', '.join(sorted(self._holds))}"
        )
        await self._wait_for_change(deadline[0] if deadline else None, summary)
        now = workflow.now()
        if self._outcome is not None:
            return
        if (
            _HOLD_DISPUTE in self._holds
            and not self._dispute_task_created
            and self._dispute_opened_at is not None
            and now >= self._dispute_opened_at + self._policy.dispute_review_after
        ):
            self._dispute_task_created = True
            self._task(
                "review_dispute",
                f"Review the dispute on invoice {self._invoice.invoice_id}: "
                f"{self._dispute.reason if self._dispute else ''}",
            )
        if _HOLD_PAUSE in self._holds and self._pause and self._pause.until:
            if now >= self._pause.until:
                self._pause = None
                self._release(_HOLD_PAUSE)
                self._emit("resumed", "system", reason="pause ended")

    async def _wait_for_change(self, until: datetime | None, summary: str) -> None:
        """Sleep until `until` (or forever), waking early when a signal or update changed things."""
        self._publish()
        if until is None:
            await workflow.wait_condition(lambda: self._dirty or bool(self._pending))
            return
        timeout = until - workflow.now()
        if timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: self._dirty or bool(self._pending),
                timeout=timeout,
                timeout_summary=summary,
            )
        except TimeoutError:
            pass

    # ---- messages ------------------------------------------------------------------------------

    async def _send_queued(self) -> None:
        name, tone, extra = self._queued_messages.pop(0)
        await self._deliver(name, name, tone, extra)

    async def _deliver(
        self,
        key: str,
        template: str,
        tone: Tone,
        extra: dict[str, str],
        channels: list[Channel] | None = None,
    ) -> bool:
        """Deliver a message; False when it was withdrawn because the journey stopped chasing."""
        await self._flush()
        all_channels = channels is not None
        ordered = self._channel_order(channels or [Channel.email, Channel.sms, Channel.whatsapp])
        if not ordered:
            self._no_working_contact(template)
            return True
        request = MessageRequest(
            key_prefix=f"{workflow.info().workflow_id}:{key}",
            invoice=self._invoice.model_copy(update={"customer": self._customer}),
            outstanding=self._outstanding,
            template=template,
            tone=tone,
            channels=ordered,
            all_channels=all_channels,
            unreachable=sorted(self._unreachable),
            next_step=self._next_step_note(),
            extra=extra,
            snapshot=self._snapshot(),
            at=workflow.now(),
        )
        summary = f"{'+'.join(c.value for c in ordered)} · {tone.value} · {template}"
        if self._outcome is None and workflow.patched(_PATCH_WITHDRAW_SEND):
            sent = await self._send_unless_stopped(request, summary)
            if sent is None:
                reason = self._stage().value
                self._emit("message_withdrawn", "system", template=template, reason=reason)
                return False
            result = sent
        else:
            result = await workflow.execute_activity(
                DELIVER_ACTIVITY,
                request,
                result_type=MessageResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=_RETRY,
                summary=summary,
            )
        for outcome in result.outcomes:
            if outcome.permanent:
                self._unreachable.add(outcome.channel)
        if result.delivered:
            if template not in ("thank_you",):
                self._last_tone = (
                    tone
                    if self._last_tone is None
                    else max(self._last_tone, tone, key=lambda t: t.rank)
                )
        else:
            self._no_working_contact(template)
        return True

    async def _send_unless_stopped(
        self, request: MessageRequest, summary: str
    ) -> MessageResult | None:
        """Send; withdraw the send (None) if a dispute, pause or closing comes first.

        A send still retrying (a provider outage) must not go out after the debtor disputed.
        An attempt already in flight may still complete: its message key then shows it as sent,
        and performing the step again later sends nothing more.
        """
        activity = workflow.start_activity(
            DELIVER_ACTIVITY,
            request,
            result_type=MessageResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=_RETRY,
            summary=summary,
        )
        await workflow.wait_condition(lambda: activity.done() or self._must_stop_sending())
        if not activity.done():
            activity.cancel()
        try:
            return await activity
        except (ActivityError, asyncio.CancelledError):
            return None

    def _must_stop_sending(self) -> bool:
        return self._outcome is not None or bool(self._holds & _SHIFTING_HOLDS)

    def _no_working_contact(self, template: str) -> None:
        if self._outcome is None:
            self._task(
                "no_working_contact",
                f"No working contact for invoice {self._invoice.invoice_id}: "
                f"message {template} reached nobody; find a new email or phone",
            )

    def _channel_order(self, channels: list[Channel]) -> list[Channel]:
        """The debtor's preferred channel first; only channels with a contact we may use."""
        preferred = self._customer.preferred_channel
        ordered = sorted(channels, key=lambda c: 0 if c == preferred else 1)
        return [c for c in ordered if self._has_contact(c) and c not in self._unreachable]

    def _has_contact(self, channel: Channel) -> bool:
        if channel == Channel.email:
            return bool(self._customer.email)
        return bool(self._customer.phone)

    def _next_step_note(self) -> NextStepNote:
        index = self._next_index
        if self._outcome is not None or index >= len(self._steps):
            return NextStepNote(kind="none")
        step = self._steps[index]
        at = self._step_at(index)
        if step.action == StepAction.agent_task:
            return NextStepNote(kind="agent_call", at=at)
        if step.action == StepAction.hand_over:
            return NextStepNote(kind="hand_over", at=at)
        return NextStepNote(kind="reminder", at=at)

    # ---- recording: timeline, read model, search attributes, UI details ------------------------

    def _emit(self, kind: str, actor: str, **detail: object) -> int:
        self._emitted += 1
        self._pending.append(
            TimelineEvent(
                key=f"{workflow.info().workflow_id}:{self._emitted}",
                at=workflow.now(),
                kind=kind,
                actor=actor,
                detail={k: v for k, v in detail.items() if v is not None},
            )
        )
        self._dirty = True
        return self._emitted

    def _task(self, kind: str, title: str, **detail: str) -> None:
        key = f"{workflow.info().workflow_id}:{kind}:{self._emitted + 1}"
        self._pending_tasks.append(TaskRequest(key=key, kind=kind, title=title, detail=detail))
        self._emit("agent_task", "system", task=kind, title=title, **detail)

    async def _flush(self, first: bool = False) -> None:
        """Write pending timeline events and tasks to the read model in one activity."""
        async with self._flush_lock:
            await self._flush_pending(first)
            self._first_flush_done = True

    async def _flush_pending(self, first: bool) -> None:
        if self._pending:
            events, self._pending = self._pending, []
            tasks, self._pending_tasks = self._pending_tasks, []
            high = self._emitted
            request = RecordRequest(
                snapshot=self._snapshot(),
                events=events,
                tasks=tasks,
                invoice=self._invoice if first else None,
                policy_name=self._policy.name if first else None,
                policy_version=self._policy.version if first else None,
                fingerprint=self._input.fingerprint if first else None,
            )
            await workflow.execute_activity(
                RECORD_ACTIVITY,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_RETRY,
                summary="record " + ", ".join(e.kind for e in events),
            )
            self._flushed = max(self._flushed, high)
        self._publish()

    def _publish(self) -> None:
        """Keep the search attributes and the UI's current details in step with the journey."""
        stage = self._stage().value
        outstanding = float(self._outstanding)
        next_action = self._next_action()
        next_at = next_action.at if next_action else None
        updates: list[SearchAttributeUpdate[Any]] = []
        if stage != self._sa_stage:
            updates.append(JOURNEY_STAGE.value_set(stage))
        if outstanding != self._sa_outstanding:
            updates.append(AMOUNT_OUTSTANDING.value_set(outstanding))
        if next_at != self._sa_next:
            updates.append(
                NEXT_ACTION_AT.value_set(next_at) if next_at else NEXT_ACTION_AT.value_unset()
            )
        if updates:
            workflow.upsert_search_attributes(updates)
            self._sa_stage, self._sa_outstanding, self._sa_next = stage, outstanding, next_at
        details = f"**{stage}** · outstanding {self._invoice.currency} {self._outstanding}"
        if next_action:
            what = next_action.action or "+".join(c.value for c in next_action.channels or [])
            details += (
                f"\n\nnext: {next_action.step} ({what}) at {next_action.at:%Y-%m-%d %H:%M} UTC"
            )
        if self._holds:
            details += f"\n\non hold: {', '.join(sorted(self._holds))}"
        workflow.set_current_details(details)

    def _stage(self) -> Stage:
        if self._outcome is not None:
            return Stage(self._outcome.value)
        if _HOLD_DISPUTE in self._holds:
            return Stage.disputed
        if _HOLD_PAUSE in self._holds:
            return Stage.paused
        if _HOLD_CALL in self._holds or self._next_index >= len(self._steps):
            return Stage.agent
        return Stage.reminding if self._performed_any else Stage.scheduled

    def _next_action(self) -> NextAction | None:
        if self._outcome is not None or self._holds or self._next_index >= len(self._steps):
            return None
        step = self._steps[self._next_index]
        return NextAction(
            at=self._step_at(self._next_index),
            step=step.name,
            channels=list(step.channels) if step.is_message else None,
            action=step.action.value if step.action else None,
        )

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            invoice_id=self._invoice.invoice_id,
            customer_id=self._customer.id,
            stage=self._stage(),
            outcome=self._outcome,
            outstanding=self._outstanding,
            next_action=self._next_action(),
        )

    def _result(self, detail: str = "") -> ActionResult:
        return ActionResult(
            stage=self._stage(), outcome=self._outcome, outstanding=self._outstanding, detail=detail
        )

    async def _recorded(self, mark: int) -> None:
        """Answer an update only once its event is in the read model (read-your-writes).

        The handler records its event itself, so an update is answered even while the main loop
        waits on a slow activity (a provider outage retrying a send). Journeys begun before this
        waited for the main loop to record it: the patch keeps their histories replaying.
        """
        if workflow.patched(_PATCH_UPDATE_RECORDS) and self._first_flush_done:
            await self._flush()
        await workflow.wait_condition(lambda: self._flushed >= mark)

    def _close(self, outcome: Outcome, actor: str, reason: str) -> int:
        self._outcome = outcome
        self._holds.clear()
        return self._emit("closed", actor, outcome=outcome.value, reason=reason)

    # ---- facts: signals ------------------------------------------------------------------------

    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        if payment.reference in self._payments:
            return  # the same payment reported again
        self._payments[payment.reference] = payment
        if self._outcome is not None:
            self._emit(
                "payment",
                payment.actor,
                amount=str(payment.amount),
                reference=payment.reference,
                note="received after the journey closed",
            )
            return
        self._outstanding -= payment.amount
        self._emit(
            "payment",
            payment.actor,
            amount=str(payment.amount),
            reference=payment.reference,
            paid_at=payment.paid_at.isoformat() if payment.paid_at else None,
            outstanding=str(max(self._outstanding, Decimal(0))),
        )
        if self._outstanding <= 0:
            surplus = -self._outstanding
            self._outstanding -= self._outstanding  # zero, in the invoice's own decimals
            if surplus > 0:
                self._task(
                    "overpayment",
                    f"Invoice {self._invoice.invoice_id} was overpaid by "
                    f"{self._invoice.currency} {surplus}: refund or allocate it",
                    surplus=str(surplus),
                )
            self._close(Outcome.paid, payment.actor, "paid in full")

    @workflow.signal
    def contact_changed(self, change: ContactChanged) -> None:
        updates = change.model_dump(exclude_none=True, exclude={"actor"})
        self._customer = self._customer.model_copy(update=updates)
        if change.email:
            self._unreachable.discard(Channel.email)
        if change.phone:
            self._unreachable -= {Channel.sms, Channel.whatsapp}
        self._emit("contact_changed", change.actor, fields=sorted(updates))

    @workflow.signal
    def channel_opted_out(self, opt_out: ChannelOptedOut) -> None:
        self._unreachable.add(opt_out.channel)
        self._emit("opted_out", opt_out.actor, channel=opt_out.channel.value)

    @workflow.signal
    def task_completed(self, done: TaskCompleted) -> None:
        if done.kind == "personal_call" and _HOLD_CALL in self._holds:
            self._release(_HOLD_CALL)
        self._emit(
            "task_completed", done.actor, task=done.kind, task_id=done.task_id, note=done.note
        )

    # ---- commands: updates ---------------------------------------------------------------------

    def _must_be_open(self) -> None:
        if self._outcome is not None:
            raise _refuse(f"the journey is closed ({self._outcome.value})", "JourneyClosed")

    @workflow.update
    async def open_dispute(self, cmd: OpenDispute) -> ActionResult:
        self._dispute = cmd
        self._dispute_opened_at = workflow.now()
        self._dispute_task_created = False
        self._hold(_HOLD_DISPUTE)
        await self._recorded(self._emit("dispute_opened", cmd.actor, reason=cmd.reason))
        return self._result("reminders stopped while the dispute is open")

    @open_dispute.validator
    def _validate_open_dispute(self, cmd: OpenDispute) -> None:
        self._must_be_open()
        if self._dispute is not None:
            raise _refuse("a dispute is already open on this invoice", "DisputeAlreadyOpen")

    @workflow.update
    async def resolve_dispute(self, cmd: ResolveDispute) -> ActionResult:
        self._dispute = None
        self._dispute_opened_at = None
        detail: dict[str, object] = {"outcome": cmd.outcome.value, "note": cmd.note or None}
        if cmd.outcome == DisputeOutcome.adjusted:
            assert cmd.amount is not None
            detail["previous_outstanding"] = str(self._outstanding)
            self._outstanding = cmd.amount
            detail["outstanding"] = str(cmd.amount)
        mark = self._emit("dispute_resolved", cmd.actor, **detail)
        if cmd.outcome == DisputeOutcome.upheld:
            mark = self._close(Outcome.cancelled, cmd.actor, "dispute upheld")
        else:
            self._release(_HOLD_DISPUTE)
            if self._performed_any:
                self._queued_messages.append(
                    ("dispute_review", Tone.neutral, {"outcome": cmd.outcome.value})
                )
        await self._recorded(mark)
        return self._result()

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, cmd: ResolveDispute) -> None:
        self._must_be_open()
        if self._dispute is None:
            raise _refuse("there is no open dispute on this invoice", "NoOpenDispute")
        if cmd.outcome == DisputeOutcome.adjusted:
            if cmd.amount is None or cmd.amount <= 0:
                raise _refuse("an adjusted dispute needs the new positive amount", "InvalidAmount")
            if cmd.amount > self._outstanding:
                raise _refuse(
                    f"the adjusted amount {cmd.amount} is more than the outstanding "
                    f"{self._outstanding}; an adjustment can only lower it",
                    "InvalidAmount",
                )

    @workflow.update
    async def pause(self, cmd: Pause) -> ActionResult:
        self._pause = cmd
        self._hold(_HOLD_PAUSE)
        until = cmd.until.isoformat() if cmd.until else None
        await self._recorded(self._emit("paused", cmd.actor, reason=cmd.reason, until=until))
        return self._result()

    @pause.validator
    def _validate_pause(self, cmd: Pause) -> None:
        self._must_be_open()
        if self._pause is not None:
            raise _refuse("the journey is already paused", "AlreadyPaused")
        if cmd.until is not None and cmd.until <= workflow.now():
            raise _refuse("`until` must be in the future", "InvalidUntil")

    @workflow.update
    async def resume(self, cmd: Resume) -> ActionResult:
        self._pause = None
        self._release(_HOLD_PAUSE)
        await self._recorded(self._emit("resumed", cmd.actor, reason=cmd.reason or None))
        return self._result()

    @resume.validator
    def _validate_resume(self, cmd: Resume) -> None:
        self._must_be_open()
        if self._pause is None:
            raise _refuse("the journey is not paused", "NotPaused")

    @workflow.update
    async def cancel(self, cmd: Close) -> ActionResult:
        await self._recorded(self._close(Outcome.cancelled, cmd.actor, cmd.reason))
        return self._result()

    @cancel.validator
    def _validate_cancel(self, cmd: Close) -> None:
        self._must_be_open()

    @workflow.update
    async def write_off(self, cmd: Close) -> ActionResult:
        await self._recorded(self._close(Outcome.written_off, cmd.actor, cmd.reason))
        return self._result()

    @write_off.validator
    def _validate_write_off(self, cmd: Close) -> None:
        self._must_be_open()

    # ---- state: query --------------------------------------------------------------------------

    @workflow.query
    def status(self) -> JourneyStatus:
        return JourneyStatus(
            invoice_id=self._invoice.invoice_id,
            customer_id=self._customer.id,
            stage=self._stage(),
            outcome=self._outcome,
            amount=self._invoice.amount,
            outstanding=self._outstanding,
            currency=self._invoice.currency,
            due_on=self._invoice.due_on,
            next_action=self._next_action(),
            dispute_reason=self._dispute.reason if self._dispute else None,
            paused_reason=self._pause.reason if self._pause else None,
            last_tone=self._last_tone,
            payments=sorted(self._payments),
        )
