"""The journey's supervisor of its instalment plan child: start, forward, end, outcome.

Plans run one after another. What the journey learns while a plan runs (payments, contact
changes, opt-outs, bounces, holds, the end) is forwarded in order, also while the plan is still
starting; a plan that has already ended, or that was terminated or timed out, is taken as ended
(never an error that would stop the journey), and the journey is told how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.workflow import ParentClosePolicy

from workflows.models import (
    AgreeArrangement,
    EndPlan,
    PlanHold,
    PlanInput,
    PlanOutcome,
    PlanResult,
    Stage,
)
from workflows.plan import InstalmentPlan, plan_search_attributes, plan_summary, plan_workflow_id

ENDED_WAIT = timedelta(minutes=1)

PATCH_FORWARD_WHILE_STARTING = "forward-to-a-plan-while-it-starts"
"""Before it, what arrived while a plan was starting was not passed to it."""
PATCH_HOLD_WHILE_STARTING = "tell-a-starting-plan-of-a-hold"
"""Before it, a plan agreed during a pause, or one still starting when a dispute or a pause came,
was not told of the hold."""
PATCH_ADJUSTED_ENDS_EVERY_PLAN = "an-adjusted-dispute-ends-a-plan-not-yet-running"
"""Before it, a dispute resolved with a new amount ended only the plan already running: one
agreed after it (waiting for it to end) or still starting went on with the old amount."""
PATCH_NOTHING_LEFT_WAITING = "a-plan-ended-before-it-started-leaves-nothing-behind"
"""Before it, a plan cancelled in the very task that agreed it left the journey on the plan's
hold, and what had been forwarded to it went to the next plan."""
PATCH_ENDING_NEEDS_NO_SUCCESSOR = "a-plan-already-ending-needs-no-successor"
"""Before it, a dispute resolved with a new amount while a plan was still ending (cancelled, or
ended by an earlier adjustment) told the plan to end again and asked an agent to agree a new plan
(one nobody wanted, or a second request for the same)."""
PATCH_NUMBERS_NEVER_REUSED = "a-plans-number-is-never-given-twice"
"""Before it, the number of a plan agreed and dropped before it started (cancelled, or ended by an
adjusted dispute) went to the next plan agreed: the timeline named two plans alike, and the
dropped one's workflow id led to the other."""


class PlanSupervisor:
    def __init__(
        self,
        plan_input: Callable[[AgreeArrangement, int], PlanInput],
        finished: Callable[[int, PlanResult], None],
        keep_going: Callable[[], bool],
        number: int = 0,
    ) -> None:
        self._plan_input, self._finished, self._keep_going = plan_input, finished, keep_going
        self.number = number
        """The number of the latest plan started (plans are numbered per journey); in a run after
        continue-as-new, first the highest number an earlier run gave."""
        self.given = number
        """The highest number given to a plan, started or not (see `PATCH_NUMBERS_NEVER_REUSED`)."""
        self.requests: list[tuple[int, AgreeArrangement]] = []
        """The plans agreed and not started yet, each with the number it was given."""
        self.handle: workflow.ChildWorkflowHandle[Any, PlanResult] | None = None
        self._starting = False
        self._outbox: list[tuple[str, Any]] = []
        self._runner: asyncio.Task[None] | None = None
        self._held = False
        self._ending = False
        """The plan running or starting was told to end (cancelled, replaced)."""

    @property
    def running(self) -> bool:
        """A plan runs (or is starting) for this journey."""
        return self.handle is not None or self._starting

    @property
    def idle(self) -> bool:
        return not self.requests and (self._runner is None or self._runner.done())

    def agree(self, cmd: AgreeArrangement, actor: str) -> int:
        """Queue a new plan; one still running is superseded. Answers the new plan's number."""
        number = self.number + len(self.requests) + 1
        if number <= self.given and workflow.patched(PATCH_NUMBERS_NEVER_REUSED):
            number = self.given + 1  # a plan dropped before it started had this one
        self.given = max(self.given, number)
        if self.handle is not None or self._starting:
            self.end(PlanOutcome.superseded, f"replaced by plan {number}", actor)
        self.requests.append((number, cmd))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return number

    def cancel(self, reason: str, actor: str) -> None:
        self.end(PlanOutcome.cancelled, reason, actor)
        self.requests.clear()
        self._forget_unstarted()

    def abandon(self, reason: str, actor: str) -> list[int] | None:
        """The plans no longer add up (a dispute changed the amount): the running one ends, and
        those agreed and not yet running never start. Answers the numbers those would have had;
        None when there was no plan to end."""
        waiting = self._starting or bool(self.requests)
        dropped: list[int] = []
        if waiting and workflow.patched(PATCH_ADJUSTED_ENDS_EVERY_PLAN):
            if self._ending and not self.requests:
                return None  # the plan starting was already ended: no new one to agree
            dropped = [number for number, _ in self.requests]
            self.requests.clear()
        elif self.handle is None:
            return None
        elif self._ending and workflow.patched(PATCH_ENDING_NEEDS_NO_SUCCESSOR):
            # The running plan was already told to end: cancelled (nobody wants a successor),
            # or ended by an earlier adjustment (which already asked for one).
            return None
        self.end(PlanOutcome.ended, reason, actor)
        self._forget_unstarted()
        return dropped

    def _forget_unstarted(self) -> None:
        """No plan runs or starts any more: what was forwarded was for plans that never will."""
        if self.handle is None and not self._starting and self._outbox:
            if workflow.patched(PATCH_NOTHING_LEFT_WAITING):
                self._outbox.clear()

    def forward(self, name: str, arg: Any) -> None:
        """Pass a fact or a command to the running plan, in order; also to a plan agreed and
        not yet started (it gets them as soon as it runs)."""
        if self.handle is not None:
            self._outbox.append((name, arg))
        elif (self.requests or self._starting) and workflow.patched(PATCH_FORWARD_WHILE_STARTING):
            self._outbox.append((name, arg))

    def end(self, outcome: PlanOutcome, reason: str, actor: str) -> None:
        self._ending = self.handle is not None or self._starting or bool(self.requests)
        self.forward("end_plan", EndPlan(outcome=outcome, reason=reason, actor=actor))

    def tell_hold(self, held: bool, stage: Stage) -> None:
        """The journey stopped (or resumed) chasing: the plan's reminders follow. A plan not yet
        started learns it from its input, one starting as soon as it runs."""
        if held == self._held:
            return
        if self.handle is not None or (
            self._starting and workflow.patched(PATCH_HOLD_WHILE_STARTING)
        ):
            self._held = held
            self.forward("hold_changed", PlanHold(held=held, stage=stage))

    async def wait(self) -> None:
        """Until the plans have ended (after the journey closed, they end at once)."""
        if self._runner is not None:
            await self._runner

    async def _run(self) -> None:
        while self.requests and self._keep_going():
            self.number, request = self.requests.pop(0)
            plan_input = self._plan_input(request, self.number)
            journey_id = workflow.info().workflow_id
            if not workflow.patched(PATCH_FORWARD_WHILE_STARTING):
                self._outbox.clear()
            # Its input carries the journey's hold (since PATCH_HOLD_WHILE_STARTING).
            self._held = plan_input.hold is not None and plan_input.hold.held
            self._starting, self._ending = True, False
            try:
                handle = await workflow.start_child_workflow(
                    InstalmentPlan.run,
                    plan_input,
                    id=plan_workflow_id(journey_id, self.number),
                    static_summary=plan_summary(plan_input),
                    static_details=f"instalment plan of journey {journey_id}",
                    search_attributes=plan_search_attributes(plan_input),
                    # A journey terminated by an operator takes its plan with it; a journey that
                    # closes normally ends its plan itself first.
                    parent_close_policy=ParentClosePolicy.TERMINATE,
                )
            finally:
                self._starting = False
            self.handle = handle
            self._finished(self.number, await self._drive(handle))

    async def _drive(self, handle: workflow.ChildWorkflowHandle[Any, PlanResult]) -> PlanResult:
        """Pass what the journey forwards to the running plan until it ends, however it ends."""
        while True:
            await workflow.wait_condition(lambda: handle.done() or bool(self._outbox))
            if handle.done():
                break
            name, arg = self._outbox.pop(0)
            try:
                await handle.signal(name, arg)
            except FailureError:
                # The plan no longer runs. Its end normally reaches the journey at once; if it
                # does not (a plan terminated where the server never reports it), it is taken
                # as ended after a minute.
                if not await self._ended_within(ENDED_WAIT, handle):
                    return self._gone(handle, "it no longer runs")
        self.handle = None
        self._outbox.clear()
        try:
            return await handle
        except FailureError as failure:
            cause = failure.cause if failure.cause is not None else failure
            return self._gone(handle, f"{type(cause).__name__}: {cause}")

    async def _ended_within(
        self, wait: timedelta, handle: workflow.ChildWorkflowHandle[Any, PlanResult]
    ) -> bool:
        try:
            await workflow.wait_condition(
                handle.done, timeout=wait, timeout_summary="the plan's end"
            )
        except TimeoutError:
            return False
        return True

    def _gone(
        self, handle: workflow.ChildWorkflowHandle[Any, PlanResult], reason: str
    ) -> PlanResult:
        self.handle = None
        self._outbox.clear()
        return PlanResult(
            outcome=PlanOutcome.ended,
            paid=0,
            outstanding=0,
            reason=f"the plan stopped unexpectedly ({reason})",
            unexpected=True,
        )
