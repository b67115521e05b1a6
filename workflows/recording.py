"""One recorder for the journey and its plans: the timeline, agent tasks, the read model's
snapshot, the search attributes and the details the Temporal UI shows.

What a workflow learns is buffered here (`emit`, `task`) and written by one `record_journey`
activity per `flush`, with the snapshot of the moment, so the read model never lags the history by
more than one activity. Event keys (`{workflow id}:{n}`) are unique per workflow, so a retried
activity never records twice.

A journey started through the API has its start recorded by the API (below). The very first
record of one started otherwise (its `journey_started` event, the invoice's row, the first
snapshot) runs as a local activity: inside the first workflow task, on the same worker, one marker
in the history instead of an activity and a second workflow task. A local activity writes before
its workflow task is committed, and a task that fails is run again with whatever signals came in
between applied first; so only that record goes this way, and only with nothing else in it: its
event has a key of its own (`{workflow id}:started`), never a number a rerun could give to another
event, and the snapshot of a rerun is newer and replaces it. Every other record is an activity,
scheduled by a committed task, so what it writes is what the history says.

A journey started through the API (`JourneyInput.start_recorded`) writes nothing at its start: the
API recorded it before answering. It still carries the start (`owe`) in whichever activity comes
first: its first record, or its first message (`carried_start`: a message needs the invoice's
row). The store writes it only where absent, so a start the API failed to record is never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows.common import (
    AMOUNT_OUTSTANDING,
    JOURNEY_STAGE,
    NEXT_ACTION_AT,
    RECORD_ACTIVITY,
    RETRY,
)
from workflows.models import RecordRequest, Snapshot, TaskRequest, TimelineEvent

RECORD_TIMEOUT = timedelta(seconds=30)

PATCH_START_LOCALLY = "record-the-start-in-the-first-task"
"""Before it, the first record was an activity of its own and `journey_started` was event 1."""


class Recorder:
    """Buffers timeline events and tasks; `flush` writes them with the current snapshot."""

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        *,
        emitted: int = 0,
        label: str = "record ",
        keep_none: bool = False,
        base: dict[str, object] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self.emitted = emitted
        """How many events this workflow made (across continue-as-new): the next key's number."""
        self.flushed = emitted
        self.pending: list[TimelineEvent] = []
        self.tasks: list[TaskRequest] = []
        self._lock = asyncio.Lock()
        self._label = label
        self._keep_none = keep_none
        self._base = base or {}
        self._owed: tuple[TimelineEvent, dict[str, Any]] | None = None

    def emit(self, kind: str, actor: str, **detail: object) -> int:
        """Add one timeline event; answers its mark (see `recorded`)."""
        self.emitted += 1
        self._append(str(self.emitted), kind, actor, detail)
        return self.emitted

    def emit_named(self, name: str, kind: str, actor: str, **detail: object) -> None:
        """Add an event whose key is its name, not a number: one that happens once per workflow."""
        self._append(name, kind, actor, detail)

    def _append(self, name: str, kind: str, actor: str, detail: dict[str, object]) -> None:
        self.pending.append(self._event(name, kind, actor, detail))

    def _event(self, name: str, kind: str, actor: str, detail: dict[str, object]) -> TimelineEvent:
        if not self._keep_none:
            detail = {k: v for k, v in detail.items() if v is not None}
        return TimelineEvent(
            key=f"{workflow.info().workflow_id}:{name}",
            at=workflow.now(),
            kind=kind,
            actor=actor,
            detail={**self._base, **detail},
        )

    def owe(
        self, name: str, kind: str, actor: str, first: dict[str, Any], **detail: object
    ) -> None:
        """A named event and the start fields that the first record carries, to be written only
        where absent: what the journey's starter has recorded already, unless it stopped first."""
        self._owed = (self._event(name, kind, actor, detail), first)

    def carried_start(self, snapshot: Snapshot) -> RecordRequest | None:
        """The start still owed (see `owe`), for an activity that needs the invoice's row."""
        if self._owed is None:
            return None
        event, first = self._owed
        return RecordRequest(snapshot=snapshot, events=[event], **first)

    def start_written(self) -> None:
        """An activity that carried the start (`carried_start`) has run: nothing is owed."""
        self._owed = None

    @property
    def owes_start(self) -> bool:
        return self._owed is not None

    def task(self, kind: str, title: str, **detail: str) -> int:
        """An agent task, and the timeline event that says it was created."""
        key = f"{workflow.info().workflow_id}:{kind}:{self.emitted + 1}"
        self.tasks.append(TaskRequest(key=key, kind=kind, title=title, detail=detail))
        return self.emit("agent_task", "system", task=kind, title=title, **detail)

    async def flush(self, **first: Any) -> None:
        """Write what is pending (if anything) in one activity. `first` adds the start fields;
        with no numbered event pending, that first record is a local activity (see above)."""
        async with self._lock:
            await self._write(first, force=False)

    async def write_status(self) -> None:
        """Write the snapshot even with no new event (a plan's view changed)."""
        async with self._lock:
            await self._write({}, force=True)

    async def _write(self, first: dict[str, Any], *, force: bool) -> None:
        if not self.pending and not force:
            return
        events, self.pending = self.pending, []
        tasks, self.tasks = self.tasks, []
        high = self.emitted
        # The journey's first record, with only named events in it (a task is numbered too), is a
        # local activity (see above); every other record is an activity.
        local = first and self.emitted == self.flushed
        # What happened now, for the Temporal UI: not the start carried again (see `owe`).
        summary = self._label + (", ".join(e.kind for e in events) or "status")
        if self._owed is not None:
            owed, owed_first = self._owed
            events, first, self._owed = [owed, *events], {**owed_first, **first}, None
        run = workflow.execute_local_activity if local else workflow.execute_activity
        await run(
            RECORD_ACTIVITY,
            RecordRequest(snapshot=self._snapshot(), events=events, tasks=tasks, **first),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RETRY,
            summary=summary,
        )
        self.flushed = max(self.flushed, high)


class Published:
    """The search attributes last upserted, so only a change costs a history event."""

    def __init__(self, stage: str | None, outstanding: float | None) -> None:
        self.stage, self.outstanding = stage, outstanding
        self.next_at: datetime | None = None

    def publish(
        self, stage: str, outstanding: float, next_at: datetime | None, details: str
    ) -> None:
        """Upsert what changed (never names, emails or phones) and set the UI's details."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if stage != self.stage:
            updates.append(JOURNEY_STAGE.value_set(stage))
        if outstanding != self.outstanding:
            updates.append(AMOUNT_OUTSTANDING.value_set(outstanding))
        if next_at != self.next_at:
            updates.append(
                NEXT_ACTION_AT.value_set(next_at) if next_at else NEXT_ACTION_AT.value_unset()
            )
        if updates:
            workflow.upsert_search_attributes(updates)
            self.stage, self.outstanding, self.next_at = stage, outstanding, next_at
        workflow.set_current_details(details)
