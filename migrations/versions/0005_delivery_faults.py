"""Delivery under faults: a message's claim says who holds it and until when; receipts that
arrive before the provider id is stored wait for it; what workers learned of each provider.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("claimed_at", MOMENT, nullable=True))
        batch.add_column(sa.Column("lease_until", MOMENT, nullable=True))
    op.create_table(
        "early_receipts",
        sa.Column("event_key", sa.String(300), primary_key=True),
        sa.Column("provider_message_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("bounce", sa.Boolean, nullable=False),
        sa.Column("received_at", MOMENT, nullable=False),
    )
    op.create_index(
        "ix_early_receipts_provider_message_id", "early_receipts", ["provider_message_id"]
    )
    op.create_table(
        "provider_states",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("since", MOMENT, nullable=False),
        sa.Column("checked_at", MOMENT, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_states")
    op.drop_index("ix_early_receipts_provider_message_id", "early_receipts")
    op.drop_table("early_receipts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
