"""The credit controller's console: its sessions, customer notes, who took a task, every version
of each policy (to show the difference), and an index for every filter of its lists.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)
DOCUMENT = sa.JSON(none_as_null=True).with_variant(
    sa.dialects.postgresql.JSONB(none_as_null=True), "postgresql"
)
INDEXES = (
    ("ix_tasks_status_created_at_id", "tasks", ["status", "created_at", "id"]),
    ("ix_tasks_status_kind_created_at", "tasks", ["status", "kind", "created_at"]),
    ("ix_tasks_assigned_to_status", "tasks", ["assigned_to", "status"]),
    ("ix_invoices_stage_created_at", "invoices", ["stage", "created_at"]),
    ("ix_invoices_outcome_created_at", "invoices", ["outcome", "created_at"]),
    ("ix_invoices_due_on", "invoices", ["due_on"]),
    ("ix_invoices_outstanding", "invoices", ["outstanding"]),
)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("stored_key", sa.Boolean, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("last_seen", MOMENT, nullable=False),
        sa.Column("ended_at", MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_sessions"),
    )
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customer_notes"),
    )
    op.create_index("ix_customer_notes_customer_id", "customer_notes", ["customer_id"])
    op.create_table(
        "policy_versions",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", DOCUMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_policy_versions"),
    )
    # The versions before this one were not kept: the current one is where history starts.
    op.execute(
        "INSERT INTO policy_versions (name, version, document, updated_at, updated_by) "
        "SELECT name, version, document, updated_at, updated_by FROM policies"
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(200), nullable=True))
        batch.add_column(sa.Column("assigned_at", MOMENT, nullable=True))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    # Search by an invoice number's beginning (LIKE 'INV-12%'): PostgreSQL uses the primary key's
    # index for that only under the C collation, so this one compares bytes whatever the collation.
    op.create_index(
        "ix_invoices_invoice_id_prefix",
        "invoices",
        ["invoice_id"],
        postgresql_ops={"invoice_id": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_invoice_id_prefix", "invoices")
    for name, table, _ in INDEXES:
        op.drop_index(name, table)
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("assigned_at")
        batch.drop_column("assigned_to")
    op.drop_table("policy_versions")
    op.drop_index("ix_customer_notes_customer_id", "customer_notes")
    op.drop_table("customer_notes")
    op.drop_table("console_sessions")
