"""Migrations build the tables the models describe, take them down again, and run from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.models import Base
from db.session import downgrade, make_engine, migrate

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "policies",
    "invoices",
    "timeline_events",
    "messages",
    "tasks",
    "api_keys",
    "webhook_events",
    "opt_outs",
    "early_receipts",
    "provider_states",
    "portal_links",
    "portal_payments",
    "reply_addresses",
    "policy_versions",
    "customer_notes",
    "console_sessions",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    migrate(database_url)
    assert _tables(database_url) == TABLES

    downgrade(database_url)
    assert _tables(database_url) == set()

    migrate(database_url)
    assert _tables(database_url) == TABLES


def test_migrations_match_the_models(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_migrate_from_any_directory(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    downgrade(database_url)
    migrate(database_url)
    assert _tables(database_url) == TABLES


def test_alembic_command_line_uses_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'cli.db'}"
    env = {**os.environ, "DUNWELL_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    assert _tables(url) == TABLES
