"""The read model: policies, invoices, their timelines, messages and the agents' tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Types are spelled out here rather than imported from db.models, so this migration keeps creating
the same tables whatever the models become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# db.models.Money: exact on PostgreSQL; text on SQLite, whose numbers are floats.
MONEY = sa.Numeric(20, 4).with_variant(sa.Text(), "sqlite")
# db.models.UTCDateTime: timestamptz on PostgreSQL; UTC wall time on SQLite.
MOMENT = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_policies")),
    )

    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("outstanding", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("next_action", JSON, nullable=True),
        sa.Column("policy_name", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("snapshot_at", MOMENT, nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoices")),
    )
    op.create_index(op.f("ix_invoices_customer_id"), "invoices", ["customer_id"])
    op.create_index(op.f("ix_invoices_stage"), "invoices", ["stage"])
    op.create_index(op.f("ix_invoices_created_at"), "invoices", ["created_at"])

    op.create_table(
        "timeline_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(300), nullable=False),
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("at", MOMENT, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_timeline_events_event_key")),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.invoice_id"],
            name=op.f("fk_timeline_events_invoice_id_invoices"),
        ),
    )
    op.create_index(op.f("ix_timeline_events_invoice_id"), "timeline_events", ["invoice_id"])
    op.create_index(op.f("ix_timeline_events_customer_id"), "timeline_events", ["customer_id"])

    op.create_table(
        "messages",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("tone", sa.String(16), nullable=False),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=True),
        sa.Column("provider_message_id", sa.String(200), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("sent_at", MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_messages")),
        sa.CheckConstraint(
            "status IN ('claimed', 'sent', 'outbox', 'failed')", name=op.f("ck_messages_status")
        ),
    )
    op.create_index(op.f("ix_messages_invoice_id"), "messages", ["invoice_id"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("task_key", sa.String(300), nullable=False),
        sa.Column("invoice_id", sa.String(200), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("completed_at", MOMENT, nullable=True),
        sa.Column("completed_by", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("task_key", name=op.f("uq_tasks_task_key")),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_tasks_status")),
    )
    op.create_index(op.f("ix_tasks_invoice_id"), "tasks", ["invoice_id"])
    op.create_index(op.f("ix_tasks_status"), "tasks", ["status"])


def downgrade() -> None:
    # Dropping a table drops its indexes; the timeline goes before the invoices it refers to.
    op.drop_table("tasks")
    op.drop_table("messages")
    op.drop_table("timeline_events")
    op.drop_table("invoices")
    op.drop_table("policies")
