"""What every room of the journey shares: its input, state, ladder, recorder and plan supervisor.

`InvoiceJourney` (workflow.py) is made of mixins, one per room (steps, messages, reporting, facts,
commands); each declares what it uses through this base, so the rooms stay small and typed.
"""

from __future__ import annotations

from workflows.journey.ladder import Ladder
from workflows.journey.plans import PlanSupervisor
from workflows.journey.state import JourneyState
from workflows.models import (
    ActionResult,
    Invoice,
    JourneyInput,
    NextAction,
    Outcome,
    Snapshot,
    Stage,
)
from workflows.policy import Channel, Policy, Tone
from workflows.recording import Published, Recorder


class JourneyBase:
    _input: JourneyInput
    _invoice: Invoice
    _policy: Policy
    _s: JourneyState
    _ladder: Ladder
    _recorder: Recorder
    _published: Published
    _plans: PlanSupervisor
    _dirty: bool
    _first_flush_done: bool

    def _emit(self, kind: str, actor: str, **detail: object) -> int:
        raise NotImplementedError

    def _task(self, kind: str, title: str, **detail: str) -> int:
        raise NotImplementedError

    def _close(self, outcome: Outcome, actor: str, reason: str) -> int:
        raise NotImplementedError

    async def _flush(self, first: bool = False) -> None:
        raise NotImplementedError

    def _tell_plan_hold(self) -> None:
        raise NotImplementedError

    def _queue_message(
        self, template: str, tone: Tone, during_holds: bool = False, **extra: str
    ) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    def _stage(self) -> Stage:
        raise NotImplementedError

    def _snapshot(self) -> Snapshot:
        raise NotImplementedError

    def _next_action(self) -> NextAction | None:
        raise NotImplementedError

    def _result(self, detail: str = "") -> ActionResult:
        raise NotImplementedError

    async def _recorded(self, mark: int) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        raise NotImplementedError

    def _promise_kept(self, actor: str) -> None:
        raise NotImplementedError

    def _no_working_contact(self, template: str) -> None:
        raise NotImplementedError
