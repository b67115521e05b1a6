"""The Temporal worker: runs journeys and their activities, wired to the database and providers."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import Sender, build_senders
from activities.journal import JournalActivities
from activities.messaging import MessagingActivities
from db.session import make_engine, make_sessionmaker
from db.store import Store
from settings import Settings, get_settings
from temporal_client import connect, keyring_from
from workflows.journey import InvoiceJourney
from workflows.plan import InstalmentPlan
from workflows.policy import Channel
from workflows.sandbox import workflow_runner

log = logging.getLogger("dunwell.worker")


def build_worker(
    client: Client,
    store: Store,
    senders: dict[Channel, Sender],
    task_queue: str,
    executor: ThreadPoolExecutor,
) -> Worker:
    """A worker for the journey workflow; activities run in `executor` (they block on I/O)."""
    journal = JournalActivities(store)
    messaging = MessagingActivities(senders, store)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[InvoiceJourney, InstalmentPlan],
        activities=[journal.record_journey, messaging.deliver_message],
        workflow_runner=workflow_runner(),
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


async def run_worker(settings: Settings | None = None) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM)."""
    settings = settings or get_settings()
    senders = build_senders(settings)  # fails at start on a half-configured provider
    store = Store(make_sessionmaker(make_engine(settings.database)))
    keyring = keyring_from(settings.encryption_key_value)  # no keys, no start
    client = await connect(settings.temporal_target, settings.temporal_namespace, keyring)
    with ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity") as executor:
        worker = build_worker(client, store, senders, settings.task_queue, executor)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            log.info("worker polling %s on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()
        log.info("worker stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker())
