"""The Temporal worker: runs journeys and their activities, wired to the database and providers."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import Sender, build_senders
from activities.journal import JournalActivities
from activities.messaging import MessagingActivities
from activities.rendering import Creditor
from db.session import make_engine, make_sessionmaker
from db.store import Store
from portal_links import links_from
from settings import Settings, get_settings
from temporal_client import connect, keyring_from
from workflows.journey import InvoiceJourney
from workflows.messaging import provider_queue
from workflows.plan import InstalmentPlan
from workflows.policy import Channel
from workflows.sandbox import workflow_runner

log = logging.getLogger("dunwell.worker")

WORKER_THREADS = 48
"""Activity threads of `dunwell worker`: a third each for records, SendGrid and Twilio."""


def build_workers(
    client: Client,
    store: Store,
    senders: dict[Channel, Sender],
    task_queue: str,
    executor: ThreadPoolExecutor,
    settings: Settings | None = None,
) -> list[Worker]:
    """The journey worker, and one delivery worker per provider on that provider's queue.

    Each provider's queue carries Temporal's `max_task_queue_activities_per_second`, which the
    server enforces across every worker polling it: run as many workers as you like, the
    provider sees at most its rate. Activities run in `executor` (they block on I/O).
    """
    settings = settings or Settings()
    journal = JournalActivities(store)
    messaging = MessagingActivities(
        senders,
        store,
        settings.provider_timeout_s,
        links=links_from(settings, store),
        creditor=Creditor.from_settings(settings),
    )
    slots = max(1, executor._max_workers // 3)  # records, SendGrid, Twilio: a third each
    journeys = Worker(
        client,
        task_queue=task_queue,
        workflows=[InvoiceJourney, InstalmentPlan],
        # deliver_message here too: journeys started before the per-provider queues send on it.
        activities=[journal.record_journey, messaging.deliver_message],
        workflow_runner=workflow_runner(),
        activity_executor=executor,
        max_concurrent_activities=slots,
        # The first record of a journey not started through the API is a local activity
        # (workflows.recording): a few at a time.
        max_concurrent_local_activities=max(1, slots // 4),
        max_cached_workflows=settings.worker_cached_journeys,
    )
    rates = {"sendgrid": settings.sendgrid_rate_per_s, "twilio": settings.twilio_rate_per_s}
    delivery = [
        Worker(
            client,
            task_queue=provider_queue(task_queue, channel),
            activities=[messaging.deliver_message],
            activity_executor=executor,
            max_concurrent_activities=slots,
            max_task_queue_activities_per_second=rates[provider] or None,
        )
        for provider, channel in (("sendgrid", Channel.email), ("twilio", Channel.sms))
    ]
    return [journeys, *delivery]


@asynccontextmanager
async def running(workers: list[Worker]) -> AsyncIterator[None]:
    """Run every worker until the block ends."""
    async with AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        yield


async def run_worker(settings: Settings | None = None) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM)."""
    settings = settings or get_settings()
    senders = build_senders(settings)  # fails at start on a half-configured provider
    store = Store(make_sessionmaker(make_engine(settings.database)))
    keyring = keyring_from(settings.encryption_key_value)  # no keys, no start
    # Unencrypted signals and updates (typed into the CLI without our key) change nothing.
    client = await connect(
        settings.temporal_target, settings.temporal_namespace, keyring, refuse_plain=True
    )
    with ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="activity") as executor:
        workers = build_workers(client, store, senders, settings.task_queue, executor, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # What is loaded by now (modules, the SDK, the templates) lives as long as the process:
        # out of the collector's sight, each full collection only walks the journeys' objects.
        gc.freeze()
        async with running(workers):
            log.info("worker polling %s on %s", settings.task_queue, settings.temporal_target)
            await stop.wait()
        log.info("worker stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_worker())
