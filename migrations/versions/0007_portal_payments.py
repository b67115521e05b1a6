"""Payments debtors start on their page (through Mollie): which invoices each one pays.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
MONEY = sa.Numeric(20, 4).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "portal_payments",
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("allocation", JSON, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("ref", name="pk_portal_payments"),
        sa.UniqueConstraint("payment_id", name="uq_portal_payments_payment_id"),
    )
    op.create_index("ix_portal_payments_customer_id", "portal_payments", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_portal_payments_customer_id", "portal_payments")
    op.drop_table("portal_payments")
