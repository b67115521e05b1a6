"""Provider webhooks: delivery receipts on messages, deduplicated events, central opt-outs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("event_key", sa.String(300), primary_key=True),
        sa.Column("received_at", MOMENT, nullable=False),
    )
    op.create_table(
        "opt_outs",
        sa.Column("opt_key", sa.String(350), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("delivery_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("delivery_at", MOMENT, nullable=True))
        batch.create_index("ix_messages_provider_message_id", ["provider_message_id"])
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("customer_phone", sa.String(40), nullable=True))
        batch.create_index("ix_invoices_customer_phone", ["customer_phone"])


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_index("ix_invoices_customer_phone")
        batch.drop_column("customer_phone")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_provider_message_id")
        batch.drop_column("delivery_at")
        batch.drop_column("delivery_status")
    op.drop_table("opt_outs")
    op.drop_table("webhook_events")
