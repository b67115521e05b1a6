"""The debtors' personal links: only each token's hash is kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_links",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("revoked_at", MOMENT, nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_portal_links"),
        sa.UniqueConstraint(
            "customer_id", "generation", name="uq_portal_links_customer_id_generation"
        ),
    )
    op.create_index("ix_portal_links_customer_id", "portal_links", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_portal_links_customer_id", "portal_links")
    op.drop_table("portal_links")
