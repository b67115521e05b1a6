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
    """Heartbeats to Temporal, and renews the message's lease, from a thread while we send."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._held: tuple[str, str] | None = None
        self._stop = threading.Event()
        self._context = contextvars.copy_context()
        self._thread = threading.Thread(target=self._context.run, args=(self._run,), daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=BEAT_EVERY + 1)

    def hold(self, key: str, holder: str) -> None:
        self._held = (key, holder)

    def _run(self) -> None:
        while not self._stop.wait(BEAT_EVERY):
            try:
                activity.heartbeat()
            except RuntimeError:
                pass  # not running under Temporal (a direct call in a test)
            if self._held is not None:
                try:
                    self._store.renew_claim(*self._held, LEASE)
                except SQLAlchemyError as exc:
                    log.warning("could not renew the claim on %s: %s", self._held[0], exc)


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
