"""A message's claim is a lease: who holds it, the heartbeat that renews it while the attempt
sends, and how long to wait for another holder's lease to run out (see `activities.messaging`)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity

from db.store import Store

LEASE = timedelta(seconds=10)
"""How long a claim outlives its holder's last renewal."""
BEAT_EVERY = 3.0
"""Seconds between heartbeats (and lease renewals) while an attempt runs."""
POOL = 8
"""Heartbeats (and, apart, renewals) made at the same time, for different attempts."""
LEAVE_WAIT = 2.0
"""Seconds an ending attempt waits for its heartbeat and its renewal under way."""
log = logging.getLogger("dunwell.messaging")
T = TypeVar("T")


class Heartbeat:
    """While an attempt sends: heartbeats to Temporal, and renews the message's lease.

    `_Beats` does it for every attempt in the process, so that an attempt costs an entry in a set
    rather than a thread of its own (most sends are over long before the first beat is due).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.held: tuple[str, str] | None = None
        # The context of the activity that makes it: `activity.heartbeat()` finds its attempt
        # through it.
        self.context = contextvars.copy_context()
        self.beating: Future[None] | None = None
        self.renewing: Future[None] | None = None

    def __enter__(self) -> Heartbeat:
        _BEATS.join(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _BEATS.leave(self)

    def hold(self, key: str, holder: str) -> None:
        self.held = (key, holder)


class _Beats:
    """Every `BEAT_EVERY` seconds, one thread asks for a heartbeat of each running attempt and a
    renewal of each held lease. The calls run on two small pools, heartbeats apart from renewals:
    a database that hangs never delays a heartbeat (Temporal would time the attempt out and start
    another while this one may still be sending), and one attempt's slow call does not hold up
    the others (up to `POOL` slow at once). An attempt whose last call has not finished is left
    out of that round."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: set[Heartbeat] = set()
        self._clock: threading.Thread | None = None
        self._heartbeats = ThreadPoolExecutor(POOL, thread_name_prefix="dunwell-heartbeat")
        self._renewals = ThreadPoolExecutor(POOL, thread_name_prefix="dunwell-lease")

    def join(self, attempt: Heartbeat) -> None:
        with self._lock:
            self._attempts.add(attempt)
            if self._clock is None or not self._clock.is_alive():
                self._clock = threading.Thread(
                    target=self._every_beat, name="dunwell-beats", daemon=True
                )
                self._clock.start()

    def leave(self, attempt: Heartbeat) -> None:
        with self._lock:
            self._attempts.discard(attempt)
            under_way = [f for f in (attempt.beating, attempt.renewing) if f is not None]
        # A beat under way lands before the attempt ends, not after it.
        wait(under_way, timeout=LEAVE_WAIT)

    def _every_beat(self) -> None:
        while threading.main_thread().is_alive():  # after it, the pools take nothing new
            time.sleep(BEAT_EVERY)
            with self._lock:
                for attempt in self._attempts:
                    try:
                        self._beat(attempt)
                    except RuntimeError as exc:  # no thread to be had: the next round tries again
                        log.warning("could not beat for a send: %s", exc)

    def _beat(self, attempt: Heartbeat) -> None:
        if attempt.beating is None or attempt.beating.done():
            attempt.beating = self._heartbeats.submit(_heartbeat, attempt)
        if attempt.held is not None and (attempt.renewing is None or attempt.renewing.done()):
            attempt.renewing = self._renewals.submit(_renew, attempt)


def _heartbeat(attempt: Heartbeat) -> None:
    try:
        attempt.context.run(_heartbeat_here)
    except Exception as exc:  # e.g. the worker's event loop did not take it in time: next round
        log.warning("a heartbeat failed: %s: %s", type(exc).__name__, exc)


def _heartbeat_here() -> None:
    """In the attempt's context: a heartbeat, unless not running under Temporal (a direct call
    in a test)."""
    if activity.in_activity():
        activity.heartbeat()


def _renew(attempt: Heartbeat) -> None:
    if attempt.held is None:
        return
    try:
        attempt.store.renew_claim(*attempt.held, LEASE)
    except Exception as exc:
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
