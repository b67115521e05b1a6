"""The read model's one door: what activities write and what the API reads.

Every method runs in its own transaction and returns plain pydantic models, never ORM objects, so
callers (thread-pool activities, API handlers) hold no session. Writes are idempotent: activities
are retried, so each row has a natural key (event key, message key, task key) and a second write of
the same key is skipped with `INSERT ... ON CONFLICT DO NOTHING`, which also makes two concurrent
writers of the same key safe on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    MESSAGE_STATUSES,
    EarlyReceiptRow,
    InvoiceRow,
    MessageRow,
    OptOutRow,
    PolicyRow,
    ProviderStateRow,
    TaskRow,
    TimelineEventRow,
    UTCDateTime,
    WebhookEventRow,
    utcnow,
)
from workflows.models import (
    Invoice,
    NextAction,
    Outcome,
    PlanView,
    RecordRequest,
    Snapshot,
    Stage,
    TimelineEvent,
)
from workflows.policy import Policy

MessageStatus = Literal["claimed", "sent", "outbox", "failed"]
RELEASED = "released"
"""`claimed_by` of a message whose last attempt knew the provider did not take it."""
TaskStatus = Literal["open", "done"]


class InvoiceView(BaseModel):
    """An invoice and the latest state of its journey."""

    invoice_id: str
    customer_id: str
    stage: Stage
    outcome: Outcome | None
    amount: Decimal
    outstanding: Decimal
    currency: str
    due_on: date
    next_action: NextAction | None
    plan: PlanView | None = None
    policy_name: str
    policy_version: int
    fingerprint: str
    invoice: Invoice
    """The invoice as the billing system sent it."""
    created_at: datetime
    updated_at: datetime


class MessageView(BaseModel):
    """One message on one channel; `status` is `claimed` until the provider has answered."""

    key: str
    invoice_id: str
    channel: str
    template: str
    tone: str
    locale: str
    recipient: str
    status: MessageStatus
    provider: str | None
    provider_message_id: str | None
    subject: str | None
    body: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery_status: str | None = None
    delivery_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    lease_until: datetime | None = None


class Claim(BaseModel):
    """What `claim_message` found.

    - `new`: this attempt claimed the message now; send it.
    - `done`: an earlier attempt finished it (sent, outbox or failed); send nothing.
    - `busy`: another attempt holds a live lease and may be sending right now; wait.
    - `taken_over`: an earlier attempt claimed it and died (its lease ran out) without saying
      what the provider answered; `previous_at` is when it claimed.
    """

    message: MessageView
    state: Literal["new", "done", "busy", "taken_over"]
    previous_at: datetime | None = None


class Receipt(BaseModel):
    """A provider's report on one message, as applied."""

    event_key: str
    status: str
    reason: str = ""
    bounce: bool = False


class OptOut(NamedTuple):
    """An address that may (not) be used on a channel any more, and who said so."""

    address: str
    channel: str
    actor: str
    reason: str


class ProviderState(BaseModel):
    provider: str
    state: Literal["ok", "misconfigured"]
    detail: str
    since: datetime
    checked_at: datetime


class TaskView(BaseModel):
    """A piece of work on the agents' list."""

    id: str
    task_key: str
    invoice_id: str
    customer_id: str
    kind: str
    title: str
    detail: dict[str, Any]
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    note: str | None


class Store:
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

    def ensure_shipped_policies(self, policies: Iterable[Policy]) -> None:
        """Add each policy that is not there yet; one already there (perhaps edited) is kept."""
        with self._sessions.begin() as session:
            for policy in policies:
                _insert_ignore(session, PolicyRow, self._policy_values(policy, "system"), "name")

    def get_policy(self, name: str) -> Policy | None:
        with self._sessions() as session:
            row = session.get(PolicyRow, name)
            return None if row is None else _policy(row)

    def list_policies(self) -> list[Policy]:
        with self._sessions() as session:
            rows = session.scalars(sa.select(PolicyRow).order_by(PolicyRow.name))
            return [_policy(row) for row in rows]

    def put_policy(self, policy: Policy, actor: str) -> Policy:
        """Store `policy` as the next version of its name (1 when new); returns what was stored."""
        with self._sessions.begin() as session:
            first = policy.model_copy(update={"version": 1})
            if _insert_ignore(session, PolicyRow, self._policy_values(first, actor), "name"):
                return first
            # Bumping in the UPDATE itself locks the row, so two concurrent edits get two versions.
            version = session.execute(
                sa.update(PolicyRow)
                .where(PolicyRow.name == policy.name)
                .values(version=PolicyRow.version + 1)
                .returning(PolicyRow.version)
            ).scalar_one()
            stored = policy.model_copy(update={"version": version})
            session.execute(
                sa.update(PolicyRow)
                .where(PolicyRow.name == policy.name)
                .values(self._policy_values(stored, actor))
            )
            return stored

    def _policy_values(self, policy: Policy, actor: str) -> dict[str, Any]:
        return {
            "name": policy.name,
            "version": policy.version,
            "document": policy.model_dump(mode="json"),
            "updated_at": self._clock(),
            "updated_by": actor,
        }

    # ---- invoices and their timelines ----------------------------------------------------------

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
            "next_action": None,
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
        self, customer_id: str, limit: int = 200, offset: int = 0
    ) -> list[tuple[str, TimelineEvent]]:
        """Every journey of one debtor as one timeline, oldest first: (invoice_id, event)."""
        query = (
            sa.select(TimelineEventRow)
            .where(TimelineEventRow.customer_id == customer_id)
            .order_by(TimelineEventRow.at, TimelineEventRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self._sessions() as session:
            return [(row.invoice_id, _event(row)) for row in session.scalars(query)]

    def record(self, req: RecordRequest) -> None:
        """Write a journey's events, its latest snapshot and new tasks, in one transaction.

        Safe to repeat and to run concurrently: an event or task whose key is already stored is
        skipped, and a snapshot older than the one stored (a retried activity finishing late)
        does not overwrite it.
        """
        snapshot = req.snapshot
        with self._sessions.begin() as session:
            if req.invoice is not None:
                if req.invoice.invoice_id != snapshot.invoice_id:
                    raise ValueError(
                        f"invoice {req.invoice.invoice_id} recorded with the snapshot of "
                        f"{snapshot.invoice_id}"
                    )
                self._ensure_invoice(
                    session,
                    req.invoice,
                    req.fingerprint or "",
                    req.policy_name or req.invoice.policy,
                    req.policy_version or 1,
                )
            for event in req.events:
                values = {
                    "event_key": event.key,
                    "invoice_id": snapshot.invoice_id,
                    "customer_id": snapshot.customer_id,
                    "at": event.at,
                    "kind": event.kind,
                    "actor": event.actor,
                    "detail": event.model_dump(mode="json")["detail"],
                }
                _insert_ignore(session, TimelineEventRow, values, "event_key")
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
        values: dict[str, Any] = {
            "stage": snapshot.stage.value,
            "outcome": snapshot.outcome.value if snapshot.outcome else None,
            "outstanding": snapshot.outstanding,
            "next_action": (
                snapshot.next_action.model_dump(mode="json") if snapshot.next_action else None
            ),
            "updated_at": self._clock(),
        }
        # One conditional UPDATE, so the check and the write cannot be split by another writer.
        query = sa.update(InvoiceRow).where(InvoiceRow.invoice_id == snapshot.invoice_id)
        if as_of is not None:
            query = query.where(
                sa.or_(InvoiceRow.snapshot_at.is_(None), InvoiceRow.snapshot_at <= as_of)
            )
            values["snapshot_at"] = as_of
        if snapshot.outcome is None:
            query = query.where(InvoiceRow.outcome.is_(None))  # a closed journey stays closed
        session.execute(query.values(values).execution_options(synchronize_session=False))
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
        attempts never both believe they hold it.
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
                return Claim(message=_fresh_message(session, key), state="new")
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
                .values(claimed_by=holder, claimed_at=now, lease_until=now + lease)
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
    ) -> list[Receipt]:
        """Record what the provider answered for a claimed message.

        Returns the receipts that arrived before the provider's id was stored (applied now).
        """
        if status not in MESSAGE_STATUSES or status == "claimed":
            raise ValueError(f"a message finishes as sent, outbox or failed, not {status!r}")
        values: dict[str, Any] = {
            "status": status,
            "provider": provider,
            "provider_message_id": provider_message_id,
            "subject": subject,
            "body": body,
            "error": error,
        }
        if status in ("sent", "outbox"):
            # Finishing twice keeps the moment it was first handed over.
            values["sent_at"] = sa.func.coalesce(
                MessageRow.sent_at, sa.literal(self._clock(), UTCDateTime())
            )
        with self._sessions.begin() as session:
            updated = session.execute(
                sa.update(MessageRow)
                .where(MessageRow.key == key)
                .values(values)
                .returning(MessageRow.key)
                .execution_options(synchronize_session=False)
            )
            if updated.first() is None:
                raise LookupError(f"message {key!r} was never claimed")
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

    def add_event(self, invoice_id: str, event: TimelineEvent) -> None:
        with self._sessions.begin() as session:
            self._add_event(session, invoice_id, event)

    def _add_event(self, session: Session, invoice_id: str, event: TimelineEvent) -> None:
        invoice = session.get(InvoiceRow, invoice_id)
        if invoice is None:
            return
        values = {
            "event_key": event.key,
            "invoice_id": invoice_id,
            "customer_id": invoice.customer_id,
            "at": event.at,
            "kind": event.kind,
            "actor": event.actor,
            "detail": event.model_dump(mode="json")["detail"],
        }
        _insert_ignore(session, TimelineEventRow, values, "event_key")

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
            return session.get(OptOutRow, f"{channel}:{address}") is not None

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

    def list_messages(self, invoice_id: str | None = None, limit: int = 100) -> list[MessageView]:
        """Messages, newest first, optionally for one invoice."""
        query = sa.select(MessageRow)
        if invoice_id is not None:
            query = query.where(MessageRow.invoice_id == invoice_id)
        query = query.order_by(MessageRow.created_at.desc(), MessageRow.key.desc()).limit(limit)
        with self._sessions() as session:
            return [_message_view(row) for row in session.scalars(query)]

    # ---- providers -----------------------------------------------------------------------------

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
    if dialect == "postgresql":
        query: Any = postgresql.insert(entity).on_conflict_do_nothing(index_elements=[key])
    elif dialect == "sqlite":
        query = sqlite.insert(entity).on_conflict_do_nothing(index_elements=[key])
    else:
        raise NotImplementedError(f"the store supports PostgreSQL and SQLite, not {dialect}")
    # RETURNING answers a row only when one was inserted; rowcount is not reliable here.
    inserted = session.execute(query.values(values).returning(getattr(entity, key)))
    return inserted.first() is not None


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
