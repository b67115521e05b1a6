"""Messages: claims (leases) before a send, the result after, and lookups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa

from db.models import MESSAGE_STATUSES, MessageRow
from db.store.base import _fresh_message, _insert_ignore, _message_view
from db.store.receipts import ReceiptStore
from db.store.views import RELEASED, Claim, MessageView, Receipt
from workflows.models import RecordRequest

_NOT_SENT: dict[str, Any] = dict.fromkeys(
    ("provider", "provider_message_id", "subject", "body", "error", "sent_at")
)
"""A message's columns that its claim leaves empty."""


def _finish_statement(sent: bool) -> Any:
    """The UPDATE that finishes a message, made once: each send passes only its values (the
    statement's cache key is worked out once, not on every send)."""
    messages = cast(sa.Table, MessageRow.__table__)
    query = sa.update(messages).where(messages.c.key == sa.bindparam("b_key"))
    if sent:
        # Finishing twice keeps the moment it was first handed over.
        first = sa.bindparam("b_now", type_=messages.c.sent_at.type)
        query = query.values(sent_at=sa.func.coalesce(messages.c.sent_at, first))
    return query.returning(messages.c.key)


_FINISH_SENT = _finish_statement(sent=True)
_FINISH_FAILED = _finish_statement(sent=False)


class MessageStore(ReceiptStore):
    def claim_message(
        self,
        key: str,
        invoice_id: str,
        channel: str,
        template: str,
        tone: str,
        locale: str,
        recipient: str,
        holder: str = "",
        lease: timedelta = timedelta(seconds=15),
    ) -> Claim:
        """Claim the message `key` for the attempt `holder` before calling a provider.

        The claim is a lease: its holder renews it (`renew_claim`) while it sends. Another attempt
        takes the message over only once the lease has run out, in one conditional UPDATE, so two
        attempts never both believe they hold it. A taker's `previous_at` is when the first of the
        attempts that died claimed it (one that asked the provider and died still sent nothing).
        """
        now = self._clock()
        values = {
            "key": key,
            "invoice_id": invoice_id,
            "channel": channel,
            "template": template,
            "tone": tone,
            "locale": locale,
            "recipient": recipient,
            "status": "claimed",
            "created_at": now,
            "claimed_by": holder,
            "claimed_at": now,
            "lease_until": now + lease,
        }
        with self._sessions.begin() as session:
            if _insert_ignore(session, MessageRow, values, "key"):
                # The row is what was just inserted: no need to read it back.
                return Claim(message=MessageView(**values, **_NOT_SENT), state="new")
            before = _fresh_message(session, key)
            if before.status != "claimed":
                return Claim(message=before, state="done")
            taken = session.execute(
                sa.update(MessageRow)
                .where(
                    MessageRow.key == key,
                    MessageRow.status == "claimed",
                    sa.or_(MessageRow.lease_until.is_(None), MessageRow.lease_until < now),
                )
                # `claimed_at` stays the first claim's moment while attempts die one after
                # another: the provider is asked about everything sent since then. A release
                # (nothing went out) starts afresh.
                .values(
                    claimed_by=holder,
                    claimed_at=sa.case(
                        (MessageRow.claimed_by == RELEASED, now), else_=MessageRow.claimed_at
                    ),
                    lease_until=now + lease,
                )
                .returning(MessageRow.key)
                .execution_options(synchronize_session=False)
            ).first()
            after = _fresh_message(session, key)
            if taken is None:
                return Claim(message=after, state="done" if after.status != "claimed" else "busy")
            if before.claimed_by == RELEASED:
                return Claim(message=after, state="new")  # the provider surely did not take it
            return Claim(message=after, state="taken_over", previous_at=before.claimed_at)

    def release_claim(self, key: str, holder: str) -> None:
        """`holder` is sure the provider did not take the message: the next attempt may send at
        once, as a first send."""
        with self._sessions.begin() as session:
            session.execute(
                sa.update(MessageRow)
                .where(
                    MessageRow.key == key,
                    MessageRow.status == "claimed",
                    MessageRow.claimed_by == holder,
                )
                .values(claimed_by=RELEASED, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    def renew_claim(self, key: str, holder: str, lease: timedelta) -> bool:
        """Extend `holder`'s lease on `key`; False when it no longer holds a live claim."""
        now = self._clock()
        with self._sessions.begin() as session:
            renewed = session.execute(
                sa.update(MessageRow)
                .where(
                    MessageRow.key == key,
                    MessageRow.status == "claimed",
                    MessageRow.claimed_by == holder,
                )
                .values(lease_until=now + lease)
                .returning(MessageRow.key)
                .execution_options(synchronize_session=False)
            ).first()
            return renewed is not None

    def finish_message(
        self,
        key: str,
        status: str,
        provider: str,
        provider_message_id: str | None,
        subject: str | None,
        body: str | None,
        error: str | None = None,
        record: RecordRequest | None = None,
    ) -> list[Receipt]:
        """Record what the provider answered for a claimed message, and with it `record` (the
        message's timeline event and its journey's snapshot) in the same transaction.

        Returns the receipts that arrived before the provider's id was stored (applied now).
        """
        if status not in MESSAGE_STATUSES or status == "claimed":
            raise ValueError(f"a message finishes as sent, outbox or failed, not {status!r}")
        values: dict[str, Any] = {
            "b_key": key,
            "status": status,
            "provider": provider,
            "provider_message_id": provider_message_id,
            "subject": subject,
            "body": body,
            "error": error,
        }
        sent = status in ("sent", "outbox")
        if sent:
            values["b_now"] = self._clock()
        with self._sessions.begin() as session:
            updated = session.execute(_FINISH_SENT if sent else _FINISH_FAILED, values)
            if updated.first() is None:
                raise LookupError(f"message {key!r} was never claimed")
            if record is not None:
                self._record_in(session, record)
        # After the commit, as `hold_receipt` looks after its own: whichever comes second sees the
        # other (inside this transaction, PostgreSQL could let both miss).
        return self.apply_early_receipts(provider_message_id) if provider_message_id else []

    def get_message(self, key: str) -> MessageView | None:
        with self._sessions() as session:
            row = session.get(MessageRow, key)
            return None if row is None else _message_view(row)

    def message_by_provider_id(self, provider_message_id: str) -> MessageView | None:
        query = sa.select(MessageRow).where(MessageRow.provider_message_id == provider_message_id)
        with self._sessions() as session:
            row = session.scalars(query.limit(1)).first()
            return None if row is None else _message_view(row)

    # ---- what providers tell us afterwards (webhooks) ------------------------------------------

    def list_messages(self, invoice_id: str | None = None, limit: int = 100) -> list[MessageView]:
        """Messages, newest first, optionally for one invoice."""
        query = sa.select(MessageRow)
        if invoice_id is not None:
            query = query.where(MessageRow.invoice_id == invoice_id)
        query = query.order_by(MessageRow.created_at.desc(), MessageRow.key.desc()).limit(limit)
        with self._sessions() as session:
            return [_message_view(row) for row in session.scalars(query)]

    # ---- providers -----------------------------------------------------------------------------
