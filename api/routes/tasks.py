"""The agents' work list: calls to make, disputes to review, surpluses to refund."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from api import journeys
from api.deps import Agent, StoreDep, TemporalClient
from api.problems import COMMON_PROBLEMS, Problem
from api.schemas import TaskCompleteIn, TaskOut
from db.store import TaskView
from workflows.models import TaskCompleted

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=COMMON_PROBLEMS)
log = logging.getLogger("dunwell.api")


def _out(task: TaskView) -> TaskOut:
    return TaskOut.model_validate(task, from_attributes=True)


@router.get("", response_model=list[TaskOut])
async def list_tasks(
    actor: Agent,
    store: StoreDep,
    status: str | None = Query("open", pattern="^(open|done)$"),
    invoice_id: str | None = None,
    kind: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[TaskOut]:
    """Open tasks (or done ones), oldest first."""
    tasks = await run_in_threadpool(store.list_tasks, status, invoice_id, kind, limit)
    return [_out(t) for t in tasks]


@router.post("/{task_id}/complete", response_model=TaskOut)
async def complete_task(
    task_id: str, body: TaskCompleteIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> TaskOut:
    """Mark a task done; its journey hears of it (a key customer's call lets reminders start)."""
    task = await run_in_threadpool(store.complete_task, task_id, actor.name, body.note)
    if task is None:
        raise Problem(404, f"There is no task {task_id}; GET /v1/tasks lists the open ones.")
    done = TaskCompleted(task_id=task.id, kind=task.kind, actor=actor.name, note=body.note)
    try:
        await journeys.signal(client, store, task.invoice_id, "task_completed", done)
    except Problem:
        log.info("task %s completed on closed journey %s", task_id, task.invoice_id)
    return _out(task)
