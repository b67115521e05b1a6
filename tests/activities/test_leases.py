"""A send that takes long keeps its claim and tells Temporal it is alive, until it ends.

The beats are made by threads shared by every attempt in the process (`activities.leases`): these
check that each attempt is beaten for while others are, that one that has ended no longer is, and
that a heartbeat that fails stops nothing.
"""

from __future__ import annotations

import threading
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
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(leases, "BEAT_EVERY", 0.05)
    monkeypatch.setattr(leases, "LEASE", timedelta(seconds=30))
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    return Store(make_sessionmaker(make_engine(url)))


def claimed(store: Store, key: str) -> datetime:
    claim = store.claim_message(
        key, "INV-1", "email", "overdue_1", "friendly", "en", "ap@example.com",
        holder=key, lease=timedelta(seconds=1),
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


class Attempt:
    """A delivery attempt under Temporal's activity environment, holding the claim on `key`
    until `until()` holds; counts its heartbeats."""

    def __init__(self, store: Store, key: str, fail_first: bool = False) -> None:
        self.store, self.key, self.beats, self.fail_first = store, key, 0, fail_first
        self.ended = False

    def on_heartbeat(self, *details: object) -> None:
        self.beats += 1
        if self.fail_first and self.beats == 1:
            raise TimeoutError("the worker's event loop did not take the heartbeat in time")

    def run(self, until: Callable[[], bool]) -> None:
        env = ActivityEnvironment()
        env.on_heartbeat = self.on_heartbeat

        def attempt() -> None:
            with Heartbeat(self.store) as beat:
                beat.hold(self.key, self.key)
                assert wait_for(until), f"{self.key} was never beaten for"
            self.ended = True

        env.run(attempt)


def test_two_slow_sends_at_once_keep_their_leases_and_heartbeat_until_each_ends(
    store: Store,
) -> None:
    first, second = claimed(store, "k:1"), claimed(store, "k:2")
    one, two = Attempt(store, "k:1"), Attempt(store, "k:2")
    one_ended_at: list[int] = []  # attempt two's beats when attempt one ended

    def beaten(attempt: Attempt, lease: datetime) -> bool:
        return lease_of(store, attempt.key) > lease and attempt.beats > 0

    # Attempt two runs beside attempt one, and two more beats after attempt one has ended.
    running = threading.Thread(
        target=two.run, args=(lambda: bool(one_ended_at) and two.beats >= one_ended_at[0] + 2,)
    )
    running.start()
    one.run(lambda: beaten(one, first) and beaten(two, second))
    one_ended_at.append(two.beats)
    beats_after_end, lease_after_end = one.beats, lease_of(store, "k:1")
    running.join(timeout=15)

    assert two.ended  # beaten for after attempt one ended
    assert lease_of(store, "k:1") - first > timedelta(seconds=20)  # renewed to LEASE, not 1 s
    assert lease_of(store, "k:2") - second > timedelta(seconds=20)
    assert one.beats == beats_after_end  # attempt one, ended, is beaten for no more
    assert lease_of(store, "k:1") == lease_after_end


def test_a_heartbeat_that_fails_stops_no_later_beat(store: Store) -> None:
    claimed(store, "k:1")
    failing = Attempt(store, "k:1", fail_first=True)
    failing.run(lambda: failing.beats >= 3)  # its own beats go on after the first failed

    claimed(store, "k:2")
    later = Attempt(store, "k:2")
    later.run(lambda: later.beats >= 2)
