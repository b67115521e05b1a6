"""The debtors' page: personal links (only their hashes), and what a debtor may see of their own
invoices (amounts, payments, plans, the messages sent to them; nothing internal)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from db.models import (
    InvoiceRow,
    MessageRow,
    PortalLinkRow,
    PortalPaymentRow,
    ReplyAddressRow,
    TaskRow,
)
from db.store.base import _insert_ignore, _invoice_view, _message_view
from db.store.tasks import TaskStore
from db.store.views import InvoiceView, MessageView, PortalPayment


class PortalStore(TaskStore):
    def portal_generation(self, customer_id: str, hash_of: Callable[[int], str]) -> int:
        """The customer's live link generation, made (as generation 1, or the next after a
        revoked one) when there is none. `hash_of(generation)` is the hash of its token."""
        for _ in range(3):
            with self._sessions.begin() as session:
                rows = session.execute(
                    sa.select(PortalLinkRow.generation, PortalLinkRow.revoked_at).where(
                        PortalLinkRow.customer_id == customer_id
                    )
                ).all()
                live = [g for g, revoked in rows if revoked is None]
                if live:
                    return max(live)
                generation = max((g for g, _ in rows), default=0) + 1
                session.add(
                    PortalLinkRow(
                        token_hash=hash_of(generation),
                        customer_id=customer_id,
                        generation=generation,
                        created_at=self._clock(),
                    )
                )
                try:
                    session.flush()
                except IntegrityError:
                    # Another message made the same generation at the same moment: read it.
                    session.rollback()
                    continue
                return generation
        raise RuntimeError(f"could not make a portal link for customer {customer_id}")

    def portal_link(self, token_hash: str) -> tuple[str, int] | None:
        """(customer id, generation) of a live link; None when unknown or revoked."""
        with self._sessions() as session:
            row = session.get(PortalLinkRow, token_hash)
            if row is None or row.revoked_at is not None:
                return None
            return row.customer_id, row.generation

    def revoke_portal_link(self, customer_id: str, actor: str) -> bool:
        """Revoke the customer's live link; the next message carries a new one. True if one was."""
        now = self._clock()
        with self._sessions.begin() as session:
            revoked = session.execute(
                sa.update(PortalLinkRow)
                .where(PortalLinkRow.customer_id == customer_id, PortalLinkRow.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=actor)
                .returning(PortalLinkRow.token_hash)
            ).all()
            return bool(revoked)

    def customer_invoices(self, customer_id: str) -> list[InvoiceView]:
        """Every invoice of the customer, oldest due first."""
        query = (
            sa.select(InvoiceRow)
            .where(InvoiceRow.customer_id == customer_id)
            .order_by(InvoiceRow.due_on, InvoiceRow.invoice_id)
        )
        with self._sessions() as session:
            return [_invoice_view(row) for row in session.scalars(query)]

    def messages_to_customer(self, customer_id: str, limit: int = 200) -> list[MessageView]:
        """The messages that went to the customer (sent, or put in the outbox), newest first."""
        query = (
            sa.select(MessageRow)
            .join(InvoiceRow, InvoiceRow.invoice_id == MessageRow.invoice_id)
            .where(InvoiceRow.customer_id == customer_id, MessageRow.status.in_(("sent", "outbox")))
            .order_by(MessageRow.created_at.desc())
            .limit(limit)
        )
        with self._sessions() as session:
            return [_message_view(row) for row in session.scalars(query)]

    def add_portal_payment(self, payment: PortalPayment) -> None:
        with self._sessions.begin() as session:
            session.add(PortalPaymentRow(**payment.model_dump()))

    def set_portal_payment_status(self, ref: str, status: str) -> None:
        """What Mollie last said of the payment (the return page asks Mollie itself)."""
        with self._sessions.begin() as session:
            row = session.get(PortalPaymentRow, ref)
            if row is not None:
                row.status = status

    def portal_payment(self, ref: str) -> PortalPayment | None:
        with self._sessions() as session:
            row = session.get(PortalPaymentRow, ref)
            return None if row is None else PortalPayment.model_validate(row, from_attributes=True)

    def open_task(
        self, key: str, invoice_id: str, customer_id: str, kind: str, title: str, **detail: Any
    ) -> bool:
        """An agent task no journey can create (its journey has closed); once per `key`."""
        task = {
            "id": uuid.uuid4().hex,
            "task_key": key,
            "invoice_id": invoice_id,
            "customer_id": customer_id,
            "kind": kind,
            "title": title[:500],
            "detail": detail,
            "status": "open",
            "created_at": self._clock(),
        }
        with self._sessions.begin() as session:
            return _insert_ignore(session, TaskRow, task, "task_key")

    def remember_reply_address(self, token: str, invoice_id: str, customer_id: str) -> None:
        row = {
            "token": token,
            "invoice_id": invoice_id,
            "customer_id": customer_id,
            "created_at": self._clock(),
        }
        with self._sessions.begin() as session:
            _insert_ignore(session, ReplyAddressRow, row, "token")

    def reply_address(self, token: str) -> tuple[str, str] | None:
        """(invoice id, customer id) a reply address was made for."""
        with self._sessions() as session:
            row = session.get(ReplyAddressRow, token)
            return None if row is None else (row.invoice_id, row.customer_id)

    def open_invoices_of_email(self, email: str) -> list[str]:
        """Open invoices (newest first) whose debtor has this email address."""
        query = (
            sa.select(InvoiceRow.invoice_id, InvoiceRow.document)
            .where(InvoiceRow.outcome.is_(None))
            .order_by(InvoiceRow.created_at.desc())
        )
        wanted = email.strip().lower()
        with self._sessions() as session:
            return [
                invoice_id
                for invoice_id, document in session.execute(query)
                if str(document.get("customer", {}).get("email") or "").lower() == wanted
            ]
