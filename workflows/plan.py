"""The instalment plan: a child workflow of a journey while the debtor pays in agreed parts.

It confirms the plan, reminds before each instalment, confirms each instalment paid, and on a
missed instalment sends one message and waits out the grace period. It ends by itself when every
instalment is paid (`completed`) or when the grace runs out (`defaulted`), and on the journey's word
when the plan is cancelled, replaced, or the journey closes. Payments reach it from the journey.

Long plans stay small: the plan continues as new when Temporal suggests it (or its own history
budget is reached), carrying its state, so no run grows past about a thousand events.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from workflows import schedule
    from workflows.common import (
        ALL_CHANNELS,
        AMOUNT_OUTSTANDING,
        CUSTOMER_ID,
        INVOICE_ID,
        JOURNEY_STAGE,
        NEXT_ACTION_AT,
        RECORD_ACTIVITY,
        RETRY,
        apply_contact_change,
        reachable_channels,
    )
    from workflows.delivery import (
        PATCH_PER_CHANNEL,
        deliver_on_journey_queue,
        deliver_per_channel,
    )
    from workflows.models import (
        ChannelOptedIn,
        ChannelOptedOut,
        ContactChanged,
        EndPlan,
        Instalment,
        InstalmentStatus,
        InstalmentView,
        MessageBounced,
        MessageRequest,
        NextAction,
        PaymentReceived,
        PlanHold,
        PlanInput,
        PlanOutcome,
        PlanResult,
        PlanState,
        PlanView,
        RecordRequest,
        Snapshot,
        Stage,
        TimelineEvent,
    )
    from workflows.policy import Channel, Tone

_DAY = timedelta(days=1)


def plan_workflow_id(journey_workflow_id: str, number: int) -> str:
    return f"{journey_workflow_id}-plan-{number}"


def plan_summary(input: PlanInput) -> str:
    """The one-line summary shown for the plan in the Temporal UI."""
    invoice = input.invoice
    total = sum((i.amount for i in input.instalments), Decimal(0))
    return (
        f"{invoice.invoice_id} · plan {input.number} · {len(input.instalments)} instalments · "
        f"{invoice.currency} {total}"
    )


def plan_search_attributes(input: PlanInput) -> TypedSearchAttributes:
    total = sum((i.amount for i in input.instalments), Decimal(0))
    return TypedSearchAttributes(
        [
            SearchAttributePair(CUSTOMER_ID, input.invoice.customer.id),
            SearchAttributePair(INVOICE_ID, input.invoice.invoice_id),
            SearchAttributePair(JOURNEY_STAGE, Stage.arrangement.value),
            SearchAttributePair(AMOUNT_OUTSTANDING, float(total)),
        ]
    )


def instalment_due(
    instalment: Instalment | InstalmentView, input: PlanInput
) -> tuple[datetime, datetime]:
    """When an instalment falls due, and when it counts as late.

    A day (`due_on`) falls due at the send window's start and is late from the next day's window;
    a moment (`due_at`) is late at that moment.
    """
    customer = input.invoice.customer
    window = input.policy.send_window
    if instalment.due_at is not None:
        due = schedule.utc(instalment.due_at)
        return due, due
    assert instalment.due_on is not None
    due = schedule.due_moment(instalment.due_on, None, customer.timezone, window)
    with workflow.unsafe.sandbox_unrestricted():
        late = schedule.step_time(
            due, _DAY, timedelta(0), window, customer.timezone, customer.country
        )
    return due, late


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
        self._queued: list[tuple[str, str, Tone, dict[str, str]]] = []
        self._last_sent: tuple[str, str, Tone, dict[str, str], Channel] | None = None
        self._pending: list[TimelineEvent] = []
        self._recorded_revision = -1 if input.state is None else self._state.view.revision
        self._dirty = False
        self._sa_stage: str | None = Stage.arrangement.value
        self._sa_outstanding: float | None = float(self._state.view.outstanding)
        self._sa_next: datetime | None = None

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
            self._queue("agreed", "arrangement_agreed", Tone.friendly, self._schedule_extra())
            self._changed()
        while view.status == PlanOutcome.running:
            self._dirty = False
            await self._flush()
            if self._queued and not self._state.held:
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
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "state": self._state,
                            "unreachable": sorted(self._unreachable),
                            "invoice": self._invoice,
                        }
                    )
                )
            self._publish(wake)
            await self._sleep_until(wake, f"instalment {current.number}")
        self._queued.clear()
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
        reminder = self._reminder_at(due)
        grace_end = late + self._policy.instalment_grace + self._state.held_total
        started = self._state.started_at or now
        if (
            current.number not in self._state.reminded
            and reminder <= now < due
            and reminder >= started
        ):
            self._state.reminded.append(current.number)
            extra = self._instalment_extra(current)
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
            extra = self._instalment_extra(current) | {"grace_until": grace_end.isoformat()}
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
        """The earliest instalment not fully paid."""
        return next(
            (i for i in self._state.view.instalments if i.status != InstalmentStatus.paid), None
        )

    def _reminder_at(self, due: datetime) -> datetime:
        """`instalment_reminder_before` the due moment, in an open send window before it.

        Weekends and public holidays can push the window past the due moment (Good Friday before
        Easter Monday); then the reminder moves a day earlier at a time, up to a week.
        """
        c = self._customer
        before = self._policy.instalment_reminder_before
        with workflow.unsafe.sandbox_unrestricted():
            for extra_days in range(8):
                at = schedule.step_time(
                    due,
                    -(before + extra_days * _DAY),
                    timedelta(0),
                    self._policy.send_window,
                    c.timezone,
                    c.country,
                )
                if at < due:
                    return at
        return at

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.history_budget
        )

    def _finish(self, outcome: PlanOutcome, reason: str) -> None:
        view = self._state.view
        if view.status != PlanOutcome.running:
            return
        view.status = outcome
        self._state.end_reason = reason
        self._changed()

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
        self._queued.append((key, template, tone, extra))
        self._dirty = True

    async def _send_queued(self) -> None:
        key, template, tone, extra = self._queued[0]
        channels = reachable_channels(self._customer, ALL_CHANNELS, self._unreachable)
        if not channels:
            self._queued.pop(0)
            self._emit("message_not_sent", template=template, reason="no working contact")
            return
        request = MessageRequest(
            key_prefix=f"{workflow.info().workflow_id}:{key}",
            invoice=self._invoice,
            outstanding=self._state.view.outstanding,
            template=template,
            tone=tone,
            channels=channels,
            all_channels=False,
            unreachable=sorted(self._unreachable),
            extra=extra,
            snapshot=self._snapshot(),
            at=workflow.now(),
        )
        # A dispute, a pause or the plan's end withdraws a send still retrying; it stays queued.
        if workflow.patched(PATCH_PER_CHANNEL):
            sent = await deliver_per_channel(
                request, f"{tone.value} · {template}", lambda: self._state.held
            )
            if sent is None:
                return
            result = sent
        else:
            summary = f"{channels[0].value} · {tone.value} · {template}"
            old = await deliver_on_journey_queue(request, summary, lambda: self._state.held)
            if old is None:
                return
            result = old
        self._queued.pop(0)
        for outcome in result.outcomes:
            if outcome.permanent:
                self._unreachable.add(outcome.channel)
            elif outcome.status in ("sent", "outbox"):
                self._last_sent = (key, template, tone, extra, outcome.channel)

    def _instalment_extra(self, instalment: InstalmentView) -> dict[str, str]:
        return {
            "instalment_number": str(instalment.number),
            "instalment_count": str(len(self._state.view.instalments)),
            "instalment_amount": str(instalment.amount - instalment.paid),
            "instalment_due_on": instalment.due_on.isoformat(),
        }

    def _schedule_extra(self) -> dict[str, str]:
        view = self._state.view
        plan = ";".join(f"{i.due_on.isoformat()}={i.amount}" for i in view.instalments)
        return {"plan_schedule": plan, "instalment_count": str(len(view.instalments))}

    # ---- recording -----------------------------------------------------------------------------

    def _emit(self, kind: str, actor: str = "system", **detail: object) -> None:
        self._state.emitted += 1
        self._pending.append(
            TimelineEvent(
                key=f"{workflow.info().workflow_id}:{self._state.emitted}",
                at=workflow.now(),
                kind=kind,
                actor=actor,
                detail={"plan": self._state.view.number, **detail},
            )
        )
        self._dirty = True

    def _changed(self) -> None:
        self._state.view.revision += 1
        self._dirty = True

    async def _flush(self) -> None:
        view = self._state.view
        if not self._pending and view.revision == self._recorded_revision:
            return
        events, self._pending = self._pending, []
        revision = view.revision
        await workflow.execute_activity(
            RECORD_ACTIVITY,
            RecordRequest(snapshot=self._snapshot(), events=events),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
            summary="record plan " + (", ".join(e.kind for e in events) or "status"),
        )
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
        outstanding = float(view.outstanding)
        updates: list[SearchAttributeUpdate[Any]] = []
        if stage != self._sa_stage:
            updates.append(JOURNEY_STAGE.value_set(stage))
        if outstanding != self._sa_outstanding:
            updates.append(AMOUNT_OUTSTANDING.value_set(outstanding))
        if wake != self._sa_next:
            updates.append(NEXT_ACTION_AT.value_set(wake) if wake else NEXT_ACTION_AT.value_unset())
        if updates:
            workflow.upsert_search_attributes(updates)
            self._sa_stage, self._sa_outstanding, self._sa_next = stage, outstanding, wake
        paid = sum(1 for i in view.instalments if i.status == InstalmentStatus.paid)
        details = (
            f"**{stage}** · {paid} of {len(view.instalments)} instalments paid · "
            f"{view.currency} {view.paid} paid, {view.outstanding} to go"
        )
        current = self._current()
        if current is not None and view.status == PlanOutcome.running:
            details += (
                f"\n\nnext: instalment {current.number}, {view.currency} "
                f"{current.amount - current.paid} due {current.due_on}"
            )
        if self._state.held:
            details += f"\n\non hold: the journey is {self._state.held_stage or 'on hold'}"
        workflow.set_current_details(details)

    # ---- from the journey: signals -------------------------------------------------------------

    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        """A payment to the invoice: it fills the earliest open instalment first."""
        state = self._state
        if payment.reference in state.payments or state.view.status != PlanOutcome.running:
            return
        state.payments.append(payment.reference)
        view = state.view
        left = payment.amount
        filled: list[int] = []
        for instalment in view.instalments:
            if left <= 0:
                break
            if instalment.status == InstalmentStatus.paid:
                continue
            take = min(left, instalment.amount - instalment.paid)
            instalment.paid += take
            left -= take
            if instalment.paid >= instalment.amount:
                instalment.status = InstalmentStatus.paid
                filled.append(instalment.number)
        view.paid += payment.amount - left
        view.outstanding = view.total - view.paid
        if filled:
            self._emit(
                "instalment_paid", payment.actor, numbers=filled, reference=payment.reference
            )
            following = self._current()
            if following is None:
                self._finish(PlanOutcome.completed, "every instalment paid")
            else:
                extra = self._instalment_extra(following) | {"paid_numbers": _numbers(filled)}
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
        last = self._last_sent
        if last is None or self._state.view.status != PlanOutcome.running:
            return
        key, template, tone, extra, channel = last
        if bounce.message_key == f"{workflow.info().workflow_id}:{key}:{channel.value}":
            self._last_sent = None
            self._queue(key, template, tone, extra)

    @workflow.signal
    def end_plan(self, end: EndPlan) -> None:
        """The journey ends the plan: cancelled, replaced by a new plan, or the journey closed."""
        self._finish(end.outcome, end.reason)


def _numbers(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)
