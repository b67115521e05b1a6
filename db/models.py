"""The read model's tables: policies, invoices, their timelines, messages and the agents' tasks.

Temporal holds the truth about a running journey; these tables are what the API lists and searches,
written by the journey's activities. Money is stored exactly (never as a float) and every timestamp
is UTC and comes back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import MONEY_SCALE, Money, UTCDateTime, json_type, utcnow

__all__ = ["MONEY_SCALE", "utcnow"]


class Base(DeclarativeBase):
    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class PolicyRow(Base):
    """An escalation policy; `version` goes up by one with every edit."""

    __tablename__ = "policies"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer)
    document: Mapped[dict[str, Any]] = mapped_column(json_type())
    """`Policy.model_dump(mode="json")`."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200))


class InvoiceRow(Base):
    """One invoice and the latest state of its journey."""

    __tablename__ = "invoices"
    # The console's filters: stage, open or closed, overdue, largest first.
    __table_args__ = (
        sa.Index("ix_invoices_stage_created_at", "stage", "created_at"),
        sa.Index("ix_invoices_outcome_created_at", "outcome", "created_at"),
        sa.Index("ix_invoices_due_on", "due_on"),
        sa.Index("ix_invoices_outstanding", "outstanding"),
        # Search by an invoice number's beginning, whatever the database's collation.
        sa.Index(
            "ix_invoices_invoice_id_prefix",
            "invoice_id",
            postgresql_ops={"invoice_id": "varchar_pattern_ops"},
        ),
    )

    invoice_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    stage: Mapped[str] = mapped_column(sa.String(32), index=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    amount: Mapped[Decimal] = mapped_column(Money())
    outstanding: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(sa.String(3))
    due_on: Mapped[date] = mapped_column(sa.Date)
    customer_phone: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    next_action: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    plan: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    """The latest view of the invoice's instalment plan (the newest plan, running or ended)."""
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    policy_version: Mapped[int] = mapped_column(sa.Integer)
    fingerprint: Mapped[str] = mapped_column(sa.String(128))
    """Hash of the request that started the journey."""
    document: Mapped[dict[str, Any]] = mapped_column(json_type())
    """`Invoice.model_dump(mode="json")`: the invoice as the billing system sent it."""
    snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """Journey time of the snapshot last written, so a late, older one never overwrites it."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TimelineEventRow(Base):
    """One thing that happened in a journey; `event_key` makes recording it idempotent."""

    __tablename__ = "timeline_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("invoices.invoice_id"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(sa.String(64))
    actor: Mapped[str] = mapped_column(sa.String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())


MESSAGE_STATUSES = ("claimed", "sent", "outbox", "failed")
TASK_STATUSES = ("open", "done")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MessageRow(Base):
    """One message to a debtor on one channel, claimed by its key before a provider is called."""

    __tablename__ = "messages"
    __table_args__ = (sa.CheckConstraint(_one_of("status", MESSAGE_STATUSES), name="status"),)

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    """`invoice-X:step:channel`."""
    invoice_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    template: Mapped[str] = mapped_column(sa.String(64))
    tone: Mapped[str] = mapped_column(sa.String(16))
    locale: Mapped[str] = mapped_column(sa.String(16))
    recipient: Mapped[str] = mapped_column(sa.String(320))
    status: Mapped[str] = mapped_column(sa.String(16))
    provider: Mapped[str | None] = mapped_column(sa.String(32))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    subject: Mapped[str | None] = mapped_column(sa.Text)
    body: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_status: Mapped[str | None] = mapped_column(sa.String(16))
    """What the provider reported later: delivered, opened, bounced, dropped, spam_report..."""
    delivery_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    """The delivery attempt holding the claim (`run:activity:attempt`)."""
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When that attempt took the claim."""
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The claim's holder renews this while it sends; past it, another attempt may take over."""


class EarlyReceiptRow(Base):
    """A provider's receipt that came before we stored the message's provider id (a Twilio
    status callback racing our own 'mark sent'): applied when the id is stored."""

    __tablename__ = "early_receipts"

    event_key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    provider_message_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(300))
    bounce: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    """The number cannot get texts: the journey must hear of it (`message_bounced`)."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderStateRow(Base):
    """What the workers last learned of a provider's configuration (`/readyz` reports it)."""

    __tablename__ = "provider_states"

    provider: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    """`ok` or `misconfigured`."""
    detail: Mapped[str] = mapped_column(sa.Text)
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEventRow(Base):
    """Provider events already handled (`sendgrid:<sg_event_id>`, `twilio:<token>`)."""

    __tablename__ = "webhook_events"

    event_key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OptOutRow(Base):
    """A debtor's address or number that no journey may use on a channel (SMS STOP, spam report)."""

    __tablename__ = "opt_outs"

    opt_key: Mapped[str] = mapped_column(sa.String(350), primary_key=True)
    """`{channel}:{address}`"""
    address: Mapped[str] = mapped_column(sa.String(320))
    channel: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TaskRow(Base):
    """A piece of work for an agent: a call to make, a dispute to review."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
        # The work list: open tasks oldest first, by kind, and those an agent took.
        sa.Index("ix_tasks_status_created_at_id", "status", "created_at", "id"),
        sa.Index("ix_tasks_status_kind_created_at", "status", "kind", "created_at"),
        sa.Index("ix_tasks_assigned_to_status", "assigned_to", "status"),
    )

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    task_key: Mapped[str] = mapped_column(sa.String(300), unique=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.Text)
    assigned_to: Mapped[str | None] = mapped_column(sa.String(200))
    """The agent who took it (the actor name of their key), so two do not work it at once."""
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKeyRow(Base):
    """An API key created with `dunwell keys create`: only its hash is kept."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PortalLinkRow(Base):
    """A debtor's personal link: one generation per customer, only the token's hash is kept.

    The token itself is derived from a server secret, the customer and the generation, so every
    message can carry it without storing it; revoking a link moves the customer to a new one.
    """

    __tablename__ = "portal_links"
    __table_args__ = (sa.UniqueConstraint("customer_id", "generation"),)

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    generation: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(sa.String(200))


class PortalPaymentRow(Base):
    """A payment a debtor started on their page: which invoices it pays, and how much of each.

    `ref` is ours (in the return address); `payment_id` is Mollie's. The status here is only what
    we last fetched: Mollie's answer is the truth, and is always asked again."""

    __tablename__ = "portal_payments"

    ref: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    payment_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    allocation: Mapped[dict[str, Any]] = mapped_column(json_type())
    """`{invoice_id: amount}`, oldest invoice first."""
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReplyAddressRow(Base):
    """A journey's reply address (`reply+<token>@<inbound domain>`): the invoice a reply is
    about."""

    __tablename__ = "reply_addresses"

    token: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(sa.String(200))
    customer_id: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PolicyVersionRow(Base):
    """Every version of each policy as it was stored, to read an old one and compare two."""

    __tablename__ = "policy_versions"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(json_type())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(200))


class CustomerNoteRow(Base):
    """A credit controller's free-text note on a customer."""

    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(sa.String(200), index=True)
    author: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsoleSessionRow(Base):
    """A signed-in console session: only the hash of its cookie's id is kept."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    actor: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    stored_key: Mapped[bool] = mapped_column(sa.Boolean)
    """Signed in with a key from `dunwell keys create` (revoking it ends the session)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
