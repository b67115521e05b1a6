"""A send that takes long keeps its claim and tells Temporal it is alive, until it ends.

The beats come from threads shared by every attempt in the process (`activities.leases`): this
checks that each attempt is still beaten for, and that one that has ended no longer is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

import activities.leases as leases
from activities.leases import Heartbeat
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    return Store(make_sessionmaker(make_engine(url)))


def claimed(store: Store, key: str, holder: str) -> datetime:
    claim = store.claim_message(
        key, "INV-1", "email", "overdue_1", "friendly", "en", "ap@example.com",
        holder=holder, lease=timedelta(seconds=1),
    )  # fmt: skip
    assert claim.state == "new" and claim.message.lease_until is not None
    return claim.message.lease_until


def lease_of(store: Store, key: str) -> datetime:
    message = store.get_message(key)
    assert message is not None and message.lease_until is not None
    return message.lease_until


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds  # the shared threads may be asleep on a longer beat
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_two_slow_sends_keep_their_leases_and_heartbeat_until_each_ends(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases, "BEAT_EVERY", 0.05)
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=30))
    first, second = claimed(store, "k:1", "slow-1"), claimed(store, "k:2", "slow-2")
    beats: dict[str, int] = {"one": 0, "two": 0}
    ended: dict[str, float] = {}

    def sending(name: str, key: str, holder: str, until: Callable[[], bool]) -> None:
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: beats.__setitem__(name, beats[name] + 1)

        def attempt() -> None:
            with Heartbeat(store) as beat:
                beat.hold(key, holder)
                assert wait_for(until), f"{name} was never beaten for"
            ended[name] = time.monotonic()

        env.run(attempt)

    # Attempt one runs until its lease is renewed and it has heartbeaten, then ends.
    sending("one", "k:1", "slow-1", lambda: lease_of(store, "k:1") > first and beats["one"] > 0)
    assert lease_of(store, "k:1") - first > timedelta(seconds=20)  # renewed to LEASE, not 1 s
    beats_after_end, lease_after_end = beats["one"], lease_of(store, "k:1")

    # Attempt two, after it: it is beaten for too, and attempt one, ended, no longer is.
    sending("two", "k:2", "slow-2", lambda: lease_of(store, "k:2") > second and beats["two"] > 2)
    assert beats["one"] == beats_after_end
    assert lease_of(store, "k:1") == lease_after_end
