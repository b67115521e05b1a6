"""Agents' tasks and the providers' configuration state."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from db.models import (
    ProviderStateRow,
    TaskRow,
)
from db.store.base import _insert_ignore, _task_view
from db.store.messages import MessageStore
from db.store.views import ProviderState, TaskView


class TaskStore(MessageStore):
    def provider_misconfigured(
        self, provider: str, detail: str, invoice_id: str, customer_id: str
    ) -> bool:
        """A provider refused our credentials or sender: remember it and ask an admin, once.

        True when this call found it (the state moved from ok, or was unknown, to misconfigured).
        """
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(ProviderStateRow, provider, with_for_update=True)
            if row is not None and row.state == "misconfigured":
                row.checked_at, row.detail = now, detail
                return False
            if row is None:
                row = ProviderStateRow(provider=provider)
                session.add(row)
            row.state, row.detail, row.since, row.checked_at = "misconfigured", detail, now, now
            task = {
                "id": uuid.uuid4().hex,
                "task_key": f"provider_misconfigured:{provider}:{now.isoformat()}",
                "invoice_id": invoice_id,
                "customer_id": customer_id,
                "kind": "provider_misconfigured",
                "title": f"{provider} refuses our messages: {detail}"[:500],
                "detail": {"provider": provider, "error": detail, "first_invoice": invoice_id},
                "status": "open",
                "created_at": now,
            }
            _insert_ignore(session, TaskRow, task, "task_key")
            return True

    def provider_ok(self, provider: str) -> bool:
        """A send went through: the provider works again, and its open task is done.

        True when it had been misconfigured.
        """
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(ProviderStateRow, provider, with_for_update=True)
            if row is not None and row.state == "ok":
                return False
            if row is None:
                session.add(
                    ProviderStateRow(
                        provider=provider, state="ok", detail="", since=now, checked_at=now
                    )
                )
                return False
            row.state, row.detail, row.since, row.checked_at = "ok", "", now, now
            session.execute(
                sa.update(TaskRow)
                .where(
                    TaskRow.kind == "provider_misconfigured",
                    TaskRow.status == "open",
                    TaskRow.task_key.startswith(f"provider_misconfigured:{provider}:"),
                )
                .values(
                    status="done",
                    completed_at=now,
                    completed_by="system",
                    note="fixed: a message went through again",
                )
                .execution_options(synchronize_session=False)
            )
            return True

    def provider_states(self) -> list[ProviderState]:
        with self._sessions() as session:
            rows = session.scalars(sa.select(ProviderStateRow).order_by(ProviderStateRow.provider))
            return [ProviderState.model_validate(r, from_attributes=True) for r in rows]

    # ---- tasks ---------------------------------------------------------------------------------

    def list_tasks(
        self,
        status: str | None = "open",
        invoice_id: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[TaskView]:
        """Tasks, oldest first (the order to work them in); `status=None` means all."""
        query = sa.select(TaskRow)
        if status is not None:
            query = query.where(TaskRow.status == status)
        if invoice_id is not None:
            query = query.where(TaskRow.invoice_id == invoice_id)
        if kind is not None:
            query = query.where(TaskRow.kind == kind)
        query = query.order_by(TaskRow.created_at, TaskRow.id).limit(limit)
        with self._sessions() as session:
            return [_task_view(row) for row in session.scalars(query)]

    def get_task(self, task_id: str) -> TaskView | None:
        with self._sessions() as session:
            row = session.get(TaskRow, task_id)
            return None if row is None else _task_view(row)

    def complete_task(self, task_id: str, actor: str, note: str = "") -> TaskView | None:
        """Mark a task done; a task already done is returned as it was. None: no such task."""
        with self._sessions.begin() as session:
            session.execute(
                sa.update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "open")
                .values(status="done", completed_at=self._clock(), completed_by=actor, note=note)
                .execution_options(synchronize_session=False)
            )
            row = session.get(TaskRow, task_id)
            return None if row is None else _task_view(row)
