"""What the credit controller's console reads and writes: its sessions, the work list, paged
invoice lists, customer notes and a customer's payment behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from db.models import (
    ApiKeyRow,
    ConsoleSessionRow,
    CustomerNoteRow,
    InvoiceRow,
    TaskRow,
    TimelineEventRow,
)
from db.store.base import _invoice_view, _task_view
from db.store.portal import PortalStore
from db.store.views import InvoiceView, TaskView

SEEN_EVERY = timedelta(seconds=30)
"""A session's last use is written at most this often (not on every page)."""

TaskOrder = Literal["oldest", "largest"]
InvoiceState = Literal["all", "open", "overdue", "closed"]


@dataclass(frozen=True)
class ConsoleSession:
    actor: str
    role: str
    stored_key: bool
    created_at: datetime


@dataclass(frozen=True)
class WorkItem:
    task: TaskView
    outstanding: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Note:
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Behaviour:
    """How a customer pays, from their journeys' records."""

    open_total: dict[str, Decimal]
    overdue_total: dict[str, Decimal]
    paid_this_year: dict[str, Decimal]
    paid_invoices: int
    on_time: int
    average_days_late: float | None
    promises_kept: int
    promises_broken: int


class ConsoleStore(PortalStore):
    # ---- sessions -------------------------------------------------------------------------------

    def start_console_session(self, id_hash: str, actor: str, role: str, stored_key: bool) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            session.add(
                ConsoleSessionRow(
                    id_hash=id_hash,
                    actor=actor,
                    role=role,
                    stored_key=stored_key,
                    created_at=now,
                    last_seen=now,
                )
            )

    def console_session(self, id_hash: str, idle: timedelta) -> ConsoleSession | None:
        """The live session with this id (its use noted), or None: unknown, signed out, idle
        longer than `idle`, or signed in with a stored key since revoked."""
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(ConsoleSessionRow, id_hash)
            if row is None or row.ended_at is not None:
                return None
            if now - row.last_seen > idle:
                row.ended_at = now
                return None
            if row.stored_key:
                key = session.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.name == row.actor))
                found = key.first()
                if found is None or found.revoked_at is not None:
                    row.ended_at = now
                    return None
            if now - row.last_seen > SEEN_EVERY:
                row.last_seen = now
            return ConsoleSession(row.actor, row.role, row.stored_key, row.created_at)

    def end_console_session(self, id_hash: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(ConsoleSessionRow, id_hash)
            if row is not None and row.ended_at is None:
                row.ended_at = self._clock()

    # ---- the work list --------------------------------------------------------------------------

    def work_list(
        self,
        kind: str | None = None,
        assigned_to: str | None = None,
        order: TaskOrder = "oldest",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[WorkItem], int]:
        """Open tasks with their invoice's outstanding amount, oldest (or largest) first, and
        how many match in all."""
        where: list[Any] = [TaskRow.status == "open"]
        if kind:
            where.append(TaskRow.kind == kind)
        if assigned_to:
            where.append(TaskRow.assigned_to == assigned_to)
        query = (
            sa.select(TaskRow, InvoiceRow.outstanding, InvoiceRow.currency)
            .outerjoin(InvoiceRow, InvoiceRow.invoice_id == TaskRow.invoice_id)
            .where(*where)
        )
        if order == "largest":
            query = query.order_by(
                InvoiceRow.outstanding.desc().nulls_last(), TaskRow.created_at, TaskRow.id
            )
        else:
            query = query.order_by(TaskRow.created_at, TaskRow.id)
        count = sa.select(sa.func.count()).select_from(TaskRow).where(*where)
        with self._sessions() as session:
            rows = session.execute(query.limit(limit).offset(offset)).all()
            total = session.scalar(count) or 0
            return [WorkItem(_task_view(t), out, cur) for t, out, cur in rows], total

    def task_kinds(self) -> list[str]:
        """The kinds of task open now (for the work list's filter)."""
        query = sa.select(TaskRow.kind).where(TaskRow.status == "open").distinct()
        with self._sessions() as session:
            return sorted(session.scalars(query))

    def take_task(self, task_id: str, actor: str) -> TaskView | None:
        """Put an open task on `actor`'s list (taking it over from whoever had it)."""
        with self._sessions.begin() as session:
            session.execute(
                sa.update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "open")
                .values(assigned_to=actor, assigned_at=self._clock())
                .execution_options(synchronize_session=False)
            )
            row = session.get(TaskRow, task_id)
            return None if row is None else _task_view(row)

    # ---- invoices -------------------------------------------------------------------------------

    def page_invoices(
        self,
        state: InvoiceState = "all",
        stage: str | None = None,
        customer_id: str | None = None,
        search: str | None = None,
        today: date | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[InvoiceView], int]:
        """One page of invoices, newest first, and how many match in all."""
        where: list[Any] = []
        if state == "open":
            where.append(InvoiceRow.outcome.is_(None))
        elif state == "closed":
            where.append(InvoiceRow.outcome.is_not(None))
        elif state == "overdue":
            where += [InvoiceRow.outcome.is_(None), InvoiceRow.due_on < (today or date.today())]
        if stage:
            where.append(InvoiceRow.stage == stage)
        if customer_id:
            where.append(InvoiceRow.customer_id == customer_id)
        if search:
            # An id's beginning: served by the primary key's index.
            where.append(InvoiceRow.invoice_id.startswith(search, autoescape=True))
        query = (
            sa.select(InvoiceRow)
            .where(*where)
            .order_by(InvoiceRow.created_at.desc(), InvoiceRow.invoice_id.desc())
        )
        count = sa.select(sa.func.count()).select_from(InvoiceRow).where(*where)
        with self._sessions() as session:
            rows = session.scalars(query.limit(limit).offset(offset))
            views = [_invoice_view(row) for row in rows]
            return views, session.scalar(count) or 0

    # ---- customers ------------------------------------------------------------------------------

    def add_note(self, customer_id: str, author: str, body: str) -> Note:
        now = self._clock()
        with self._sessions.begin() as session:
            session.add(
                CustomerNoteRow(customer_id=customer_id, author=author, body=body, created_at=now)
            )
        return Note(author, body, now)

    def notes(self, customer_id: str) -> list[Note]:
        """A customer's notes, newest first."""
        query = (
            sa.select(CustomerNoteRow)
            .where(CustomerNoteRow.customer_id == customer_id)
            .order_by(CustomerNoteRow.created_at.desc(), CustomerNoteRow.id.desc())
        )
        with self._sessions() as session:
            return [Note(r.author, r.body, r.created_at) for r in session.scalars(query)]

    def behaviour(self, customer_id: str, today: date) -> Behaviour:
        """Totals and payment behaviour over every invoice of one customer."""
        invoices = self.customer_invoices(customer_id)
        kinds = ("payment", "closed", "promise_kept", "promise_broken")
        event = TimelineEventRow
        query = sa.select(event.invoice_id, event.kind, event.at, event.detail).where(
            event.customer_id == customer_id, event.kind.in_(kinds)
        )
        with self._sessions() as session:
            events = session.execute(query).all()
        currency = {i.invoice_id: i.currency for i in invoices}
        open_total: dict[str, Decimal] = {}
        overdue_total: dict[str, Decimal] = {}
        for invoice in invoices:
            if invoice.outcome is None:
                _add(open_total, invoice.currency, invoice.outstanding)
                if invoice.due_on < today:
                    _add(overdue_total, invoice.currency, invoice.outstanding)
        paid: dict[str, Decimal] = {}
        days_late: list[int] = []
        kept = broken = 0
        due = {i.invoice_id: i.due_on for i in invoices}
        for invoice_id, kind, at, detail in events:
            if kind == "payment" and at.year == today.year and "plan" not in detail:
                _add(paid, currency.get(invoice_id, "EUR"), Decimal(str(detail.get("amount", 0))))
            elif kind == "closed" and detail.get("outcome") == "paid" and invoice_id in due:
                days_late.append(max((at.date() - due[invoice_id]).days, 0))
            elif kind == "promise_kept":
                kept += 1
            elif kind == "promise_broken":
                broken += 1
        return Behaviour(
            open_total=open_total,
            overdue_total=overdue_total,
            paid_this_year=paid,
            paid_invoices=len(days_late),
            on_time=sum(1 for d in days_late if d == 0),
            average_days_late=sum(days_late) / len(days_late) if days_late else None,
            promises_kept=kept,
            promises_broken=broken,
        )


def _add(totals: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    totals[currency] = totals.get(currency, Decimal(0)) + amount
