"""Policies as the API reads them to start journeys: cached briefly, so a start costs no query.

Each start snapshots its policy; reading it from the database on every start was a fifth of the
start path's cost. An edit through this process is seen at once; an edit made through another API
process is seen within `ttl` seconds.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from db.store import Store
from workflows.policy import Policy


class PolicyCache:
    def __init__(self, store: Store, ttl: float = 5.0) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Policy | None]] = {}

    async def get(self, name: str) -> Policy | None:
        now = time.monotonic()
        entry = self._entries.get(name)
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        policy = await run_in_threadpool(self._store.get_policy, name)
        self._entries[name] = (now, policy)
        return policy

    async def put(self, policy: Policy, actor: str) -> Policy:
        stored = await run_in_threadpool(self._store.put_policy, policy, actor)
        self._entries[stored.name] = (time.monotonic(), stored)
        return stored
