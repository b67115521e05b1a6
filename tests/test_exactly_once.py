"""Exactly once, even when the worker is killed: 50 journeys send while it dies and comes back.

A real dev server, the fake providers, PostgreSQL (as in production), and `dunwell worker` as a
separate process that is SIGKILLed at random moments (seeded) and restarted. At the end, what
reached the providers is counted per message key: every message must have arrived, none twice,
except in the one window the providers leave open (the worker dying between their accept and our
mark), which the worker must then have logged; the test prints how often that happened.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

import fake_providers as fake
from db.session import make_engine, make_sessionmaker, migrate, normalize_url
from db.store import Store
from fake_providers import FakeProviders
from tests.db.conftest import POSTGRES_URL
from tests.keys import TEST_KEYS
from workflows.journey import (
    InvoiceJourney,
    journey_summary,
    start_search_attributes,
    workflow_id,
)
from workflows.models import Customer, Invoice, JourneyInput
from workflows.policy import Channel, Policy, Step, Tone

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).parent.parent
JOURNEYS = 50
KILLS = 6
SEED = 20261122

# Three messages per journey: two at once (email and SMS), all 50 journeys together, then one
# more 45 s later. (Steps closer together would be merged by the catch-up rule after an outage.)
BURST = Policy(
    name="burst",
    send_window=None,
    steps=[
        Step(name="one", offset=timedelta(0), tone=Tone.neutral, template="overdue_2",
             channels=[Channel.email, Channel.sms]),
        Step(name="two", offset=timedelta(seconds=45), tone=Tone.firm, template="overdue_3",
             channels=[Channel.email]),
    ],
)  # fmt: skip
EXPECTED_PER_JOURNEY = 3


@pytest.fixture
def postgres_database() -> Iterator[str]:
    admin = sa.create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    name = f"dunwell_kill_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield normalize_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "cli.py", "worker"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def test_a_killed_worker_loses_nothing_and_sends_nothing_twice(
    dev_server_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    postgres_database: str,
    tmp_path: Path,
) -> None:
    database = postgres_database  # as in production: row locks, not one writer at a time
    migrate(database)
    store = Store(make_sessionmaker(make_engine(database)))
    task_queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")},
        "DUNWELL_HOME": str(tmp_path),
        "DUNWELL_DATABASE_URL": database,
        "DUNWELL_TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "DUNWELL_TASK_QUEUE": task_queue,
        "DUNWELL_ENCRYPTION_KEYS": TEST_KEYS,
        "DUNWELL_LOG_LEVEL": "WARNING",
        "DUNWELL_SENDGRID_API_KEY": fake.SENDGRID_API_KEY,
        "DUNWELL_SENDGRID_BASE_URL": fake_providers.base_url,
        "DUNWELL_TWILIO_ACCOUNT_SID": fake.TWILIO_ACCOUNT_SID,
        "DUNWELL_TWILIO_AUTH_TOKEN": fake.TWILIO_AUTH_TOKEN,
        "DUNWELL_TWILIO_FROM": "+15005550006",
        "DUNWELL_TWILIO_BASE_URL": fake_providers.base_url,
    }
    log = tmp_path / "worker.log"
    worker = _worker(env, log)
    client = dev_server_env.client
    prefix = f"KILL-{uuid.uuid4().hex[:6]}"
    due = datetime.now(UTC) + timedelta(seconds=15)
    for n in range(JOURNEYS):
        invoice = Invoice(
            invoice_id=f"{prefix}-{n}",
            amount=Decimal("100.00"),
            currency="EUR",
            issued_on=date.today(),
            due_on=due.date(),
            due_at=due,
            payment_url=f"https://pay.example.com/{prefix}-{n}",
            customer=Customer(
                id=f"C-{prefix}-{n}", name="Debtor", email=f"d{n}@{prefix.lower()}.example",
                phone=f"+3161{n:07d}", locale="en", timezone="Europe/Amsterdam",
            ),
        )  # fmt: skip
        await client.start_workflow(
            InvoiceJourney.run,
            JourneyInput(invoice=invoice, policy=BURST, actor="test"),
            id=workflow_id(invoice.invoice_id),
            task_queue=task_queue,
            search_attributes=start_search_attributes(invoice),
            static_summary=journey_summary(invoice),
        )

    rng = random.Random(SEED)
    try:
        # Every journey started (its first record written) before the first kill.
        while len(store.list_invoices(limit=1000)) < JOURNEYS:  # noqa: ASYNC110 (a database)
            await asyncio.sleep(0.5)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 1))
        # Kills at random moments over both steps' sends (seeded: the same run each time).
        moments = sorted(rng.uniform(0, 50) for _ in range(KILLS))
        started = time.monotonic()
        for moment in moments:
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = _worker(env, log)
        expected = JOURNEYS * EXPECTED_PER_JOURNEY
        deadline = time.monotonic() + 240
        while True:
            done = [m for m in store.list_messages(limit=1000) if m.status == "sent"]
            if len(done) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        for n in range(JOURNEYS):
            try:
                await client.get_workflow_handle(workflow_id(f"{prefix}-{n}")).terminate("done")
            except Exception:  # already closed
                pass

    arrived = Counter(
        (m["to"] if isinstance(m["to"], str) else m["to"][0], m["body"][:40])
        for m in fake_providers.received
        if prefix.lower() in str(m["to"]) or str(m["to"]).startswith("+3161")
    )
    keys = Counter(m["key"] for m in fake_providers.received if m["key"] and prefix in m["key"])
    sent = [m for m in store.list_messages(limit=1000) if m.status == "sent"]
    assert len(sent) == JOURNEYS * EXPECTED_PER_JOURNEY, "a message was lost"
    twice = sorted(key for key, count in keys.items() if count > 1)
    texts_twice = sum(1 for (to, _), count in arrived.items() if to.startswith("+") and count > 1)
    logged = log.read_text(errors="replace")
    print(
        f"\n{KILLS} kills, {len(sent)} messages, {len(twice)} emails and {texts_twice} texts "
        "sent twice (the provider-accept-to-mark window)"
    )
    for key in twice:  # a duplicate is only allowed where the worker saw the window and said so
        assert f"sending {key} again" in logged, f"{key} reached the provider twice unannounced"
    assert len(keys) == JOURNEYS * 2  # every email arrived (texts carry no key to count by)
