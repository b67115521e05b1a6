"""A throwaway PostgreSQL database on the machine's server, for one test module or one test.

`DUNWELL_TEST_POSTGRES_URL` names the server (default: the local server's `test` database). When
no server answers, a test is skipped with the reason shown, except under `CI=true`, where
PostgreSQL is always there and a skip would silently hide half the store tests: there it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from db.session import normalize_url

POSTGRES_URL = os.environ.get(
    "DUNWELL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_database(prefix: str = "dunwell_test") -> Iterator[str]:
    """Create `<prefix>_<random>`, yield its URL, drop it (with any connection left) afterwards."""
    admin_url = normalize_url(POSTGRES_URL)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        where = admin_url.render_as_string()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {where} is not reachable, and CI must test it: {error}")
        pytest.skip(f"PostgreSQL at {where} is not reachable: {error}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
