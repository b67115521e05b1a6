"""Performing a step of the ladder. A new step action goes in `STEP_ACTIONS` (and in
`workflows.policy.StepAction`); a message step needs nothing here but its template."""

from __future__ import annotations

from collections.abc import Callable

from workflows.journey.base import JourneyBase
from workflows.models import Outcome
from workflows.policy import Step, StepAction


class Steps(JourneyBase):
    async def _perform(self, index: int) -> None:
        """Perform one step. The index moves on first, so what is recorded shows the step after."""
        step = self._ladder.steps[index]
        ladder = self._s.ladder
        performed_before = ladder.performed_any
        ladder.next_index, ladder.performed_any = index + 1, True
        if step.action is not None:
            STEP_ACTIONS[step.action](self, step)
        elif ladder.too_soft(step.tone):
            self._emit("steps_skipped", "system", steps=[step.name], reason="softer than before")
        else:
            assert step.template is not None and step.tone is not None
            if not await self._deliver(
                step.name, step.template, step.tone, {}, list(step.channels)
            ):
                # Withdrawn: as if not yet performed, so it goes out when the journey resumes.
                ladder.next_index, ladder.performed_any = index, performed_before

    def _call_debtor(self, step: Step) -> None:
        self._task(
            "call_debtor",
            f"Call the debtor about invoice {self._invoice.invoice_id} "
            f"({self._invoice.currency} {self._s.outstanding} outstanding)",
            step=step.name,
        )

    def _hand_over(self, step: Step) -> None:
        self._task(
            "hand_over",
            f"Hand invoice {self._invoice.invoice_id} over to the collection agency",
            step=step.name,
        )
        self._close(Outcome.handed_over, "system", "policy step hand_over")


STEP_ACTIONS: dict[StepAction, Callable[[Steps, Step], None]] = {
    StepAction.agent_task: Steps._call_debtor,
    StepAction.hand_over: Steps._hand_over,
}
"""What each step action does (a message step sends its template instead)."""
