"""When each step of the ladder falls due, the catch-up rule, and what the journey does next.

Pure functions of the journey's input and state (tested without Temporal). Step times move with
the time spent on hold (`Holds.shift`) and the journey's place in the send spread, then to the next
open send window of the debtor's calendar.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows import schedule
from workflows.journey.state import JourneyState
from workflows.models import Invoice, NextAction, NextStepNote
from workflows.policy import Policy, StepAction


class Ladder:
    """The policy's steps for one invoice and debtor."""

    def __init__(self, invoice: Invoice, policy: Policy) -> None:
        self.invoice, self.policy, self.steps = invoice, policy, list(policy.steps)
        self._step_times: dict[tuple[object, ...], datetime] = {}

    def due_moment(self, tz: str) -> datetime:
        return schedule.due_moment(
            self.invoice.due_on, self.invoice.due_at, tz, self.policy.send_window
        )

    def step_at(self, state: JourneyState, index: int) -> datetime:
        customer = state.customer
        # A pure function of these: kept, as the snapshot, the query and the search attributes
        # ask for the same step many times per task.
        key = (index, state.holds.shift, state.ladder.spread, customer.timezone, customer.country)
        found = self._step_times.get(key)
        if found is not None:
            return found
        # The holiday tables look up (unused) translations through `locale`, which the sandbox
        # forbids; the dates themselves are pure data, so the call is deterministic.
        with workflow.unsafe.sandbox_unrestricted():
            at = schedule.step_time(
                self.due_moment(customer.timezone),
                self.steps[index].offset,
                state.holds.shift,
                self.policy.send_window,
                customer.timezone,
                customer.country,
                state.ladder.spread,
            )
        if len(self._step_times) > 64:  # a journey paused and resumed many times
            self._step_times.clear()
        self._step_times[key] = at
        return at

    def catch_up(self, state: JourneyState, now: datetime) -> list[str]:
        """Send at most one catch-up message: skip every overdue step but the latest.

        Answers the names of the steps skipped (and moves the ladder past them).
        """
        ladder = state.ladder
        times = [self.step_at(state, i) for i in range(len(self.steps))]
        target = schedule.catch_up(times, ladder.next_index, now)
        if target <= ladder.next_index:
            return []
        skipped = [s.name for s in self.steps[ladder.next_index : target]]
        ladder.next_index = target
        return skipped

    def finished(self, state: JourneyState) -> bool:
        return state.ladder.next_index >= len(self.steps)

    def next_action(self, state: JourneyState) -> NextAction | None:
        if state.outcome is not None or state.holds or self.finished(state):
            return None
        index = state.ladder.next_index
        step = self.steps[index]
        return NextAction(
            at=self.step_at(state, index),
            step=step.name,
            channels=list(step.channels) if step.is_message else None,
            action=step.action.value if step.action else None,
        )

    def next_step_note(self, state: JourneyState) -> NextStepNote:
        """What a message tells the debtor happens next if nothing happens."""
        if state.outcome is not None or self.finished(state):
            return NextStepNote(kind="none")
        index = state.ladder.next_index
        step = self.steps[index]
        at = self.step_at(state, index)
        if step.action == StepAction.agent_task:
            return NextStepNote(kind="agent_call", at=at)
        if step.action == StepAction.hand_over:
            return NextStepNote(kind="hand_over", at=at)
        return NextStepNote(kind="reminder", at=at)
