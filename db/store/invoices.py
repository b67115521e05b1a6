"""Invoices and their timelines: what the journeys record and the API reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from db.models import (
    InvoiceRow,
    TaskRow,
    TimelineEventRow,
)
from db.store.base import _event, _insert_ignore, _invoice_view
from db.store.policies import PolicyStore
from db.store.views import InvoiceView
from workflows.models import (
    Invoice,
    NextAction,
    PlanOutcome,
    PlanView,
    RecordRequest,
    Snapshot,
    Stage,
    TimelineEvent,
)


class InvoiceStore(PolicyStore):
    def ensure_invoice(
        self, invoice: Invoice, fingerprint: str, policy_name: str, policy_version: int
    ) -> tuple[InvoiceView, bool]:
        """The invoice's row, created (stage `scheduled`, nothing paid yet) when absent.

        Returns the row and whether this call created it; a concurrent caller gets the same row.
        """
        with self._sessions.begin() as session:
            created = self._ensure_invoice(
                session, invoice, fingerprint, policy_name, policy_version
            )
            row = session.get_one(InvoiceRow, invoice.invoice_id)
            return _invoice_view(row), created

    def _ensure_invoice(
        self,
        session: Session,
        invoice: Invoice,
        fingerprint: str,
        policy_name: str,
        policy_version: int,
        next_action: NextAction | None = None,
    ) -> bool:
        now = self._clock()
        values = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer.id,
            "stage": Stage.scheduled.value,
            "outcome": None,
            "amount": invoice.amount,
            "outstanding": invoice.amount,
            "currency": invoice.currency,
            "due_on": invoice.due_on,
            "customer_phone": invoice.customer.phone,
            "next_action": next_action.model_dump(mode="json") if next_action else None,
            "policy_name": policy_name,
            "policy_version": policy_version,
            "fingerprint": fingerprint,
            "document": invoice.model_dump(mode="json"),
            "snapshot_at": None,
            "created_at": now,
            "updated_at": now,
        }
        return _insert_ignore(session, InvoiceRow, values, "invoice_id")

    def get_invoice(self, invoice_id: str) -> InvoiceView | None:
        with self._sessions() as session:
            row = session.get(InvoiceRow, invoice_id)
            return None if row is None else _invoice_view(row)

    def list_invoices(
        self,
        customer_id: str | None = None,
        stage: str | None = None,
        limit: int = 100,
        offset: int = 0,
        outcome: str | None = None,
        due_before: date | None = None,
    ) -> list[InvoiceView]:
        """Invoices, newest first, filtered by debtor, stage, outcome and due date.

        `due_before` keeps open journeys due before that day (overdue by at least some days).
        """
        query = sa.select(InvoiceRow)
        if customer_id is not None:
            query = query.where(InvoiceRow.customer_id == customer_id)
        if stage is not None:
            query = query.where(InvoiceRow.stage == stage)
        if outcome is not None:
            query = query.where(InvoiceRow.outcome == outcome)
        if due_before is not None:
            query = query.where(InvoiceRow.due_on < due_before, InvoiceRow.outcome.is_(None))
        query = query.order_by(InvoiceRow.created_at.desc(), InvoiceRow.invoice_id.desc())
        with self._sessions() as session:
            rows = session.scalars(query.limit(limit).offset(offset))
            return [_invoice_view(row) for row in rows]

    def invoice_with_payment(self, invoice_id: str, reference: str) -> InvoiceView | None:
        """The invoice, once its journey has recorded the payment `reference`; else None."""
        query = sa.select(TimelineEventRow.detail).where(
            TimelineEventRow.invoice_id == invoice_id, TimelineEventRow.kind == "payment"
        )
        with self._sessions() as session:
            # The journey's own payment event (a plan's events carry `plan`).
            found = [
                d
                for d in session.scalars(query)
                if d.get("reference") == reference and "plan" not in d
            ]
            row = session.get(InvoiceRow, invoice_id)
            if not found or row is None:
                return None
            view = _invoice_view(row)
            if found[0].get("outstanding") is not None and view.outcome is None:
                # What the journey had left right after this payment: a plan's own record can
                # reach the row a moment later with an older figure.
                view.outstanding = Decimal(str(found[0]["outstanding"]))
            return view

    def timeline(self, invoice_id: str) -> list[TimelineEvent]:
        """The invoice's journey, oldest first."""
        query = (
            sa.select(TimelineEventRow)
            .where(TimelineEventRow.invoice_id == invoice_id)
            .order_by(TimelineEventRow.at, TimelineEventRow.id)
        )
        with self._sessions() as session:
            return [_event(row) for row in session.scalars(query)]

    def customer_timeline(
        self,
        customer_id: str,
        limit: int = 200,
        offset: int = 0,
        kinds: Sequence[str] | None = None,
    ) -> list[tuple[str, TimelineEvent]]:
        """Every journey of one debtor as one timeline, oldest first: (invoice_id, event);
        only events of `kinds` when given."""
        query = sa.select(TimelineEventRow).where(TimelineEventRow.customer_id == customer_id)
        if kinds is not None:
            query = query.where(TimelineEventRow.kind.in_(kinds))
        query = query.order_by(TimelineEventRow.at, TimelineEventRow.id).limit(limit).offset(offset)
        with self._sessions() as session:
            return [(row.invoice_id, _event(row)) for row in session.scalars(query)]

    def record(self, req: RecordRequest) -> None:
        """Write a journey's events, its latest snapshot and new tasks, in one transaction.

        Safe to repeat and to run concurrently: an event or task whose key is already stored is
        skipped, and a snapshot older than the one stored (a retried activity finishing late)
        does not overwrite it.
        """
        with self._sessions.begin() as session:
            self._record_in(session, req)

    def record_start(self, req: RecordRequest) -> None:
        """A journey's start as its starter records it (`start_record`): the invoice's row with
        the first snapshot, and the `journey_started` event, each only where absent. So a repeat,
        or a start recorded after the journey itself has written, changes nothing. The row's
        snapshot has no moment: whatever the journey writes later is newer."""
        self.record_starts([req])

    def record_starts(self, requests: Sequence[RecordRequest]) -> None:
        """`record_start` for each, in one transaction."""
        with self._sessions.begin() as session:
            for req in requests:
                if req.invoice is None:
                    raise ValueError("a start record names its invoice")
                self._ensure_row_of(session, req, req.snapshot.next_action)
                for event in req.events:
                    _insert_event(session, event, req.snapshot.invoice_id, req.snapshot.customer_id)

    def _ensure_row_of(
        self, session: Session, req: RecordRequest, next_action: NextAction | None = None
    ) -> None:
        """The row of the invoice `req` carries, created where absent."""
        invoice = req.invoice
        assert invoice is not None
        if invoice.invoice_id != req.snapshot.invoice_id:
            raise ValueError(
                f"invoice {invoice.invoice_id} recorded with the snapshot of "
                f"{req.snapshot.invoice_id}"
            )
        self._ensure_invoice(
            session,
            invoice,
            req.fingerprint or "",
            req.policy_name or invoice.policy,
            req.policy_version or 1,
            next_action,
        )

    def _record_in(self, session: Session, req: RecordRequest) -> None:
        """`record`, in the caller's transaction."""
        snapshot = req.snapshot
        if req.invoice is not None:
            self._ensure_row_of(session, req)
        for event in req.events:
            _insert_event(session, event, snapshot.invoice_id, snapshot.customer_id)
        as_of = max((event.at for event in req.events), default=None)
        self._apply_snapshot(session, snapshot, as_of)
        for task in req.tasks:
            values = {
                "id": uuid.uuid4().hex,
                "task_key": task.key,
                "invoice_id": snapshot.invoice_id,
                "customer_id": snapshot.customer_id,
                "kind": task.kind,
                "title": task.title,
                "detail": task.model_dump(mode="json")["detail"],
                "status": "open",
                "created_at": self._clock(),
            }
            _insert_ignore(session, TaskRow, values, "task_key")

    def _apply_snapshot(self, session: Session, snapshot: Snapshot, as_of: datetime | None) -> None:
        if snapshot.plan is not None and snapshot.plan.status != PlanOutcome.running:
            # An ended plan's last record is about the plan only: the journey, which carries on
            # (or has closed), keeps its own stage, amount and next action, whichever came first.
            self._apply_plan(session, snapshot.invoice_id, snapshot.plan)
            return
        values: dict[str, Any] = {
            "b_invoice_id": snapshot.invoice_id,
            "stage": snapshot.stage.value,
            "outcome": snapshot.outcome.value if snapshot.outcome else None,
            "outstanding": snapshot.outstanding,
            "next_action": (
                snapshot.next_action.model_dump(mode="json") if snapshot.next_action else None
            ),
            "updated_at": self._clock(),
        }
        if snapshot.customer_phone is not None:  # changed through PUT /contact, maybe
            values["customer_phone"] = snapshot.customer_phone
        if as_of is not None:
            values["snapshot_at"] = values["b_as_of"] = as_of
        # One conditional UPDATE, so the check and the write cannot be split by another writer.
        query = _SNAPSHOT_STATEMENTS[(as_of is not None, snapshot.outcome is None)]
        session.execute(query, values)
        if snapshot.plan is not None:
            self._apply_plan(session, snapshot.invoice_id, snapshot.plan)

    def _apply_plan(self, session: Session, invoice_id: str, plan: PlanView) -> None:
        """Keep the newest plan's newest view: (number, revision) only ever grows."""
        query = sa.select(InvoiceRow.plan).where(InvoiceRow.invoice_id == invoice_id)
        current = session.execute(query.with_for_update()).scalar_one_or_none()
        if current is not None:
            stored = (current.get("number", 0), current.get("revision", 0))
            if stored > (plan.number, plan.revision):
                return
        session.execute(
            sa.update(InvoiceRow)
            .where(InvoiceRow.invoice_id == invoice_id)
            .values(plan=plan.model_dump(mode="json"))
            .execution_options(synchronize_session=False)
        )

    # ---- messages ------------------------------------------------------------------------------

    def add_event(self, invoice_id: str, event: TimelineEvent) -> None:
        with self._sessions.begin() as session:
            self._add_event(session, invoice_id, event)

    def _add_event(self, session: Session, invoice_id: str, event: TimelineEvent) -> None:
        invoice = session.get(InvoiceRow, invoice_id)
        if invoice is None:
            return
        _insert_event(session, event, invoice_id, invoice.customer_id)


def _snapshot_statement(newer_only: bool, open_only: bool) -> Any:
    """The UPDATE that applies a snapshot; each record passes its values. On the Core table: no
    ORM session to synchronise, the same SQL for less work.

    `newer_only`: not over a snapshot of a later moment. `open_only`: a closed journey stays
    closed."""
    invoices = cast(sa.Table, InvoiceRow.__table__)
    query = sa.update(invoices).where(invoices.c.invoice_id == sa.bindparam("b_invoice_id"))
    if newer_only:
        as_of = sa.bindparam("b_as_of", type_=invoices.c.snapshot_at.type)
        query = query.where(
            sa.or_(invoices.c.snapshot_at.is_(None), invoices.c.snapshot_at <= as_of)
        )
    if open_only:
        query = query.where(invoices.c.outcome.is_(None))
    return query


_SNAPSHOT_STATEMENTS = {
    (newer_only, open_only): _snapshot_statement(newer_only, open_only)
    for newer_only in (False, True)
    for open_only in (False, True)
}
"""Made once, as every record uses one: each one's cache key is worked out once, not per record."""


def _insert_event(
    session: Session, event: TimelineEvent, invoice_id: str, customer_id: str
) -> None:
    """A timeline event, once: one already stored under its key is left as it is."""
    values = {
        "event_key": event.key,
        "invoice_id": invoice_id,
        "customer_id": customer_id,
        "at": event.at,
        "kind": event.kind,
        "actor": event.actor,
        "detail": event.model_dump(mode="json")["detail"],
    }
    _insert_ignore(session, TimelineEventRow, values, "event_key")
