"""The worker's delivery queues: Temporal's server paces each provider across every worker."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

import fake_providers as fake
from activities.channels import build_senders
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from settings import Settings
from tests.keys import TEST_CONVERTER
from worker import build_workers, running
from workflows.journey import InvoiceJourney, start_search_attributes, workflow_id
from workflows.models import Customer, Invoice, JourneyInput
from workflows.policy import Channel, Policy, Step, Tone

pytestmark = pytest.mark.asyncio(loop_scope="session")

BURST = 4
"""How many the server may let through at once before its pace sets in."""
EMAILS = 10
RATE = 2.0
ONE_EMAIL = Policy(
    name="one-email",
    send_window=None,
    steps=[Step(name="one", offset=timedelta(0), tone=Tone.neutral, template="overdue_1",
                channels=[Channel.email])],
)  # fmt: skip


def sqlite_store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    return Store(make_sessionmaker(make_engine(url)))


def email_only(fake_providers: FakeProviders, **more: Any) -> Settings:
    """SendGrid against the fake; no Twilio."""
    return Settings(
        sendgrid_api_key=SecretStr(fake.SENDGRID_API_KEY),
        sendgrid_base_url=fake_providers.base_url,
        twilio_account_sid=None,
        twilio_auth_token=None,
        twilio_from=None,
        twilio_whatsapp_from=None,
        **more,
    )


async def start_one_email_journeys(client: Client, queue: str, domain: str, count: int) -> None:
    """`count` journeys whose one email falls due in two seconds, to d<n>@`domain`."""
    due = datetime.now(UTC) + timedelta(seconds=2)
    for n in range(count):
        invoice = Invoice(
            invoice_id=f"{queue}-{n}", amount=Decimal("10.00"), currency="EUR",
            issued_on=date.today(), due_on=due.date(), due_at=due,
            payment_url="https://pay.example.com/x",
            customer=Customer(id="C-1", name="Debtor", email=f"d{n}@{domain}"),
        )  # fmt: skip
        await client.start_workflow(
            InvoiceJourney.run,
            JourneyInput(invoice=invoice, policy=ONE_EMAIL, actor="test"),
            id=workflow_id(invoice.invoice_id),
            task_queue=queue,
            search_attributes=start_search_attributes(invoice),
        )


async def test_two_workers_together_send_at_most_the_providers_rate(
    dev_server_env: WorkflowEnvironment, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    store = sqlite_store(tmp_path)
    queue = f"paced-{uuid.uuid4().hex[:8]}"
    settings = email_only(fake_providers, sendgrid_rate_per_s=RATE)
    domain = f"{queue}.example"
    client = dev_server_env.client
    target = client.service_client.config.target_host
    # A second worker of its own runtime and connection, as another process would have.
    other = await Client.connect(
        target, data_converter=TEST_CONVERTER, runtime=Runtime(telemetry=TelemetryConfig())
    )
    async with AsyncExitStack() as stack:
        for connection in (client, other):  # two workers: one limit for both
            executor = stack.enter_context(ThreadPoolExecutor(8))
            senders = build_senders(settings)
            workers = build_workers(connection, store, senders, queue, executor, settings)
            await stack.enter_async_context(running(workers))
        await start_one_email_journeys(client, queue, domain, EMAILS)
        for _ in range(120):
            arrived = [m for m in fake_providers.received if str(m["to"]).endswith(domain)]
            if len(arrived) >= EMAILS:
                break
            await asyncio.sleep(0.5)
        for n in range(EMAILS):
            await client.get_workflow_handle(workflow_id(f"{queue}-{n}")).terminate("done")

    moments = sorted(m["received_at"] for m in arrived)
    assert len(moments) == EMAILS
    span = moments[-1] - moments[0]
    print(
        f"\n{EMAILS} emails due at once, limit {RATE}/s over two workers: spread over {span:.1f} s"
    )
    # Unpaced they arrive within a fraction of a second. Paced, the server's rate limiter lets a
    # few through at once (four, in one loaded CI run: ten spread over exactly 3.0 s), then one
    # every 1/RATE s: at 2/s ten take at least 3 s. Alone here they take 4.8 to 8.8 s.
    assert span >= (EMAILS - BURST) / RATE * 0.75


async def test_a_worker_keeping_one_journey_in_memory_still_sends_each_reminder_once(
    dev_server_env: WorkflowEnvironment, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    """DUNWELL_WORKER_CACHED_JOURNEYS=1: every other journey's task evicts the one in memory,
    so each wakes by replaying its history, and still sends its reminder exactly once."""
    store = sqlite_store(tmp_path)
    queue = f"cache-{uuid.uuid4().hex[:8]}"
    settings = email_only(fake_providers, worker_cached_journeys=1)
    domain = f"{queue}.example"
    client = dev_server_env.client
    journeys = 6
    with ThreadPoolExecutor(8) as executor:
        workers = build_workers(client, store, build_senders(settings), queue, executor, settings)
        assert workers[0].config()["max_cached_workflows"] == 1
        async with running(workers):
            await start_one_email_journeys(client, queue, domain, journeys)
            recorded: list[str] = []
            for _ in range(120):
                recorded = [
                    m.status for n in range(journeys) for m in store.list_messages(f"{queue}-{n}")
                ]
                if len(recorded) >= journeys:
                    break
                await asyncio.sleep(0.5)
            for n in range(journeys):
                await client.get_workflow_handle(workflow_id(f"{queue}-{n}")).terminate("done")

    arrived = sorted(str(m["to"]) for m in fake_providers.received if str(m["to"]).endswith(domain))
    assert arrived == sorted(f"d{n}@{domain}" for n in range(journeys))
    assert recorded == ["sent"] * journeys
