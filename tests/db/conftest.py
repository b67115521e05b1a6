"""Database fixtures: every test module gets a fresh SQLite file and a fresh PostgreSQL database.

PostgreSQL tests create `dunwell_test_<random>` through the server named by
`DUNWELL_TEST_POSTGRES_URL` (default: the local server's `test` database) and drop it afterwards,
so runs never see each other's rows. They are skipped, with the reason shown, when no server
answers.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db.models import Base
from db.session import make_engine, make_sessionmaker, migrate, normalize_url
from db.store import Store

POSTGRES_URL = os.environ.get(
    "DUNWELL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLOCK_START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database, for this test module only."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'dunwell.db'}"
        return
    admin_url = normalize_url(POSTGRES_URL)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"dunwell_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {admin_url.render_as_string()} is not reachable: {error}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the module's database, migrated to the newest revision."""
    migrate(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock that moves one second each time it is read, so creation order is never a tie."""
    ticks = itertools.count()
    return lambda: CLOCK_START + timedelta(seconds=next(ticks))


@pytest.fixture
def store(engine: Engine, clock: Callable[[], datetime]) -> Store:
    """A store on empty tables."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    return Store(make_sessionmaker(engine), clock=clock)
