"""The collection journey: one long-lived workflow per unpaid invoice.

`run()` reads like the policy: for each step, wait until it falls due (or until something changes),
then perform it. Facts from outside arrive as signals, refusable commands as updates with
validators, and the current state is the `status` query. Everything the journey learns is written to
the read model through the `record_journey` activity; messages go out through `deliver_message`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import schedule
    from workflows.common import (
        ALL_CHANNELS,
        AMOUNT_OUTSTANDING,
        CUSTOMER_ID,
        DELIVER_ACTIVITY,
        DELIVER_TIMEOUT,
        INVOICE_ID,
        JOURNEY_STAGE,
        NEXT_ACTION_AT,
        RECORD_ACTIVITY,
        RETRY,
        apply_contact_change,
        fits_currency,
        reachable_channels,
    )
    from workflows.delivery import (
        PATCH_PER_CHANNEL,
        deliver_on_journey_queue,
        deliver_per_channel,
    )
    from workflows.models import (
        ActionResult,
        AgreeArrangement,
        CancelArrangement,
        ChannelOptedIn,
        ChannelOptedOut,
        Close,
        ContactChanged,
        Customer,
        DisputeOutcome,
        EndPlan,
        Invoice,
        JourneyInput,
        JourneyStatus,
        MessageBounced,
        MessageRequest,
        MessageResult,
        NextAction,
        NextStepNote,
        OpenDispute,
        Outcome,
        Pause,
        PaymentReceived,
        PlanHold,
        PlanInput,
        PlanOutcome,
        PlanResult,
        PromiseToPay,
        RecordRequest,
        ResolveDispute,
        Resume,
        Snapshot,
        Stage,
        TaskCompleted,
        TaskRequest,
        TimelineEvent,
    )
    from workflows.plan import (
        InstalmentPlan,
        instalment_due,
        plan_search_attributes,
        plan_summary,
        plan_workflow_id,
    )
    from workflows.policy import Channel, Step, StepAction, Tone

_PATCH_UPDATE_RECORDS = "update-records-its-own-event"
_PATCH_WITHDRAW_SEND = "withdraw-send-on-hold"
_PATCH_FALLBACK = "fall-back-to-another-channel"
_PATCH_SPREAD = "spread-sends-over-the-window"

_HOLD_DISPUTE = "dispute"
_HOLD_PAUSE = "pause"
_HOLD_CALL = "personal_call"
_HOLD_PROMISE = "promise"
_HOLD_PLAN = "arrangement"
# Disputes, pauses, promises and plans move the rest of the ladder; waiting for a key customer's
# call does not (the catch-up rule applies instead: the invoice's real due date still counts).
_SHIFTING_HOLDS = frozenset({_HOLD_DISPUTE, _HOLD_PAUSE, _HOLD_PROMISE, _HOLD_PLAN})
# Holds that stop an instalment plan's own reminders too.
_CHASING_STOPPED = frozenset({_HOLD_DISPUTE, _HOLD_PAUSE})


@dataclass
class _SentMessage:
    """The journey's latest message, so that a later bounce can send it again elsewhere."""

    key: str
    template: str
    tone: Tone
    extra: dict[str, str]
    reached: set[Channel]


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


def _days(duration: timedelta) -> str:
    days = duration / timedelta(days=1)
    return f"{days:g} days" if days >= 1 else f"{duration.total_seconds():g} seconds"


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
        self._bounced: set[str] = set()
        self._last_message: _SentMessage | None = None
        self._spread = timedelta(0)
        window = self._policy.send_window
        if window is not None and window.spread and workflow.patched(_PATCH_SPREAD):
            # Journeys started before the spread existed keep their exact step times.
            self._spread = schedule.spread_offset(self._invoice.invoice_id, window.spread)
        self._last_tone: Tone | None = None
        self._queued_messages: list[tuple[str, Tone, dict[str, str]]] = []
        self._promise: PromiseToPay | None = None
        self._promise_due: datetime | None = None
        self._promise_paid = Decimal(0)
        self._promises_made = 0
        self._tone_floor: Tone | None = None
        self._plan_requests: list[AgreeArrangement] = []
        self._plan_number = 0
        self._plan: workflow.ChildWorkflowHandle[Any, PlanResult] | None = None
        self._plan_outbox: list[tuple[str, Any]] = []
        self._plan_runner: asyncio.Task[None] | None = None
        self._plan_held = False
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
        if self._plan_runner is not None:
            await self._plan_runner
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
        elif self._tone_floor is not None and step.tone and step.tone.rank < self._tone_floor.rank:
            # After a lapsed plan the journey never goes back to a softer tone.
            self._emit("steps_skipped", "system", steps=[step.name], reason="softer than before")
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
                self._spread,
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
        if _HOLD_PROMISE in self._holds and self._promise_due is not None:
            deadlines.append((self._promise_due, "the promised payment"))
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
                self._tell_plan_hold()
        if (
            _HOLD_PROMISE in self._holds
            and self._promise_due is not None
            and now >= self._promise_due
        ):
            self._promise_broken()

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
        key = extra.pop("_key", name)
        if extra.pop("_resend", None):
            self._emit("message_resent", "system", template=name, reason="bounced")
        await self._deliver(key, name, tone, extra)

    def _queue_message(self, template: str, tone: Tone, **extra: str) -> None:
        """Queue a one-off message; its key is unique, so a second one is not taken for a repeat."""
        extra["_key"] = f"{template}-{self._emitted}"
        self._queued_messages.append((template, tone, extra))
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
    ) -> bool:
        """Deliver a message; False when it was withdrawn because the journey stopped chasing.

        `channels` given: send on each of them (a step's channels), unless `first_that_works`;
        none given: on the debtor's first reachable channel. When the message reaches nobody, it
        falls back once to the debtor's other reachable channels; with none left an agent is
        asked to find a working contact.
        """
        await self._flush()
        all_channels = channels is not None and not first_that_works
        ordered = reachable_channels(self._customer, channels or ALL_CHANNELS, self._unreachable)
        if not ordered:
            return await self._fall_back(key, template, tone, extra, channels, first_that_works)
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
        if workflow.patched(PATCH_PER_CHANNEL):
            stop = self._must_stop_sending if self._outcome is None else _never
            sent = await deliver_per_channel(request, f"{tone.value} · {template}", stop)
            if sent is None:
                self._emit(
                    "message_withdrawn", "system", template=template, reason=self._stage().value
                )
                return False
            result = sent
        elif self._outcome is None and workflow.patched(_PATCH_WITHDRAW_SEND):
            sent = await deliver_on_journey_queue(request, summary, self._must_stop_sending)
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
                start_to_close_timeout=DELIVER_TIMEOUT,
                retry_policy=RETRY,
                summary=summary,
            )
        for outcome in result.outcomes:
            if outcome.permanent:
                self._unreachable.add(outcome.channel)
        if not result.delivered:
            return await self._fall_back(key, template, tone, extra, channels, first_that_works)
        reached = {o.channel for o in result.outcomes if o.status in ("sent", "outbox")}
        self._last_message = _SentMessage(key, template, tone, dict(extra), reached)
        if template not in ("thank_you",):
            self._last_tone = (
                tone
                if self._last_tone is None
                else max(self._last_tone, tone, key=lambda t: t.rank)
            )
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
        if not fallen_back and tried is not None and workflow.patched(_PATCH_FALLBACK):
            others = [c for c in ALL_CHANNELS if c not in tried]
            if reachable_channels(self._customer, others, self._unreachable):
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

    def _must_stop_sending(self) -> bool:
        return self._outcome is not None or bool(self._holds & _SHIFTING_HOLDS)

    def _no_working_contact(self, template: str) -> None:
        if self._outcome is None:
            self._task(
                "no_working_contact",
                f"No working contact for invoice {self._invoice.invoice_id}: "
                f"message {template} reached nobody; find a new email or phone",
            )

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
                retry_policy=RETRY,
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
        if _HOLD_PLAN in self._holds:
            return Stage.arrangement
        if _HOLD_PROMISE in self._holds:
            return Stage.promised
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
        self._promise = self._promise_due = None
        if self._plan is not None:
            self._to_plan(
                "end_plan", EndPlan(outcome=PlanOutcome.ended, reason=reason, actor=actor)
            )
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
        if self._plan is not None:
            self._to_plan("payment_received", payment)
        if self._promise is not None:
            self._promise_paid += payment.amount
            if self._outstanding > 0 and self._promise_paid >= (self._promise.amount or 0) > 0:
                self._promise_kept(payment.actor)
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
        self._customer, self._unreachable, fields = apply_contact_change(
            self._customer, self._unreachable, change
        )
        self._emit("contact_changed", change.actor, fields=fields)
        if self._plan is not None:
            self._to_plan("contact_changed", change)

    @workflow.signal
    def channel_opted_out(self, opt_out: ChannelOptedOut) -> None:
        self._unreachable.add(opt_out.channel)
        self._emit("opted_out", opt_out.actor, channel=opt_out.channel.value)
        if self._plan is not None:
            self._to_plan("channel_opted_out", opt_out)

    @workflow.signal
    def channel_opted_in(self, opt_in: ChannelOptedIn) -> None:
        self._unreachable.discard(opt_in.channel)
        self._emit("opted_in", opt_in.actor, channel=opt_in.channel.value)
        if self._plan is not None:
            self._to_plan("channel_opted_in", opt_in)

    @workflow.signal
    def message_bounced(self, bounce: MessageBounced) -> None:
        """A message accepted earlier never arrived: stop using that channel, send it elsewhere."""
        if bounce.message_key in self._bounced:
            return
        self._bounced.add(bounce.message_key)
        self._unreachable.add(bounce.channel)
        self._emit(
            "message_bounced",
            bounce.actor,
            channel=bounce.channel.value,
            reason=bounce.reason or None,
            message_key=bounce.message_key,
        )
        if self._plan is not None:
            self._to_plan("message_bounced", bounce)
        last = self._last_message
        if (
            last is None
            or bounce.message_key
            != f"{workflow.info().workflow_id}:{last.key}:{bounce.channel.value}"
        ):
            return  # not the latest message: the next one avoids the channel anyway
        last.reached.discard(bounce.channel)
        if last.reached or self._outcome is not None or self._holds & _SHIFTING_HOLDS:
            return
        if reachable_channels(self._customer, ALL_CHANNELS, self._unreachable):
            self._queued_messages.append(
                (last.template, last.tone, {**last.extra, "_key": last.key, "_resend": "1"})
            )
        else:
            self._no_working_contact(last.template)

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
        self._tell_plan_hold()
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
            self._tell_plan_hold()
            if cmd.outcome == DisputeOutcome.adjusted and self._plan is not None:
                # The plan no longer adds up: it ends, and an agent agrees a new one.
                self._end_plan(PlanOutcome.ended, "the dispute changed the amount", cmd.actor)
                self._task(
                    "agree_plan",
                    f"Agree a new instalment plan for invoice {self._invoice.invoice_id}: "
                    f"the dispute set the amount to {self._invoice.currency} {cmd.amount}",
                )
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
        self._tell_plan_hold()
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
        self._tell_plan_hold()
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

    @workflow.update
    async def promise_to_pay(self, cmd: PromiseToPay) -> ActionResult:
        if self._promises_made >= self._policy.max_promises:
            self._task(
                "agree_plan",
                f"The debtor of invoice {self._invoice.invoice_id} asked for another promise to "
                f"pay, beyond the policy's {self._policy.max_promises}: call to agree a plan",
            )
            await self._recorded(
                self._emit("promise_refused", cmd.actor, reason="max_promises reached")
            )
            raise _refuse(
                f"this invoice already had {self._promises_made} promises, the most the policy "
                "allows; a task to call the debtor and agree a plan was created instead",
                "PromiseLimitReached",
            )
        replaced = self._promise is not None
        self._promises_made += 1
        self._promise = cmd
        self._promise_due = self._promised_moment(cmd) + self._policy.promise_grace
        self._promise_paid = Decimal(0)
        self._hold(_HOLD_PROMISE)
        mark = self._emit(
            "promise",
            cmd.actor,
            promised_on=cmd.promised_on.isoformat() if cmd.promised_on else None,
            promised_at=cmd.promised_at.isoformat() if cmd.promised_at else None,
            amount=str(cmd.amount) if cmd.amount is not None else None,
            grace_until=self._promise_due.isoformat(),
            replaces_earlier=replaced or None,
        )
        await self._recorded(mark)
        return self._result(f"reminders wait until {self._promise_due.isoformat()}")

    @promise_to_pay.validator
    def _validate_promise(self, cmd: PromiseToPay) -> None:
        self._must_be_open()
        self._must_not_be_disputed()
        if self._plan is not None:
            raise _refuse(
                "an instalment plan is running; cancel it or agree a new plan instead",
                "ArrangementActive",
            )
        if (cmd.promised_on is None) == (cmd.promised_at is None):
            raise _refuse("give exactly one of promised_on or promised_at", "InvalidPromise")
        now = workflow.now()
        tz = self._customer.timezone
        if cmd.promised_on is not None and cmd.promised_on < schedule.local_date(now, tz):
            raise _refuse(f"promised_on {cmd.promised_on} is in the past", "InvalidPromise")
        if cmd.promised_at is not None and schedule.utc(cmd.promised_at) <= now:
            raise _refuse(f"promised_at {cmd.promised_at} is in the past", "InvalidPromise")
        latest = now + self._policy.promise_max_delay
        if self._promised_moment(cmd) > latest:
            raise _refuse(
                f"the promised date is more than {_days(self._policy.promise_max_delay)} away "
                f"(the policy's promise_max_delay); the latest is {latest:%Y-%m-%d}, or agree "
                "an instalment plan",
                "InvalidPromise",
            )
        if cmd.amount is not None:
            self._check_amount(cmd.amount, "the promised amount")

    def _promised_moment(self, cmd: PromiseToPay) -> datetime:
        if cmd.promised_at is not None:
            return schedule.utc(cmd.promised_at)
        assert cmd.promised_on is not None
        return schedule.due_moment(
            cmd.promised_on, None, self._customer.timezone, self._policy.send_window
        )

    def _promise_kept(self, actor: str) -> None:
        self._emit("promise_kept", actor, paid=str(self._promise_paid))
        self._promise = self._promise_due = None
        self._release(_HOLD_PROMISE)
        self._queue_message("promise_kept", Tone.friendly)

    def _promise_broken(self) -> None:
        promise = self._promise
        assert promise is not None
        when = promise.promised_on or schedule.local_date(
            self._promised_moment(promise), self._customer.timezone
        )
        self._emit("promise_broken", "system", promised_on=when.isoformat())
        self._promise = self._promise_due = None
        self._release(_HOLD_PROMISE)
        self._queue_message(
            "promise_broken", self._at_least(Tone.neutral), promised_date=when.isoformat()
        )

    def _at_least(self, tone: Tone) -> Tone:
        last = self._last_tone
        return last if last is not None and last.rank > tone.rank else tone

    @workflow.update
    async def agree_arrangement(self, cmd: AgreeArrangement) -> ActionResult:
        if self._promise is not None:
            self._promise = self._promise_due = None
            self._release(_HOLD_PROMISE)
        self._hold(_HOLD_PLAN)
        number = self._plan_number + len(self._plan_requests) + 1
        self._plan_requests.append(cmd)
        if self._plan is not None:
            self._end_plan(PlanOutcome.superseded, f"replaced by plan {number}", cmd.actor)
        if self._plan_runner is None or self._plan_runner.done():
            self._plan_runner = asyncio.create_task(self._run_plans())
        mark = self._emit(
            "arrangement",
            cmd.actor,
            plan=number,
            workflow_id=plan_workflow_id(workflow.info().workflow_id, number),
            instalments=[
                {
                    "due_on": i.due_on.isoformat() if i.due_on else None,
                    "due_at": i.due_at.isoformat() if i.due_at else None,
                    "amount": str(i.amount),
                }
                for i in cmd.instalments
            ],
        )
        await self._recorded(mark)
        return self._result(f"instalment plan {number} agreed; its reminders replace the ladder")

    @agree_arrangement.validator
    def _validate_arrangement(self, cmd: AgreeArrangement) -> None:
        self._must_be_open()
        self._must_not_be_disputed()
        instalments = cmd.instalments
        limit = self._policy.max_instalments
        if not instalments:
            raise _refuse("a plan needs at least one instalment", "InvalidArrangement")
        if len(instalments) > limit:
            raise _refuse(
                f"{len(instalments)} instalments is more than the policy allows ({limit})",
                "InvalidArrangement",
            )
        currency = self._invoice.currency
        probe = PlanInput(
            invoice=self._invoice, number=0, policy=self._policy, instalments=instalments
        )
        previous: datetime | None = None
        now = workflow.now()
        for number, instalment in enumerate(instalments, start=1):
            name = f"instalment {number}"
            if (instalment.due_on is None) == (instalment.due_at is None):
                raise _refuse(f"{name}: give exactly one of due_on or due_at", "InvalidArrangement")
            if instalment.amount <= 0 or not fits_currency(instalment.amount, currency):
                raise _refuse(
                    f"{name}: the amount {instalment.amount} must be positive, with at most "
                    f"{currency}'s decimals",
                    "InvalidArrangement",
                )
            due, late = instalment_due(instalment, probe)
            if previous is not None and due <= previous:
                raise _refuse(f"{name}: due dates must be strictly ascending", "InvalidArrangement")
            if number == 1 and late <= now:
                raise _refuse(f"{name}: the first due date is in the past", "InvalidArrangement")
            previous = due
        total = sum((i.amount for i in instalments), Decimal(0))
        if total != self._outstanding:
            raise _refuse(
                f"the instalments add up to {currency} {total}, but {currency} "
                f"{self._outstanding} is outstanding; they must add up to it exactly",
                "InvalidArrangement",
            )

    @workflow.update
    async def cancel_arrangement(self, cmd: CancelArrangement) -> ActionResult:
        self._end_plan(PlanOutcome.cancelled, cmd.reason, cmd.actor)
        self._plan_requests.clear()
        await self._recorded(
            self._emit("arrangement_ended", cmd.actor, outcome="cancelled", reason=cmd.reason)
        )
        return self._result("the plan is cancelled; reminders resume")

    @cancel_arrangement.validator
    def _validate_cancel_arrangement(self, cmd: CancelArrangement) -> None:
        self._must_be_open()
        if self._plan is None and not self._plan_requests:
            raise _refuse("no instalment plan is running", "NoArrangement")

    def _must_not_be_disputed(self) -> None:
        if self._dispute is not None:
            raise _refuse("a dispute is open on this invoice; resolve it first", "DisputeOpen")

    def _check_amount(self, amount: Decimal, what: str) -> None:
        currency = self._invoice.currency
        if amount <= 0 or not fits_currency(amount, currency):
            raise _refuse(
                f"{what} {amount} must be positive, with at most {currency}'s decimals",
                "InvalidAmount",
            )
        if amount > self._outstanding:
            raise _refuse(
                f"{what} {amount} is more than the {currency} {self._outstanding} outstanding",
                "InvalidAmount",
            )

    # ---- the instalment plan (child workflow) --------------------------------------------------

    async def _run_plans(self) -> None:
        """Run the agreed plans one after another, passing payments and holds to the running one."""
        while self._plan_requests and self._outcome is None:
            request = self._plan_requests.pop(0)
            self._plan_number += 1
            journey_id = workflow.info().workflow_id
            plan_input = PlanInput(
                invoice=self._invoice.model_copy(update={"customer": self._customer}),
                number=self._plan_number,
                policy=self._policy,
                instalments=request.instalments,
                unreachable=sorted(self._unreachable),
                actor=request.actor,
            )
            self._plan_outbox.clear()
            self._plan_held = False
            handle = await workflow.start_child_workflow(
                InstalmentPlan.run,
                plan_input,
                id=plan_workflow_id(journey_id, self._plan_number),
                static_summary=plan_summary(plan_input),
                static_details=f"instalment plan of journey {journey_id}",
                search_attributes=plan_search_attributes(plan_input),
            )
            self._plan = handle
            self._tell_plan_hold()
            self._plan_finished(await self._drive_plan(handle))
        if _HOLD_PLAN in self._holds and not self._plan_requests:
            self._release(_HOLD_PLAN)

    async def _drive_plan(
        self, handle: workflow.ChildWorkflowHandle[Any, PlanResult]
    ) -> PlanResult:
        """Pass payments, holds and the end to the running plan until it finishes."""
        while True:
            await workflow.wait_condition(lambda: handle.done() or bool(self._plan_outbox))
            if handle.done():
                break
            name, arg = self._plan_outbox.pop(0)
            await handle.signal(name, arg)
        self._plan = None
        self._plan_outbox.clear()
        return await handle

    def _to_plan(self, name: str, arg: Any) -> None:
        self._plan_outbox.append((name, arg))

    def _tell_plan_hold(self) -> None:
        if self._plan is None:
            return
        held = bool(self._holds & _CHASING_STOPPED)
        if held != self._plan_held:
            self._plan_held = held
            self._to_plan("hold_changed", PlanHold(held=held, stage=self._stage()))

    def _end_plan(self, outcome: PlanOutcome, reason: str, actor: str) -> None:
        if self._plan is not None:
            self._to_plan("end_plan", EndPlan(outcome=outcome, reason=reason, actor=actor))

    def _plan_finished(self, result: PlanResult) -> None:
        if result.outcome == PlanOutcome.defaulted and self._outcome is None:
            self._emit(
                "arrangement_ended",
                "system",
                plan=self._plan_number,
                outcome="defaulted",
                reason=result.reason,
                paid=str(result.paid),
                outstanding=str(self._outstanding),
            )
            tone = self._at_least(Tone.neutral)
            self._tone_floor = tone
            self._queue_message("arrangement_lapsed", tone)
        elif result.outcome == PlanOutcome.completed and self._outcome is None:
            self._emit("arrangement_ended", "system", plan=self._plan_number, outcome="completed")

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
            promise=self._promise,
            promises_made=self._promises_made,
            plan_number=self._plan_number if self._plan is not None else None,
        )


def _never() -> bool:
    return False
