"""The collection journey: one long-lived workflow per unpaid invoice.

`run()` reads like the policy: for each step, wait until it falls due (or until something changes),
then perform it. The journey is made of rooms, one mixin each: `steps` (performing a step),
`messages` (sending), `facts` (signals), `commands` (updates, checked by `validators`) and
`reporting` (timeline, read model, search attributes); its state is `state.JourneyState`, the
ladder's times come from `ladder`, hold deadlines from `holds`, and the plan child is run by
`plans.PlanSupervisor`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from workflows import schedule
from workflows.common import history_too_long
from workflows.journey import holds
from workflows.journey.commands import Commands
from workflows.journey.facts import Facts
from workflows.journey.ladder import Ladder
from workflows.journey.messages import Messages
from workflows.journey.plans import PATCH_HOLD_WHILE_STARTING, PlanSupervisor
from workflows.journey.reporting import Reporting
from workflows.journey.start import STARTED_KEY, first_fields, first_state, started_detail
from workflows.journey.state import (
    CALL,
    PAUSE,
    PLAN,
    REPLY,
    JourneyState,
)
from workflows.journey.steps import Steps
from workflows.models import (
    AgreeArrangement,
    JourneyInput,
    JourneyStatus,
    Outcome,
    PlanHold,
    PlanInput,
    PlanOutcome,
    PlanResult,
)
from workflows.policy import Tone
from workflows.recording import PATCH_START_LOCALLY, Published, Recorder

PATCH_SPREAD = "spread-sends-over-the-window"
PATCH_API_RECORDS_START = "the-api-records-the-start"
"""Before it, a journey recorded its own start even when started with `start_recorded` (an old
worker ignores the field): a new worker replaying such a history must do the same."""
PATCH_LAST_EVENTS = "record-the-last-events"
"""Before it, what a signal told the journey while its final record was written was lost."""


@workflow.defn(name="InvoiceJourney")
class InvoiceJourney(Steps, Messages, Facts, Commands, Reporting):
    @workflow.init
    def __init__(self, input: JourneyInput) -> None:
        self._input, self._invoice, self._policy = input, input.invoice, input.policy
        self._ladder = Ladder(input.invoice, input.policy)
        if input.state is not None:
            self._s = JourneyState.model_validate(input.state)
        else:
            self._s = first_state(input.invoice, input.policy, spread=self._uses_spread())
        self._recorder = Recorder(self._snapshot, emitted=self._s.emitted)
        self._published = Published(
            self._stage().value if input.state else "scheduled", float(self._s.outstanding)
        )
        self._plans = PlanSupervisor(
            self._plan_input, self._plan_finished, self._is_open, self._s.plan_number
        )
        self._dirty = False
        self._start_recorded = (
            input.state is None
            and input.start_recorded
            and workflow.patched(PATCH_API_RECORDS_START)
        )
        self._first_flush_done = input.state is not None or self._start_recorded

    def _uses_spread(self) -> bool:
        window = self._policy.send_window
        # Journeys started before the spread existed keep their exact step times.
        return bool(window is not None and window.spread and workflow.patched(PATCH_SPREAD))

    # ---- the journey ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyStatus:
        if input.state is None:
            await self._begin(input)
        while self._s.outcome is None:
            self._dirty = False
            await self._flush()
            self._continue_as_new_if_long()
            one_off_waits = self._one_off_waits()
            if one_off_waits:
                self._drop_one_offs_during_plan()
            if self._s.queued and not one_off_waits:
                await self._send_queued()
            elif self._s.holds:
                await self._wait_on_hold()
            elif self._ladder.finished(self._s):
                await self._wait_for_change(None, "ladder finished: waiting on an agent")
            else:
                await self._next_step()
        await self._flush()
        await self._plans.wait()
        await self._flush()
        if self._s.outcome == Outcome.paid:
            await self._deliver("thank_you", "thank_you", Tone.friendly, {})
        await self._finish()
        return self.status()

    async def _begin(self, input: JourneyInput) -> None:
        started = started_detail(self._invoice, self._policy)
        if self._start_recorded:
            # Recorded by the API already (see workflows.recording): nothing to write now.
            self._recorder.owe(
                STARTED_KEY, "journey_started", input.actor, first_fields(input), **started
            )
        else:
            if workflow.patched(PATCH_START_LOCALLY):
                # Its own key, in the first workflow task (see workflows.recording).
                self._recorder.emit_named(STARTED_KEY, "journey_started", input.actor, **started)
                self._dirty = True
            else:
                self._emit("journey_started", input.actor, **started)
            await self._flush(first=True)
        customer = self._s.customer
        if customer.kind == "key":
            self._hold(CALL)
            self._task(
                "personal_call",
                f"Call key customer {customer.id} about invoice {self._invoice.invoice_id} "
                "before any automatic reminder",
            )
        self._skip_overdue_steps("late start")

    async def _next_step(self) -> None:
        index = self._s.ladder.next_index
        at = self._ladder.step_at(self._s, index)
        if at > workflow.now():
            step = self._ladder.steps[index]
            summary = schedule.describe_wait(at, self._s.customer.timezone, step.name)
            await self._wait_for_change(at, summary)
        else:
            self._skip_overdue_steps("late: several steps fell due at once")
            await self._perform(self._s.ladder.next_index)

    async def _finish(self) -> None:
        """Record everything, including what signals said while the last record was written."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        while self._recorder.pending and workflow.patched(PATCH_LAST_EVENTS):
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._flush()

    def _skip_overdue_steps(self, reason: str) -> None:
        """Send at most one catch-up message: skip every overdue step but the latest."""
        skipped = self._ladder.catch_up(self._s, workflow.now())
        if skipped:
            self._emit("steps_skipped", "system", steps=skipped, reason=reason)

    def _continue_as_new_if_long(self) -> None:
        """A long journey (many payments, a ladder that ends waiting on a person) starts afresh
        with its state, between plans and with every handler finished."""
        long = history_too_long(self._input.history_budget)
        if not long or not self._plans.idle or not workflow.all_handlers_finished():
            return
        if self._recorder.pending or self._dirty or self._recorder.owes_start:
            return
        # No plan runs now: the next run numbers its plans after every number given so far.
        self._s.emitted, self._s.plan_number = self._recorder.emitted, self._plans.given
        state = self._s.model_dump(mode="json")
        workflow.continue_as_new(self._input.model_copy(update={"state": state}))

    # ---- holds ---------------------------------------------------------------------------------

    async def _wait_on_hold(self) -> None:
        deadline = holds.next_deadline(self._s, self._policy)
        summary = (
            schedule.describe_wait(deadline.at, self._s.customer.timezone, deadline.what)
            if deadline
            else f"on hold: {self._s.holds.describe()}"
        )
        await self._wait_for_change(deadline.at if deadline else None, summary)
        if self._s.outcome is not None:
            return
        s, due = self._s, holds.expired(self._s, self._policy, workflow.now())
        if due.dispute_review and s.dispute is not None:
            s.dispute.review_task_created = True
            self._task(
                "review_dispute",
                f"Review the dispute on invoice {self._invoice.invoice_id}: {s.dispute.reason}",
            )
        if due.pause:
            s.pause = None
            self._release(PAUSE)
            self._emit("resumed", "system", reason="pause ended")
            self._tell_plan_hold()
        if due.promise:
            self._promise_broken()
        if due.reply:
            s.reply_until = None
            self._release(REPLY)
            self._emit("resumed", "system", reason="the time to answer the debtor's reply ran out")

    async def _wait_for_change(self, until: datetime | None, summary: str) -> None:
        """Sleep until `until` (or forever), waking early when a signal or update changed things."""
        self._publish()
        if until is None:
            await workflow.wait_condition(lambda: self._dirty or bool(self._recorder.pending))
            return
        timeout = until - workflow.now()
        if timeout <= timedelta(0):
            return
        try:
            await workflow.wait_condition(
                lambda: self._dirty or bool(self._recorder.pending),
                timeout=timeout,
                timeout_summary=summary,
            )
        except TimeoutError:
            pass

    # ---- the instalment plan -------------------------------------------------------------------

    def _is_open(self) -> bool:
        return self._s.outcome is None

    def _tell_plan_hold(self) -> None:
        self._plans.tell_hold(self._s.holds.chasing_stopped, self._stage())

    def _plan_input(self, request: AgreeArrangement, number: int) -> PlanInput:
        # Agreed during a pause or a dispute: the plan starts held.
        held = self._s.holds.chasing_stopped and workflow.patched(PATCH_HOLD_WHILE_STARTING)
        return PlanInput(
            invoice=self._invoice.model_copy(update={"customer": self._s.customer}),
            number=number,
            policy=self._policy,
            instalments=request.instalments,
            unreachable=sorted(self._s.unreachable),
            actor=request.actor,
            hold=PlanHold(held=True, stage=self._stage()) if held else None,
        )

    def _plan_finished(self, number: int, result: PlanResult) -> None:
        s = self._s
        if s.outcome is None and result.unexpected:
            self._emit(
                "arrangement_ended", "system", plan=number, outcome="ended", reason=result.reason
            )
            self._task(
                "plan_ended",
                f"Instalment plan {number} of invoice {self._invoice.invoice_id} stopped "
                f"unexpectedly ({result.reason}); reminders resume on "
                f"{self._invoice.currency} {s.outstanding}: agree a new plan if one is wanted",
            )
        elif result.outcome == PlanOutcome.defaulted and s.outcome is None:
            self._emit(
                "arrangement_ended",
                "system",
                plan=number,
                outcome="defaulted",
                reason=result.reason,
                paid=str(result.paid),
                outstanding=str(s.outstanding),
            )
            tone = s.ladder.at_least(Tone.neutral)
            s.ladder.tone_floor = tone
            self._queue_message("arrangement_lapsed", tone)
        elif result.outcome == PlanOutcome.completed and s.outcome is None:
            self._emit("arrangement_ended", "system", plan=number, outcome="completed")
        if PLAN in s.holds and not self._plans.requests:
            self._release(PLAN)

    # ---- state: query --------------------------------------------------------------------------

    @workflow.query
    def status(self) -> JourneyStatus:
        s, invoice = self._s, self._invoice
        return JourneyStatus(
            invoice_id=invoice.invoice_id,
            customer_id=s.customer.id,
            stage=self._stage(),
            outcome=s.outcome,
            amount=invoice.amount,
            outstanding=s.outstanding,
            currency=invoice.currency,
            due_on=invoice.due_on,
            next_action=self._next_action(),
            dispute_reason=s.dispute.reason if s.dispute else None,
            paused_reason=s.pause.reason if s.pause else None,
            last_tone=s.ladder.last_tone,
            payments=sorted(s.payments),
            promise=s.promise.current,
            promises_made=s.promise.made,
            plan_number=self._plans.number if self._plans.handle is not None else None,
        )
