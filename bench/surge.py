"""The due-date surge: thousands of reminders falling due at the same moment.

`N` journeys whose one email step falls due at the same instant are started ahead of time on a
fresh dev server (in memory), and the worker has recorded every one of them (each is asleep on its
timer) before that instant, so the figure holds no start work. The worker (`python -m cli worker`
in a child process: the real activities, SQLite WAL) sends through the SendGrid SDK to the fake
providers on loopback. The figure is reminders delivered per second from the due moment to the
last arrival: timers firing, workflow tasks, the delivery activity (render, claim, SDK call, mark,
timeline) and the read-model writes. Beside it, in the same run and on the same server, the bare
timer -> activity pipeline (`bench.bare`): the yardstick. A plain loop of the same SDK calls with
the same number of threads (what the provider path alone allows) is printed as context.

The send window's spread is off here (no send window), and the rate limit too: this measures the
pipeline, not the pacing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import fake_providers as fake
from activities.channels import SendGridSender
from activities.rendering import RenderedMessage
from bench.report import note
from bench.system import (
    ACTIVITY_THREADS,
    CpuMeter,
    Settled,
    _spawn,
    _stop,
    child_pids,
    stdout_to,
)
from db.session import make_engine, migrate
from devserver import temporal_binary
from encryption import Keyring, new_key
from fake_providers import FakeProviders
from temporal_client import data_converter
from workflows.common import SEARCH_ATTRIBUTES
from workflows.journey import InvoiceJourney, journey_summary, start_search_attributes, workflow_id
from workflows.models import Customer, Invoice, JourneyInput
from workflows.policy import Channel, Policy, Step, Tone

SURGE = Policy(
    name="surge",
    send_window=None,
    steps=[
        Step(name="due", offset=timedelta(0), tone=Tone.friendly, template="overdue_1",
             channels=[Channel.email]),
    ],
)  # fmt: skip
LEAD_PER_JOURNEY_S = 0.05
"""How far ahead of the due moment, per journey, the journeys are started: time for the worker to
record every start (about 40 a second here) with room to spare."""
MESSAGE = RenderedMessage(subject="Herinnering", text="Betaal via https://pay.example.com/1")


@dataclass(frozen=True)
class CpuPerReminder:
    """CPU milliseconds per reminder from the due moment to the last one: the worker's and the dev
    server's. Reminders per second move with whatever else loads the machine; this shows where a
    pipeline's cost is."""

    worker_ms: float
    server_ms: float

    @property
    def total_ms(self) -> float:
        return self.worker_ms + self.server_ms


def _per_reminder(meter: CpuMeter, before: dict[str, float], reminders: int) -> CpuPerReminder:
    """The worker's and the dev server's CPU since `before`, per reminder."""
    after = meter.read()
    return CpuPerReminder(
        worker_ms=(after["worker"] - before["worker"]) * 1000 / reminders,
        server_ms=(after["temporal"] - before["temporal"]) * 1000 / reminders,
    )


@dataclass
class Surge:
    journeys: int
    pipeline_per_s: float
    plain_per_s: float
    seconds: float
    bare_per_s: float = 0.0
    """The bare timer -> activity pipeline (`bench.bare`) on the same server: the yardstick."""
    call_s: float = 0.0
    """One call to the fake provider (mean, one at a time): what the bare activity sleeps."""
    cpu: CpuPerReminder | None = None
    bare_cpu: CpuPerReminder | None = None

    @property
    def ratio(self) -> float:
        return self.pipeline_per_s / self.plain_per_s

    @property
    def bare_ratio(self) -> float:
        return self.pipeline_per_s / self.bare_per_s


def _sender(provider: FakeProviders) -> SendGridSender:
    return SendGridSender(
        fake.SENDGRID_API_KEY,
        "Billing <billing@dunwell.example>",
        base_url=provider.base_url,
    )


def plain_loop(provider: FakeProviders, n: int) -> float:
    """The same SDK call, `n` times, from as many threads as the worker has: messages per second."""
    sender = _sender(provider)
    began = time.perf_counter()
    with ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        list(
            pool.map(
                lambda i: sender.send(Channel.email, f"plain{i}@surge.example", MESSAGE, f"p{i}"),
                range(n),
            )
        )
    return n / (time.perf_counter() - began)


def call_seconds(provider: FakeProviders, n: int = 50) -> float:
    """One SDK call to the fake, on average, one at a time."""
    sender = _sender(provider)
    began = time.perf_counter()
    for i in range(n):
        sender.send(Channel.email, f"one{i}@surge.example", MESSAGE, f"o{i}")
    return (time.perf_counter() - began) / n


async def measure_surge(n: int) -> Surge:
    keys = new_key("surge")
    keyring = Keyring.parse(keys)
    with tempfile.TemporaryDirectory(prefix="dunwell-surge-") as tmp, FakeProviders() as provider:
        note(
            f"surge: a plain loop of {n} SendGrid SDK calls to the fake, {ACTIVITY_THREADS} threads"
        )
        plain = await asyncio.to_thread(plain_loop, provider, n)
        call = await asyncio.to_thread(call_seconds, provider)
        provider.clear()

        database = f"sqlite:///{Path(tmp) / 'dunwell.db'}"
        migrate(database)
        servers_before = set(child_pids("temporal"))
        with stdout_to(Path(tmp) / "temporal.log"):
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal_binary(),
                search_attributes=SEARCH_ATTRIBUTES,
                data_converter=data_converter(keyring),
                ui=False,
                dev_server_log_level="error",
            )
        servers = [pid for pid in child_pids("temporal") if pid not in servers_before]
        queue = f"surge-{uuid.uuid4().hex[:8]}"
        child_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")},
            "DUNWELL_HOME": tmp,
            "DUNWELL_DATABASE_URL": database,
            "DUNWELL_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "DUNWELL_TASK_QUEUE": queue,
            "DUNWELL_ENCRYPTION_KEYS": keys,
            "DUNWELL_LOG_LEVEL": "WARNING",
            "DUNWELL_SENDGRID_API_KEY": fake.SENDGRID_API_KEY,
            "DUNWELL_SENDGRID_BASE_URL": provider.base_url,
            "DUNWELL_SENDGRID_RATE_PER_S": "0",
        }
        log = Path(tmp) / "worker.log"
        worker = await _spawn([sys.executable, "-m", "cli", "worker"], child_env, log)
        try:
            settled = Settled(make_engine(database))
            meter = CpuMeter(0, worker.pid, servers)
            try:
                surge = await _pipeline(env, provider, settled, meter, queue, n, plain)
            finally:
                settled.engine.dispose()
                await _stop(worker, "the surge worker", log)
            surge.call_s = call
            surge.bare_per_s, surge.bare_cpu = await _bare(env, servers, n, call, Path(tmp))
            return surge
        finally:
            await env.shutdown()


async def _bare(
    env: WorkflowEnvironment, servers: list[int], n: int, call: float, tmp: Path
) -> tuple[float, CpuPerReminder]:
    """The same surge through `bench.bare`: reminders per second from the due moment, and the
    CPU per reminder."""
    from bench.bare_workflow import BareReminder

    queue = f"bare-{uuid.uuid4().hex[:8]}"
    child_env = {
        **os.environ,
        "BARE_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "BARE_TASK_QUEUE": queue,
    }
    log = tmp / "bare.log"
    worker = await _spawn([sys.executable, "-m", "bench.bare"], child_env, log)
    try:
        due = datetime.now(UTC) + timedelta(seconds=max(20.0, n / 40))
        note(f"surge: {n} bare timer -> activity workflows ({call * 1000:.1f} ms each), due "
             f"at {due:%H:%M:%S} UTC")  # fmt: skip
        semaphore = asyncio.Semaphore(32)

        client = await Client.connect(env.client.service_client.config.target_host)

        async def start(i: int) -> WorkflowHandle[Any, float]:
            async with semaphore:
                return await client.start_workflow(
                    BareReminder.run,
                    args=[due.timestamp(), call],
                    id=f"{queue}-{i}",
                    task_queue=queue,
                )

        async def finished(handle: WorkflowHandle[Any, float]) -> float:
            async with semaphore:
                return float(await handle.result())

        handles = await asyncio.gather(*(start(i) for i in range(n)))
        meter = CpuMeter(0, worker.pid, servers)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        before = meter.read()
        ends = await asyncio.gather(*(finished(h) for h in handles))
        return n / (max(ends) - due.timestamp()), _per_reminder(meter, before, n)
    finally:
        await _stop(worker, "the bare worker", log)


async def _pipeline(
    env: WorkflowEnvironment,
    provider: FakeProviders,
    settled: Settled,
    meter: CpuMeter,
    queue: str,
    n: int,
    plain: float,
) -> Surge:
    # Far enough ahead that every journey is started (and asleep on its timer) before it falls due.
    due = datetime.now(UTC) + timedelta(seconds=max(20.0, n * LEAD_PER_JOURNEY_S))
    note(f"surge: starting {n} journeys, all due at {due:%H:%M:%S} UTC")
    semaphore = asyncio.Semaphore(32)

    async def start(i: int) -> None:
        invoice = Invoice(
            invoice_id=f"SURGE-{queue}-{i}", amount=Decimal("100.00"), currency="EUR",
            issued_on=date.today(), due_on=due.date(), due_at=due,
            payment_url=f"https://pay.example.com/{i}",
            customer=Customer(id=f"C-{i}", name="Debtor", email=f"d{i}@surge.example",
                              locale="en", timezone="Europe/Amsterdam"),
        )  # fmt: skip
        async with semaphore:
            await env.client.start_workflow(
                InvoiceJourney.run,
                JourneyInput(invoice=invoice, policy=SURGE, actor="bench"),
                id=workflow_id(invoice.invoice_id),
                task_queue=queue,
                search_attributes=start_search_attributes(invoice),
                static_summary=journey_summary(invoice),
            )

    await asyncio.gather(*(start(i) for i in range(n)))
    # Started is not yet asleep: the worker records each start (a local activity) and sets its
    # timer after the server accepted it. A surge that overlapped that work would count it.
    left = (due - datetime.now(UTC)).total_seconds()
    note(f"surge: waiting for the worker to record every start ({left:.0f} s before they fall due)")
    try:
        await settled.wait(f"SURGE-{queue}-", n, within=max(0.0, left))
    except RuntimeError as error:
        raise RuntimeError(f"{error} before the due moment; the surge is void") from None
    if datetime.now(UTC) >= due:
        raise RuntimeError("the journeys took longer to start than planned; the surge is void")
    note("surge: waiting for every reminder to arrive")
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    before = meter.read()
    deadline = time.monotonic() + 600
    while len(provider.received) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(provider.received)} of {n} reminders arrived")
        await asyncio.sleep(0.5)
    cpu = _per_reminder(meter, before, n)
    last = max(m["received_at"] for m in provider.received)
    seconds = last - due.timestamp()
    return Surge(n, n / seconds, plain, seconds, cpu=cpu)
