"""Database fixtures: every test module gets a fresh SQLite file and a fresh PostgreSQL database.

PostgreSQL tests create `dunwell_test_<random>` through the server named by
`DUNWELL_TEST_POSTGRES_URL` (default: the local server's `test` database) and drop it afterwards,
so runs never see each other's rows (`tests.postgres`: skipped when no server answers, failed
under `CI=true`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from db.models import Base
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from tests.postgres import postgres_database

CLOCK_START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database, for this test module only."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'dunwell.db'}"
        return
    with postgres_database() as url:
        yield url


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
    empty_tables(engine)
    return Store(make_sessionmaker(engine), clock=clock)


def empty_tables(engine: Engine) -> None:
    """Delete every row, children first, so each test starts from nothing."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
