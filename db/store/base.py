"""The store's foundation: sessions, the clock, and the helpers every part uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    InvoiceRow,
    MessageRow,
    PolicyRow,
    TaskRow,
    TimelineEventRow,
    utcnow,
)
from db.store.views import InvoiceView, MessageView, TaskView
from workflows.models import (
    Invoice,
    NextAction,
    Outcome,
    PlanView,
    Stage,
    TimelineEvent,
)
from workflows.policy import Policy


class StoreBase:
    """The read model, over a sessionmaker from `db.session.make_sessionmaker`."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self._sessions

    def ping(self) -> None:
        """Raise when the database cannot be reached."""
        with self._sessions() as session:
            session.execute(sa.text("SELECT 1"))

    # ---- policies ------------------------------------------------------------------------------


# ---- helpers -----------------------------------------------------------------------------------


_DELIVERY_ORDER = ("processed", "deferred", "sent", "delivered", "read", "opened", "clicked")
_FINAL_DELIVERY = ("bounced", "dropped", "undelivered", "failed", "spam_report", "unsubscribed")


def _delivery_rank(status: str | None) -> int:
    if status is None:
        return -1
    if status in _FINAL_DELIVERY:
        return len(_DELIVERY_ORDER)
    return _DELIVERY_ORDER.index(status) if status in _DELIVERY_ORDER else 0


_DELIVERY_RANKS = {status: _delivery_rank(status) for status in _DELIVERY_ORDER + _FINAL_DELIVERY}


def _insert_ignore(session: Session, entity: type[Any], values: dict[str, Any], key: str) -> bool:
    """Insert unless a row with the same unique `key` exists; True when a row was inserted."""
    dialect = session.get_bind().dialect.name
    query = _insert_ignore_statement(dialect, entity.__table__, key)
    # The values as parameters of one prepared statement: SQLAlchemy compiles it once, instead of
    # building (and hashing) a new statement around every row's values.
    # RETURNING answers a row only when one was inserted; rowcount is not reliable here.
    return session.execute(query, values).first() is not None


_INSERT_IGNORE: dict[tuple[str, str, str], Any] = {}


def _insert_ignore_statement(dialect: str, table: sa.Table, key: str) -> Any:
    found = _INSERT_IGNORE.get((dialect, table.name, key))
    if found is not None:
        return found
    if dialect == "postgresql":
        query: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=[key])
    elif dialect == "sqlite":
        query = sqlite.insert(table).on_conflict_do_nothing(index_elements=[key])
    else:
        raise NotImplementedError(f"the store supports PostgreSQL and SQLite, not {dialect}")
    # On the Core table, not the ORM class: the same SQL without the ORM's bulk-insert machinery.
    query = query.returning(table.c[key])
    _INSERT_IGNORE[(dialect, table.name, key)] = query
    return query


def _policy(row: PolicyRow) -> Policy:
    return Policy.model_validate({**row.document, "version": row.version})


def _invoice_view(row: InvoiceRow) -> InvoiceView:
    return InvoiceView(
        invoice_id=row.invoice_id,
        customer_id=row.customer_id,
        stage=Stage(row.stage),
        outcome=Outcome(row.outcome) if row.outcome else None,
        amount=row.amount,
        outstanding=row.outstanding,
        currency=row.currency,
        due_on=row.due_on,
        next_action=NextAction.model_validate(row.next_action) if row.next_action else None,
        plan=PlanView.model_validate(row.plan) if row.plan else None,
        policy_name=row.policy_name,
        policy_version=row.policy_version,
        fingerprint=row.fingerprint,
        invoice=Invoice.model_validate(row.document),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _event(row: TimelineEventRow) -> TimelineEvent:
    return TimelineEvent(
        key=row.event_key, at=row.at, kind=row.kind, actor=row.actor, detail=row.detail
    )


def _message_view(row: MessageRow) -> MessageView:
    return MessageView.model_validate(row, from_attributes=True)


def _task_view(row: TaskRow) -> TaskView:
    return TaskView.model_validate(row, from_attributes=True)


def _fresh_message(session: Session, key: str) -> MessageView:
    """The message as the database has it now (not as this session first loaded it)."""
    query = sa.select(MessageRow).where(MessageRow.key == key)
    row = session.scalars(query.execution_options(populate_existing=True)).one()
    return _message_view(row)
