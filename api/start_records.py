"""Journeys' start records, written in batches: the API records each start before it answers,
and the POSTs that wait at the same moment share one thread hop and one transaction.

Under a burst one write per request costs the API process a thread hop, a session and a commit
each, and SQLite's writers queue behind one another; a batch costs that once. A request waits only
for the batch it joined (the next one starts as soon as the last is written). A batch that fails
is written again one record at a time, so each request gets its own answer: a database that is
down fails them all, a record that cannot be written fails only its own request.
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.concurrency import run_in_threadpool

from db.store import Store
from workflows.models import RecordRequest

MOST = 256
"""Records per transaction at most."""


class _Batches:
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store, self.loop = store, loop
        self.waiting: list[tuple[RecordRequest, asyncio.Future[None]]] = []
        self.writing = False

    async def write(self, record: RecordRequest) -> None:
        done: asyncio.Future[None] = self.loop.create_future()
        self.waiting.append((record, done))
        if not self.writing:
            self.writing = True
            self.loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:MOST], self.waiting[MOST:]
                await self._write(batch)
        finally:
            self.writing = False

    async def _write(self, batch: list[tuple[RecordRequest, asyncio.Future[None]]]) -> None:
        try:
            await run_in_threadpool(self.store.record_starts, [record for record, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for one in batch:  # each its own answer
                await self._write([one])
            return
        for _, done in batch:
            _settle(done, None)


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # its request was cancelled (the client went away)
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


_BATCHES: weakref.WeakKeyDictionary[Store, _Batches] = weakref.WeakKeyDictionary()


async def record_start(store: Store, record: RecordRequest) -> None:
    """Write `record` (`Store.record_starts`) in the next batch; raises what writing it raised."""
    loop = asyncio.get_running_loop()
    batches = _BATCHES.get(store)
    if batches is None or batches.loop is not loop:
        batches = _BATCHES[store] = _Batches(store, loop)
    await batches.write(record)
