"""Engines that work from threads, and telling a passing database hiccup from a real error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from db.session import is_retryable_db_error, make_engine


def test_sqlite_engine_creates_its_directory_and_enforces_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "home" / "state" / "dunwell.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert path.exists()
    finally:
        engine.dispose()


def test_postgresql_urls_use_psycopg() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        make_engine("mysql://root@localhost/dunwell")


def test_a_locked_sqlite_database_is_worth_retrying(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    impatient = sa.create_engine(url, connect_args={"timeout": 0})
    try:
        with pytest.raises(sa.exc.OperationalError) as caught, impatient.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert is_retryable_db_error(caught.value)
    finally:
        impatient.dispose()
        holder.close()


def test_an_unreachable_server_is_worth_retrying() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/test")
    try:
        with pytest.raises(sa.exc.OperationalError) as caught:
            engine.connect()
        assert is_retryable_db_error(caught.value)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("driver_error", "retryable"),
    [
        (psycopg.errors.SerializationFailure("could not serialize access"), True),
        (psycopg.errors.DeadlockDetected("deadlock detected"), True),
        (psycopg.errors.AdminShutdown("terminating connection"), True),
        (psycopg.errors.DiskFull("no space left on device"), False),
    ],
)
def test_postgresql_errors_are_classified(driver_error: Exception, retryable: bool) -> None:
    error = sa.exc.OperationalError("UPDATE invoices ...", {}, driver_error)
    assert is_retryable_db_error(error) is retryable


def test_a_broken_rule_is_not_worth_retrying(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'rules.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert not is_retryable_db_error(caught.value)
        assert not is_retryable_db_error(ValueError("not a database error"))
    finally:
        engine.dispose()
