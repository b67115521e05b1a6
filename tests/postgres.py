"""A throwaway PostgreSQL database on the machine's server, for one test module or one test.

`DUNWELL_TEST_POSTGRES_URL` names the server (default: the local server's `test` database). When
no server answers, a test is skipped with the reason shown, except under `CI=true`, where
PostgreSQL is always there and a skip would silently hide half the store tests: there it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa

from db.session import normalize_url, scratch_database

POSTGRES_URL = os.environ.get(
    "DUNWELL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_database(prefix: str = "dunwell_test") -> Iterator[str]:
    """Create `<prefix>_<random>`, yield its URL, drop it (with any connection left) afterwards."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(POSTGRES_URL, prefix))
        except sa.exc.OperationalError as error:
            where = normalize_url(POSTGRES_URL).render_as_string()
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL at {where} is not reachable, and CI must test it: {error}")
            pytest.skip(f"PostgreSQL at {where} is not reachable: {error}")
        yield url
