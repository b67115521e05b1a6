"""Keeping the read model: the journey's timeline, its current state and the agents' tasks."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db.session import is_retryable_db_error
from db.store import Store
from workflows.journey import RECORD_ACTIVITY
from workflows.models import RecordRequest


def database_error(exc: SQLAlchemyError) -> ApplicationError:
    """Name a database error for operators. Both kinds are retried: journeys wait, never fail."""
    kind = "DatabaseUnavailable" if is_retryable_db_error(exc) else "DatabaseError"
    return ApplicationError(f"{kind}: {exc.__class__.__name__}: {exc}", type=kind)


class JournalActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name=RECORD_ACTIVITY)
    def record_journey(self, request: RecordRequest) -> None:
        """Write events, the journey's snapshot and tasks in one idempotent transaction."""
        try:
            self._store.record(request)
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc
