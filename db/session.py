"""Connecting to the read model: engines, sessions, migrations, and which errors are worth a retry.

SQLite (a file, for `dunwell dev`) and PostgreSQL (through psycopg 3) are supported. Everything here
is synchronous: activities run in a thread pool and the API calls the store in its threadpool.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
"""Alembic's script directory, found through the installed package: any working directory works."""

SQLITE_BUSY_TIMEOUT_SECONDS = 30
"""How long a SQLite writer waits for another to finish before `database is locked`."""


def normalize_url(url: str | URL) -> URL:
    """The URL with its driver made explicit: `postgresql://` means psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL) -> Engine:
    """An engine for `url`; a SQLite file's directory is created when missing."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        # The worker runs up to 32 activities at once, each holding one connection while it writes.
        # Parameters stay out of errors and logs: they hold debtors' names, emails and numbers.
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=30,
            hide_parameters=True,
            connect_args={"connect_timeout": 5},
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    }
    if in_memory:
        # One shared connection, or every thread would see its own empty database.
        options["poolclass"] = StaticPool
    elif not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, hide_parameters=True, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # Readers never block the writer; the API reads while activities write.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        finally:
            cursor.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose loaded objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (the newest by default)."""
    from alembic import command

    _run_alembic(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str | URL, revision: str = "base") -> None:
    """Downgrade the database at `url` to `revision` (empty by default)."""
    from alembic import command

    _run_alembic(url, lambda config: command.downgrade(config, revision))


def _run_alembic(url: str | URL, run: Callable[[Any], None]) -> None:
    # Imported here: the worker and the API never migrate, and alembic is half a second to load.
    from alembic.config import Config

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            # migrations/env.py uses this connection instead of building its own engine.
            config.attributes["connection"] = connection
            run(config)
    finally:
        engine.dispose()


_RETRYABLE_SQLSTATES = {
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now
    "53300",  # too_many_connections
}
_RETRYABLE_SQLSTATE_CLASSES = ("08",)  # connection exceptions

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_retryable_db_error(error: BaseException) -> bool:
    """True when trying again later may succeed: lost connections, deadlocks, locks, failovers.

    Integrity, data and programming errors are False: the same statement will fail the same way.
    """
    if isinstance(error, exc.IntegrityError | exc.DataError | exc.ProgrammingError):
        return False
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return _retryable_driver_error(error.orig)
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError):
        return True  # no connection free in the pool, or one that died
    return _retryable_driver_error(error)


def _retryable_driver_error(error: BaseException | None) -> bool:
    if error is None:
        return False
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(busy in message for busy in _SQLITE_BUSY)
    if isinstance(error, psycopg.Error):
        sqlstate = error.sqlstate
        if sqlstate is None:
            # No SQLSTATE: the server could not be reached or the connection broke.
            return isinstance(error, psycopg.OperationalError)
        return sqlstate in _RETRYABLE_SQLSTATES or sqlstate.startswith(_RETRYABLE_SQLSTATE_CLASSES)
    return False


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database `<prefix>_<random>` on the server of `server_url`: its URL,
    dropped (with any connection left) afterwards. Raises OperationalError if the server is away."""
    admin_url = normalize_url(server_url)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except BaseException:
        admin.dispose()
        raise
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
