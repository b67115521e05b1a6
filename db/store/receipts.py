"""Provider webhooks: delivery receipts, early receipts, opt-outs and contact fixes."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from db.models import (
    EarlyReceiptRow,
    InvoiceRow,
    MessageRow,
    OptOutRow,
    WebhookEventRow,
)
from db.store.base import _DELIVERY_RANKS, _delivery_rank, _fresh_message, _insert_ignore
from db.store.invoices import InvoiceStore
from db.store.views import OptOut, Receipt
from workflows.models import (
    TimelineEvent,
)

_OPT_OUTS = cast(sa.Table, OptOutRow.__table__)
_EARLY = cast(sa.Table, EarlyReceiptRow.__table__)
# Both asked on every send, made once: the statement's cache key is worked out once.
_OPTED_OUT = sa.select(_OPT_OUTS.c.opt_key).where(_OPT_OUTS.c.opt_key == sa.bindparam("b_key"))
_HELD_ANY = (
    sa.select(_EARLY.c.event_key)
    .where(_EARLY.c.provider_message_id == sa.bindparam("b_message_id"))
    .limit(1)
)


class ReceiptStore(InvoiceStore):
    def handled(self, event_key: str) -> bool:
        """Whether a provider's event was handled before (its redelivery changes nothing)."""
        with self._sessions() as session:
            return session.get(WebhookEventRow, event_key) is not None

    def apply_receipt(
        self,
        event_key: str,
        message_key: str,
        status: str,
        reason: str = "",
        opt_out: OptOut | None = None,
    ) -> bool:
        """A provider's receipt, handled once: the event remembered, the message's delivery status
        moved forward, the receipt on the timeline and any opt-out it carries (a spam report), in
        one transaction. False: seen before."""
        with self._sessions.begin() as session:
            applied = self._apply_receipt(session, event_key, message_key, status, reason)
            if applied and opt_out is not None:
                self._opt_out(session, opt_out)
            return applied

    def apply_opt_change(self, event_key: str, change: OptOut, out: bool) -> bool:
        """A debtor's STOP (`out`) or START, handled once with the event in one transaction."""
        with self._sessions.begin() as session:
            seen = {"event_key": event_key, "received_at": self._clock()}
            if not _insert_ignore(session, WebhookEventRow, seen, "event_key"):
                return False
            if out:
                self._opt_out(session, change)
            else:
                self._opt_in(session, change.address, change.channel)
            return True

    def _apply_receipt(
        self, session: Session, event_key: str, message_key: str, status: str, reason: str
    ) -> bool:
        now = self._clock()
        seen = {"event_key": event_key, "received_at": now}
        if not _insert_ignore(session, WebhookEventRow, seen, "event_key"):
            return False
        # Receipts arrive out of order and can race each other: one conditional UPDATE, so the
        # status only moves forward (a late `sent` never replaces `delivered`; bounces are final).
        rank = sa.case(_DELIVERY_RANKS, value=MessageRow.delivery_status, else_=0)
        session.execute(
            sa.update(MessageRow)
            .where(
                MessageRow.key == message_key,
                sa.or_(MessageRow.delivery_status.is_(None), rank <= _delivery_rank(status)),
            )
            .values(delivery_status=status, delivery_at=now)
            .execution_options(synchronize_session=False)
        )
        message = _fresh_message(session, message_key)
        detail: dict[str, Any] = {
            "channel": message.channel,
            "status": status,
            "template": message.template,
        }
        if reason:
            detail["reason"] = reason
        # When we learned it: SendGrid's own timestamps have whole seconds and would sort a
        # receipt before the send it reports on.
        event = TimelineEvent(
            key=event_key, at=now, kind="delivery", actor="provider", detail=detail
        )
        self._add_event(session, message.invoice_id, event)
        return True

    def hold_receipt(
        self, event_key: str, provider_message_id: str, status: str, reason: str, bounce: bool
    ) -> list[Receipt]:
        """Keep a receipt whose provider id we have not stored yet (the callback beat our own
        'mark sent'); `finish_message` applies it. Applied at once if the id came meanwhile."""
        values = {
            "event_key": event_key,
            "provider_message_id": provider_message_id,
            "status": status,
            "reason": reason[:300],
            "bounce": bounce,
            "received_at": self._clock(),
        }
        with self._sessions.begin() as session:
            _insert_ignore(session, EarlyReceiptRow, values, "event_key")
        # Checked after the insert is committed, as `finish_message` checks after its own commit:
        # whichever of the two comes second sees the other.
        return self.apply_early_receipts(provider_message_id)

    def apply_early_receipts(self, provider_message_id: str) -> list[Receipt]:
        """Apply the receipts held for `provider_message_id`, once (the held rows are deleted)."""
        # Nearly always none are held: look before opening a write transaction, which on SQLite
        # would take the database's write lock for nothing on every send. Safe, as the callers
        # look after their own commit: a receipt held after this look is applied by its holder.
        with self._sessions() as session:
            if session.execute(_HELD_ANY, {"b_message_id": provider_message_id}).first() is None:
                return []
        with self._sessions.begin() as session:
            message = session.scalars(
                sa.select(MessageRow.key).where(
                    MessageRow.provider_message_id == provider_message_id
                )
            ).first()
            if message is None:
                return []
            held = session.execute(
                sa.delete(EarlyReceiptRow)
                .where(EarlyReceiptRow.provider_message_id == provider_message_id)
                .returning(
                    EarlyReceiptRow.event_key,
                    EarlyReceiptRow.status,
                    EarlyReceiptRow.reason,
                    EarlyReceiptRow.bounce,
                )
            ).all()
            applied = []
            for key, status, reason, bounce in sorted(held, key=lambda r: _delivery_rank(r[1])):
                if self._apply_receipt(session, key, message, status, reason):
                    applied.append(
                        Receipt(event_key=key, status=status, reason=reason, bounce=bounce)
                    )
            return applied

    def opt_out(self, address: str, channel: str, actor: str, reason: str) -> bool:
        """No journey may use `address` on `channel` any more; False if it already was so."""
        with self._sessions.begin() as session:
            return self._opt_out(session, OptOut(address, channel, actor, reason))

    def _opt_out(self, session: Session, change: OptOut) -> bool:
        values = {
            "opt_key": f"{change.channel}:{change.address}",
            **change._asdict(),
            "created_at": self._clock(),
        }
        return _insert_ignore(session, OptOutRow, values, "opt_key")

    def opt_in(self, address: str, channel: str) -> bool:
        """The debtor asked for `channel` again (SMS START); False if there was no opt-out."""
        with self._sessions.begin() as session:
            return self._opt_in(session, address, channel)

    def _opt_in(self, session: Session, address: str, channel: str) -> bool:
        row = session.get(OptOutRow, f"{channel}:{address}")
        if row is None:
            return False
        session.delete(row)
        return True

    def opted_out(self, address: str, channel: str) -> bool:
        with self._sessions() as session:
            found = session.execute(_OPTED_OUT, {"b_key": f"{channel}:{address}"}).first()
            return found is not None

    def open_invoices_of_phone(self, phone: str) -> list[str]:
        """Invoices still being chased whose debtor has this phone number."""
        query = sa.select(InvoiceRow.invoice_id).where(
            InvoiceRow.customer_phone == phone, InvoiceRow.outcome.is_(None)
        )
        with self._sessions() as session:
            return list(session.scalars(query.order_by(InvoiceRow.invoice_id)))

    def set_customer_phone(self, invoice_id: str, phone: str) -> None:
        with self._sessions.begin() as session:
            row = session.get(InvoiceRow, invoice_id)
            if row is not None:
                row.customer_phone = phone
