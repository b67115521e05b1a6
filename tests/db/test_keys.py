"""The API key store on SQLite and PostgreSQL: keys stored hashed, one name once, revoked for good,
last use written at most once a minute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from db.keys import KeyProblem, KeyStore
from db.session import make_sessionmaker
from tests.db.conftest import empty_tables


@pytest.fixture
def keys(engine: Engine, clock: Callable[[], datetime]) -> KeyStore:
    empty_tables(engine)
    return KeyStore(make_sessionmaker(engine), clock=clock)


def test_a_key_authenticates_until_revoked_and_is_stored_only_hashed(
    keys: KeyStore, engine: Engine
) -> None:
    _, key = keys.create("billing-system", "integration")
    found = keys.authenticate(key)
    assert found is not None and (found.name, found.role) == ("billing-system", "integration")
    forged = key[:-1] + ("A" if not key.endswith("A") else "B")
    assert keys.authenticate(forged) is None
    assert keys.authenticate("dw_nonsense") is None
    with engine.connect() as connection:
        stored = [
            tuple(map(str, row)) for row in connection.execute(sa.text("SELECT * FROM api_keys"))
        ]
    # The secret is everything after `dw_<key id>_` (it may itself hold underscores).
    secret = key.removeprefix("dw_").split("_", 1)[1]
    assert len(secret) >= 32
    assert stored and not any(key in value or secret in value for value in stored[0])

    keys.revoke("billing-system")
    assert keys.authenticate(key) is None
    assert [k.revoked_at is not None for k in keys.list()] == [True]


def test_a_name_is_taken_once_and_problems_say_what_to_do(keys: KeyStore) -> None:
    keys.create("anna", "agent")
    with pytest.raises(KeyProblem, match="already a key named 'anna'"):
        keys.create("anna", "admin")
    with pytest.raises(KeyProblem, match="role must be one of integration, agent, admin"):
        keys.create("bert", "owner")
    with pytest.raises(KeyProblem, match="no key named 'carl'"):
        keys.revoke("carl")


def test_last_use_is_written_at_most_once_a_minute(engine: Engine) -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    store = KeyStore(make_sessionmaker(engine), clock=lambda: now[0])
    view, key = store.create(f"busy-{id(now)}", "agent")

    def last_used() -> datetime | None:
        return next(k for k in store.list() if k.key_id == view.key_id).last_used_at

    assert last_used() is None
    store.authenticate(key)
    assert last_used() == now[0]
    first = now[0]
    now[0] += timedelta(seconds=30)
    store.authenticate(key)
    assert last_used() == first  # no write for a use within the minute
    now[0] += timedelta(minutes=1)
    store.authenticate(key)
    assert last_used() == now[0]
