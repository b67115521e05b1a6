"""The fault suite's harness: `dunwell worker` as its own process, journeys that send a counted set
of messages, and the figures each fault test reports (sent, delivered, duplicated, lost).

Each journey's one step sends email, SMS and WhatsApp at once; due moments are spread over a few
seconds so a fault lands in the middle of the sending. What reached the fake providers is counted
per message: an email by its key, a text by its recipient and body.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import fake_providers as fake
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from tests.environ import without_dunwell_settings
from tests.keys import TEST_KEYS
from tests.postgres import postgres_database
from workflows.journey import InvoiceJourney, journey_summary, start_search_attributes, workflow_id
from workflows.models import Customer, Invoice, JourneyInput
from workflows.policy import Channel, Policy, Step, Tone

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = (Channel.email, Channel.sms, Channel.whatsapp)
ALL_AT_ONCE = Policy(
    name="fault",
    send_window=None,
    steps=[Step(name="one", offset=timedelta(0), tone=Tone.neutral, template="overdue_2",
                channels=list(CHANNELS))],
)  # fmt: skip

ACTIVITY_LAG_S = 3.0
"""How late the fake SendGrid's Email Activity lists an accepted email."""
WORKER_ACTIVITY_LAG_S = 15.0
"""How late the worker assumes it may be (DUNWELL_SENDGRID_ACTIVITY_LAG_S): never less."""


@dataclass
class Figures:
    """What one fault run did to the messages it meant to send."""

    fault: str
    expected: int
    sent: int
    """Distinct messages that reached a provider."""
    delivered: int
    """Messages dunwell recorded as sent."""
    duplicated: int
    """Extra copies that reached a provider."""
    lost: int
    """Messages that never reached a provider."""
    logged_twice: int = 0
    """Resends the worker logged as "may have it twice" (SendGrid without Email Activity)."""
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"FAULT {self.fault}: expected={self.expected} sent={self.sent} "
            f"delivered={self.delivered} duplicated={self.duplicated} lost={self.lost} "
            f"logged_twice={self.logged_twice} {extra}".rstrip()
        )


REPORTED: list[Figures] = []
"""Every fault run's figures, printed again at the end of the test session."""


@dataclass
class Harness:
    client: Client
    store: Store
    providers: FakeProviders
    database: str
    tmp: Path
    temporal_target: str
    task_queue: str = field(default_factory=lambda: f"fault-{uuid.uuid4().hex[:8]}")
    prefix: str = field(default_factory=lambda: f"F{uuid.uuid4().hex[:6]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    worker: subprocess.Popen[bytes] | None = None
    journeys: int = 0
    kills: int = 0
    caught_mid_send: set[str] = field(default_factory=set)
    """Messages a kill left claimed and unmarked (the sends it cut)."""

    @property
    def log(self) -> Path:
        return self.tmp / "worker.log"

    def env(self) -> dict[str, str]:
        return {
            **without_dunwell_settings(),
            "DUNWELL_HOME": str(self.tmp),
            "DUNWELL_DATABASE_URL": self.database,
            "DUNWELL_TEMPORAL_ADDRESS": self.temporal_target,
            "DUNWELL_TASK_QUEUE": self.task_queue,
            "DUNWELL_ENCRYPTION_KEYS": TEST_KEYS,
            "DUNWELL_LOG_LEVEL": "WARNING",
            "DUNWELL_SENDGRID_API_KEY": fake.SENDGRID_API_KEY,
            "DUNWELL_SENDGRID_BASE_URL": self.providers.base_url,
            "DUNWELL_TWILIO_ACCOUNT_SID": fake.TWILIO_ACCOUNT_SID,
            "DUNWELL_TWILIO_AUTH_TOKEN": fake.TWILIO_AUTH_TOKEN,
            "DUNWELL_TWILIO_FROM": "+15005550006",
            "DUNWELL_TWILIO_WHATSAPP_FROM": "+14155238886",
            "DUNWELL_TWILIO_BASE_URL": self.providers.base_url,
            "DUNWELL_SENDGRID_ACTIVITY_LAG_S": str(WORKER_ACTIVITY_LAG_S),
            **self.extra_env,
        }

    def start_worker(self) -> None:
        with open(self.log, "ab") as out:
            self.worker = subprocess.Popen(
                [sys.executable, "cli.py", "worker"],
                cwd=ROOT,
                env=self.env(),
                stdout=out,
                stderr=out,
            )

    def kill_worker(self) -> None:
        """SIGKILL: no goodbye, no cleanup; then count the sends it left half-done."""
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()
        self.kills += 1
        self.caught_mid_send |= {
            m.key for m in self.store.list_messages(limit=5000) if m.status == "claimed"
        }

    async def working(self, timeout_s: float = 20) -> None:
        """Until the (re)started worker has claimed or finished a message since now."""
        before = await asyncio.to_thread(self._progress)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if await asyncio.to_thread(self._progress) != before:
                return

    def _progress(self) -> tuple[int, int]:
        messages = self.store.list_messages(limit=5000)
        return len(messages), sum(1 for m in messages if m.status != "claimed")

    def stop_worker(self) -> None:
        stop_process(self.worker)

    def phone(self, n: int) -> str:
        return f"+3162{int(self.prefix[1:], 16) % 1000:03d}{n:04d}"

    def invoice_ids(self) -> list[str]:
        return [f"{self.prefix}-{n}" for n in range(self.journeys)]

    async def start_journeys(
        self, count: int, lead_s: float = 8, spread_s: float = 0, policy: Policy = ALL_AT_ONCE
    ) -> None:
        """`count` journeys, due `lead_s` from now, their due moments spread over `spread_s`."""
        first = datetime.now(UTC) + timedelta(seconds=lead_s)
        for n in range(self.journeys, self.journeys + count):
            due = first + timedelta(seconds=spread_s * n / max(1, count))
            invoice = Invoice(
                invoice_id=f"{self.prefix}-{n}",
                amount=Decimal("100.00"),
                currency="EUR",
                issued_on=date.today(),
                due_on=due.date(),
                due_at=due,
                payment_url=f"https://pay.example.com/{self.prefix}-{n}",
                customer=Customer(
                    id=f"C-{self.prefix}-{n}", name="Debtor",
                    email=f"d{n}@{self.prefix.lower()}.example",
                    phone=self.phone(n),
                    locale="en", timezone="Europe/Amsterdam",
                ),
            )  # fmt: skip
            await self.client.start_workflow(
                InvoiceJourney.run,
                JourneyInput(invoice=invoice, policy=policy, actor="test"),
                id=workflow_id(invoice.invoice_id),
                task_queue=self.task_queue,
                search_attributes=start_search_attributes(invoice),
                static_summary=journey_summary(invoice),
            )
        self.journeys += count

    @property
    def expected(self) -> int:
        return self.journeys * len(CHANNELS)

    def _arrived(self) -> Counter[str]:
        ours = self.prefix.lower()
        counted: Counter[str] = Counter()
        phones = {self.phone(n) for n in range(self.journeys)}
        for m in self.providers.received:
            to = m["to"] if isinstance(m["to"], str) else m["to"][0]
            if m["provider"] == "sendgrid" and ours in to:
                counted[f"email:{m['key']}"] += 1
            elif to.removeprefix("whatsapp:") in phones:
                counted[f"text:{to}:{m['body']}"] += 1
        return counted

    async def wait_until_sent(self, timeout_s: float) -> None:
        """Until every expected message reached a provider and was recorded, or `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recorded = await asyncio.to_thread(self._recorded)
            if len(self._arrived()) >= self.expected and recorded >= self.expected:
                return
            await asyncio.sleep(1)

    def _recorded(self) -> int:
        try:
            return sum(
                1
                for m in self.store.list_messages(limit=10_000)
                if m.status == "sent" and m.invoice_id.startswith(self.prefix)
            )
        except sa.exc.OperationalError:
            return 0  # the database is down in this fault

    def figures(self, fault: str, **notes: Any) -> Figures:
        arrived = self._arrived()
        logged = self.log.read_text(errors="replace") if self.log.exists() else ""
        twice = [k for k, n in arrived.items() if n > 1]
        logged_twice = sum(
            arrived[k] - 1
            for k in twice
            if k.startswith("email:") and f"sending {k.removeprefix('email:')} again" in logged
        )
        result = Figures(
            fault=fault,
            expected=self.expected,
            sent=len(arrived),
            delivered=self._recorded(),
            duplicated=sum(n - 1 for n in arrived.values()),
            lost=self.expected - len(arrived),
            logged_twice=logged_twice,
            notes=notes,
        )
        print("\n" + result.line())
        REPORTED.append(result)
        return result

    async def end(self) -> None:
        self.stop_worker()
        for invoice_id in self.invoice_ids():
            try:
                await self.client.get_workflow_handle(workflow_id(invoice_id)).terminate("done")
            except RPCError:
                pass  # closed already


def assert_nothing_lost_or_doubled(figures: Figures) -> None:
    """0 lost, 0 duplicated on every channel, and no resend left to chance."""
    assert figures.lost == 0, figures.line()
    assert figures.delivered == figures.expected, figures.line()
    assert figures.duplicated == 0, figures.line()
    assert figures.logged_twice == 0, figures.line()


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and SIGKILL if it has not gone within 20 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database, migrated: SQLite unless the test asks for `postgresql` (indirect)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        url = f"sqlite:///{tmp_path / 'dunwell.db'}"
        migrate(url)
        yield url
        return
    with postgres_database("dunwell_fault") as url:
        migrate(url)
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def harness(
    dev_server_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    database: str,
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    """Journeys on the shared dev server, a worker process on a fresh database.

    The fake SendGrid's Email Activity lists an email 3 s after Mail Send took it, and the worker
    trusts "not listed" only 15 s after the dead attempt's claim: a taker (10 to 13 s after the
    claim) often has to wait for the feed, as it would in production (minutes, there).
    """
    fake_providers.activity_lag_s = ACTIVITY_LAG_S
    made = Harness(
        client=dev_server_env.client,
        store=Store(make_sessionmaker(make_engine(database))),
        providers=fake_providers,
        database=database,
        tmp=tmp_path,
        temporal_target=dev_server_env.client.service_client.config.target_host,
    )
    try:
        yield made
    finally:
        await made.end()


def postgres_binaries() -> Path:
    """The machine's PostgreSQL server binaries (initdb, pg_ctl)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        pytest.fail("pg_ctl is missing: install PostgreSQL's server package (postgresql)")
    return Path(pg_ctl).parent
