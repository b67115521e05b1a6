"""The instalment plan: a child workflow of a journey while the debtor pays in agreed parts.

It confirms the plan, reminds before each instalment, confirms each instalment paid, and on a
missed instalment sends one message and waits out the grace period. It ends by itself when every
instalment is paid (`completed`) or when the grace runs out (`defaulted`), and on the journey's word
when the plan is cancelled, replaced, or the journey closes. Payments reach it from the journey.

Long plans stay small: it continues as new when Temporal suggests it or at its history budget,
carrying all of its state (`PlanState`, with queued messages and the latest one sent), once what
its signals changed is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow

from workflows import schedule
from workflows.common import (
    ALL_CHANNELS,
    apply_contact_change,
    history_too_long,
    reachable_channels,
)
from workflows.messaging import send
from workflows.models import (
    ChannelOptedIn,
    ChannelOptedOut,
    ContactChanged,
    EndPlan,
    InstalmentStatus,
    InstalmentView,
    MessageBounced,
    MessageRequest,
    NextAction,
    PaymentReceived,
    PlanHold,
    PlanInput,
    PlanMessage,
    PlanOutcome,
    PlanResult,
    PlanState,
    PlanView,
    Snapshot,
    Stage,
)
from workflows.plan import ledger
from workflows.plan.timing import instalment_due, reminder_at
from workflows.policy import Channel, Tone
from workflows.recording import Published, Recorder

PATCH_CLEAN_CONTINUE = "plan-continues-as-new-with-nothing-unrecorded"
PATCH_END_WITHDRAWS = "a-plans-end-withdraws-its-retrying-send"
"""Before it, a send still retrying (a provider outage) when the plan ended went out once the
provider was back, and one asked for as the plan ended during the record before it went out:
a message about a plan that had ended, even about a paid invoice."""


@workflow.defn(name="InstalmentPlan")
class InstalmentPlan:
    @workflow.init
    def __init__(self, input: PlanInput) -> None:
        self._input = input
        self._invoice = input.invoice
        self._customer = input.invoice.customer
        self._policy = input.policy
        self._state = input.state or PlanState(view=self._fresh_view(input))
        self._unreachable: set[Channel] = set(input.unreachable)
        self._recorder = Recorder(
            self._snapshot,
            emitted=self._state.emitted,
            label="record plan ",
            keep_none=True,
            base={"plan": self._state.view.number},
        )
        self._recorded_revision = -1 if input.state is None else self._state.view.revision
        self._dirty = False
        self._sending = self._ended_while_sending = False
        self._published = Published(Stage.arrangement.value, float(self._state.view.outstanding))

    def _fresh_view(self, input: PlanInput) -> PlanView:
        instalments = []
        for number, instalment in enumerate(input.instalments, start=1):
            due, _ = instalment_due(instalment, input)
            local_day = instalment.due_on or schedule.local_date(due, self._customer.timezone)
            instalments.append(
                InstalmentView(
                    number=number,
                    due_on=local_day,
                    due_at=instalment.due_at,
                    amount=instalment.amount,
                )
            )
        total = sum((i.amount for i in input.instalments), Decimal(0))
        return PlanView(
            number=input.number,
            workflow_id=workflow.info().workflow_id,
            currency=input.invoice.currency,
            total=total,
            outstanding=total,
            instalments=instalments,
        )

    # ---- the plan ------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: PlanInput) -> PlanResult:
        view = self._state.view
        if input.state is None:
            self._state.started_at = workflow.now()
            if input.hold is not None:  # agreed while the journey was paused or disputed
                self.hold_changed(input.hold)
            self._queue(
                "agreed",
                "arrangement_agreed",
                Tone.friendly,
                ledger.schedule_extra(self._state.view),
            )
            self._changed()
        while view.status == PlanOutcome.running:
            self._dirty = False
            await self._flush()
            if self._state.queued and not self._state.held:
                await self._send_queued()
                continue
            if self._state.held:
                self._publish(None)
                await workflow.wait_condition(lambda: self._dirty)
                continue
            current = self._current()
            if current is None:
                self._finish(PlanOutcome.completed, "every instalment paid")
                break
            wake = self._advance(current)
            if wake is None:
                continue  # something happened: look again before waiting
            if history_too_long(self._input.history_budget):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._dirty and workflow.patched(PATCH_CLEAN_CONTINUE):
                    continue  # a signal changed the plan meanwhile: record that first
                self._state.emitted = self._recorder.emitted
                carried = {
                    "state": self._state,
                    "invoice": self._invoice,
                    "unreachable": sorted(self._unreachable),
                }
                workflow.continue_as_new(input.model_copy(update=carried))
            self._publish(wake)
            await self._sleep_until(wake, f"instalment {current.number}")
        self._state.queued.clear()
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._publish(None)
        return PlanResult(
            outcome=view.status,
            paid=view.paid,
            outstanding=view.outstanding,
            reason=self._state.end_reason or "",
            view=view,
        )

    def _advance(self, current: InstalmentView) -> datetime | None:
        """Do what is due for the current instalment; else answer when to look again."""
        now = workflow.now()
        due, late = instalment_due(current, self._input)
        reminder = reminder_at(due, self._policy, self._customer.timezone, self._customer.country)
        grace_end = late + self._policy.instalment_grace + self._state.held_total
        started = self._state.started_at or now
        if (
            current.number not in self._state.reminded
            and reminder <= now < due
            and reminder >= started
        ):
            self._state.reminded.append(current.number)
            extra = ledger.instalment_extra(self._state.view, current)
            self._queue(f"reminder-{current.number}", "instalment_reminder", Tone.friendly, extra)
            return None
        if now >= late and current.number not in self._state.late_noted:
            self._state.late_noted.append(current.number)
            current.status = InstalmentStatus.late
            self._emit(
                "instalment_late",
                number=current.number,
                amount=str(current.amount - current.paid),
                grace_until=grace_end.isoformat(),
            )
            extra = ledger.instalment_extra(self._state.view, current) | {
                "grace_until": grace_end.isoformat()
            }
            self._queue(f"missed-{current.number}", "instalment_missed", Tone.neutral, extra)
            self._changed()
            return None
        if now >= grace_end:
            current.status = InstalmentStatus.missed
            self._emit(
                "instalment_missed",
                number=current.number,
                amount=str(current.amount - current.paid),
            )
            self._finish(PlanOutcome.defaulted, f"instalment {current.number} missed")
            return None
        candidates = [t for t in (late, grace_end) if t > now]
        if current.number not in self._state.reminded and reminder >= started and reminder > now:
            candidates.append(reminder)
        if not candidates:
            return now  # cannot happen: grace_end is past only once handled above
        return min(candidates)

    def _current(self) -> InstalmentView | None:
        return ledger.current(self._state.view)

    def _finish(self, outcome: PlanOutcome, reason: str) -> None:
        view = self._state.view
        if view.status != PlanOutcome.running:
            return
        view.status = outcome
        self._state.end_reason = reason
        self._changed()
        if self._sending and workflow.patched(PATCH_END_WITHDRAWS):
            self._ended_while_sending = True

    async def _sleep_until(self, until: datetime, what: str) -> None:
        timeout = until - workflow.now()
        if timeout <= timedelta(0):
            return
        summary = schedule.describe_wait(until, self._customer.timezone, what)
        try:
            await workflow.wait_condition(
                lambda: self._dirty, timeout=timeout, timeout_summary=summary
            )
        except TimeoutError:
            pass

    # ---- messages ------------------------------------------------------------------------------

    def _queue(self, key: str, template: str, tone: Tone, extra: dict[str, str]) -> None:
        self._state.queued.append(PlanMessage(key=key, template=template, tone=tone, extra=extra))
        self._dirty = True

    async def _send_queued(self) -> None:
        message = self._state.queued[0]
        status = self._state.view.status
        if status != PlanOutcome.running and workflow.patched(PATCH_END_WITHDRAWS):
            # Ended while the record before it was written: not sent.
            self._emit("message_withdrawn", template=message.template, reason=status.value)
            self._state.queued.clear()
            return
        channels = reachable_channels(self._customer, ALL_CHANNELS, self._unreachable)
        if not channels:
            self._state.queued.pop(0)
            self._emit("message_not_sent", template=message.template, reason="no working contact")
            return
        request = MessageRequest(
            key_prefix=f"{workflow.info().workflow_id}:{message.key}",
            invoice=self._invoice,
            outstanding=self._state.view.outstanding,
            template=message.template,
            tone=message.tone,
            channels=channels,
            all_channels=False,
            unreachable=sorted(self._unreachable),
            extra=message.extra,
            snapshot=self._snapshot(),
            at=workflow.now(),
        )
        # A dispute or a pause withdraws a send still retrying (it stays queued); the end, for good.
        self._sending = True
        try:
            result = await send(
                request, lambda: self._state.held, lambda: True, lambda: self._ended_while_sending
            )
        finally:
            self._sending = False
        if result is None:
            if self._ended_while_sending:
                ended = self._state.view.status.value
                self._emit("message_withdrawn", template=message.template, reason=ended)
            return
        self._state.queued.pop(0)
        for outcome in result.outcomes:
            if outcome.permanent:
                self._unreachable.add(outcome.channel)
            elif outcome.status in ("sent", "outbox"):
                self._state.last_sent = message.model_copy(update={"channel": outcome.channel})

    # ---- recording -----------------------------------------------------------------------------

    def _emit(self, kind: str, actor: str = "system", **detail: object) -> None:
        self._recorder.emit(kind, actor, **detail)
        self._dirty = True

    def _changed(self) -> None:
        self._state.view.revision += 1
        self._dirty = True

    async def _flush(self) -> None:
        revision = self._state.view.revision
        if self._recorder.pending:
            await self._recorder.flush()
        elif revision != self._recorded_revision:
            await self._recorder.write_status()
        else:
            return
        self._recorded_revision = max(self._recorded_revision, revision)

    def _snapshot(self) -> Snapshot:
        view = self._state.view
        current = self._current() if view.status == PlanOutcome.running else None
        next_action = None
        if current is not None and not self._state.held:
            due, _ = instalment_due(current, self._input)
            next_action = NextAction(
                at=due, step=f"instalment_{current.number}", action="instalment_due"
            )
        return Snapshot(
            invoice_id=self._invoice.invoice_id,
            customer_id=self._customer.id,
            stage=self._state.held_stage or Stage.arrangement,
            outstanding=view.outstanding,
            next_action=next_action,
            plan=view.model_copy(deep=True),
        )

    def _publish(self, wake: datetime | None) -> None:
        view = self._state.view
        stage = Stage.arrangement.value if view.status == PlanOutcome.running else view.status.value
        held = (self._state.held_stage or "on hold") if self._state.held else None
        details = ledger.details(view, stage, held)
        self._published.publish(stage, float(view.outstanding), wake, details)

    # ---- from the journey: signals -------------------------------------------------------------

    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        """A payment to the invoice: it fills the earliest open instalment first."""
        state = self._state
        if payment.reference in state.payments or state.view.status != PlanOutcome.running:
            return
        state.payments.append(payment.reference)
        filled = ledger.allocate(state.view, payment.amount)
        if filled:
            self._emit(
                "instalment_paid", payment.actor, numbers=filled, reference=payment.reference
            )
            following = self._current()
            if following is None:
                self._finish(PlanOutcome.completed, "every instalment paid")
            else:
                extra = ledger.instalment_extra(state.view, following) | {
                    "paid_numbers": ", ".join(map(str, filled))
                }
                self._queue(f"paid-{filled[-1]}", "instalment_paid", Tone.friendly, extra)
        self._changed()

    @workflow.signal
    def hold_changed(self, hold: PlanHold) -> None:
        """The journey stopped (a dispute, a pause) or resumed chasing."""
        state = self._state
        now = workflow.now()
        if hold.held and not state.held:
            state.held, state.held_since, state.held_stage = True, now, hold.stage
        elif not hold.held and state.held:
            if state.held_since is not None:
                state.held_total += now - state.held_since
            state.held, state.held_since, state.held_stage = False, None, None
        self._changed()

    @workflow.signal
    def contact_changed(self, change: ContactChanged) -> None:
        """The debtor's contact details changed on the journey: later messages use them."""
        self._customer, self._unreachable, _ = apply_contact_change(
            self._customer, self._unreachable, change
        )
        self._invoice = self._invoice.model_copy(update={"customer": self._customer})

    @workflow.signal
    def channel_opted_out(self, opt_out: ChannelOptedOut) -> None:
        self._unreachable.add(opt_out.channel)

    @workflow.signal
    def channel_opted_in(self, opt_in: ChannelOptedIn) -> None:
        self._unreachable.discard(opt_in.channel)

    @workflow.signal
    def message_bounced(self, bounce: MessageBounced) -> None:
        """Forwarded by the journey (which drops repeats): resend the latest message elsewhere."""
        self._unreachable.add(bounce.channel)
        last = self._state.last_sent
        if last is None or last.channel is None or self._state.view.status != PlanOutcome.running:
            return
        if bounce.message_key == f"{workflow.info().workflow_id}:{last.key}:{last.channel.value}":
            self._state.last_sent = None
            self._queue(last.key, last.template, last.tone, last.extra)

    @workflow.signal
    def end_plan(self, end: EndPlan) -> None:
        """The journey ends the plan: cancelled, replaced by a new plan, or the journey closed."""
        self._finish(end.outcome, end.reason)
