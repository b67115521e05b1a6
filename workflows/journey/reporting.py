"""The journey's reports: timeline events and tasks through the shared recorder, the read model's
snapshot, the stage, the next action, the search attributes and the Temporal UI's details."""

from __future__ import annotations

from temporalio import workflow

from workflows.journey.base import JourneyBase
from workflows.journey.start import first_fields
from workflows.models import ActionResult, NextAction, Outcome, PlanOutcome, Snapshot, Stage

PATCH_UPDATE_RECORDS = "update-records-its-own-event"


class Reporting(JourneyBase):
    def _emit(self, kind: str, actor: str, **detail: object) -> int:
        mark = self._recorder.emit(kind, actor, **detail)
        self._dirty = True
        return mark

    def _task(self, kind: str, title: str, **detail: str) -> int:
        mark = self._recorder.task(kind, title, **detail)
        self._dirty = True
        return mark

    async def _flush(self, first: bool = False) -> None:
        """Write pending timeline events and tasks to the read model in one activity."""
        if first:
            await self._recorder.flush(**first_fields(self._input))
        else:
            await self._recorder.flush()
        self._first_flush_done = True
        self._publish()

    async def _recorded(self, mark: int) -> None:
        """Answer an update only once its event is in the read model (read-your-writes).

        The handler records its event itself, so an update is answered even while the main loop
        waits on a slow activity (a provider outage retrying a send). Journeys begun before this
        waited for the main loop to record it: the patch keeps their histories replaying.
        """
        if workflow.patched(PATCH_UPDATE_RECORDS) and self._first_flush_done:
            await self._flush()
        await workflow.wait_condition(lambda: self._recorder.flushed >= mark)

    def _publish(self) -> None:
        """Keep the search attributes and the UI's current details in step with the journey."""
        stage = self._stage().value
        next_action = self._next_action()
        details = f"**{stage}** · outstanding {self._invoice.currency} {self._s.outstanding}"
        if next_action:
            what = next_action.action or "+".join(c.value for c in next_action.channels or [])
            details += (
                f"\n\nnext: {next_action.step} ({what}) at {next_action.at:%Y-%m-%d %H:%M} UTC"
            )
        if self._s.holds:
            details += f"\n\non hold: {self._s.holds.describe()}"
        next_at = next_action.at if next_action else None
        self._published.publish(stage, float(self._s.outstanding), next_at, details)

    def _stage(self) -> Stage:
        return self._s.stage(len(self._ladder.steps))

    def _next_action(self) -> NextAction | None:
        return self._ladder.next_action(self._s)

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            invoice_id=self._invoice.invoice_id,
            customer_id=self._s.customer.id,
            stage=self._stage(),
            outcome=self._s.outcome,
            outstanding=self._s.outstanding,
            next_action=self._next_action(),
            customer_phone=self._s.customer.phone,
        )

    def _result(self, detail: str = "") -> ActionResult:
        s = self._s
        return ActionResult(
            stage=self._stage(), outcome=s.outcome, outstanding=s.outstanding, detail=detail
        )

    def _close(self, outcome: Outcome, actor: str, reason: str) -> int:
        self._s.close(outcome)
        self._plans.end(PlanOutcome.ended, reason, actor)
        return self._emit("closed", actor, outcome=outcome.value, reason=reason)
