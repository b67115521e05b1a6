"""A message's claim is a lease: who holds it, the heartbeat that renews it while the attempt
sends, and how long to wait for another holder's lease to run out (see `activities.messaging`)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity

from db.store import Store

LEASE = timedelta(seconds=10)
"""How long a claim outlives its holder's last renewal."""
BEAT_EVERY = 3.0
"""Seconds between heartbeats (and lease renewals) while an attempt runs."""
log = logging.getLogger("dunwell.messaging")
T = TypeVar("T")


class Heartbeat:
    """While an attempt sends: heartbeats to Temporal, and renews the message's lease.

    The work is done by `_Beats`, two threads shared by every attempt in the process, so that an
    attempt costs an entry in a set rather than a thread of its own (most sends are over long
    before the first beat is due).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: tuple[str, str] | None = None
        self.context: contextvars.Context | None = None

    def __enter__(self) -> Heartbeat:
        # The activity's context: `activity.heartbeat()` finds its attempt through it.
        self.context = contextvars.copy_context()
        _BEATS.join(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _BEATS.leave(self)

    def hold(self, key: str, holder: str) -> None:
        self.held = (key, holder)


class _Beats:
    """Every `BEAT_EVERY` seconds, one thread heartbeats each running attempt and another renews
    each held lease. Apart, so that a database that hangs never delays a heartbeat: Temporal
    would time the attempt out and start another while this one may still be sending."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: set[Heartbeat] = set()
        self._threads: list[threading.Thread] = []

    def join(self, attempt: Heartbeat) -> None:
        with self._lock:
            self._attempts.add(attempt)
            if not self._threads:
                for name, work in (("heartbeats", _heartbeat), ("leases", _renew)):
                    thread = threading.Thread(
                        target=self._every_beat, args=(work,), name=f"dunwell-{name}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)

    def leave(self, attempt: Heartbeat) -> None:
        with self._lock:
            self._attempts.discard(attempt)

    def _every_beat(self, work: Callable[[Heartbeat], None]) -> None:
        while True:
            time.sleep(BEAT_EVERY)
            with self._lock:
                attempts = list(self._attempts)
            for attempt in attempts:
                work(attempt)


def _heartbeat(attempt: Heartbeat) -> None:
    if attempt.context is None:
        return
    try:
        attempt.context.run(activity.heartbeat)
    except RuntimeError:
        pass  # not running under Temporal (a direct call in a test), or that attempt just ended


def _renew(attempt: Heartbeat) -> None:
    if attempt.held is None:
        return
    try:
        attempt.store.renew_claim(*attempt.held, LEASE)
    except SQLAlchemyError as exc:
        log.warning("could not renew the claim on %s: %s", attempt.held[0], exc)


_BEATS = _Beats()


def lease_wait(moment: datetime | None) -> timedelta:
    """How long until `moment` (a lease's end), at least a second and at most a lease."""
    if moment is None:
        return timedelta(seconds=1)
    left = moment - datetime.now(UTC) + timedelta(milliseconds=500)
    return min(max(left, timedelta(seconds=1)), LEASE)


def this_attempt() -> str:
    """This attempt: workflow run, activity and attempt number."""
    try:
        info = activity.info()
    except RuntimeError:
        return f"direct:{threading.get_ident()}"
    return f"{info.workflow_run_id}:{info.activity_id}:{info.attempt}"


def retrying(call: Callable[[], T], until: float) -> T:
    """`call()`, retried on database errors with backoff until the monotonic time `until`."""
    delay = 0.2
    while True:
        try:
            return call()
        except SQLAlchemyError as exc:
            if time.monotonic() + delay > until:
                raise
            log.warning("retrying a database write in %.1f s: %s", delay, type(exc).__name__)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
