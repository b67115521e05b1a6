"""The console's lists on a large read model: invoices and tasks written straight into a throwaway
PostgreSQL database (no journeys behind them), then each list page asked for over the console's own
HTTP routes (in-process ASGI, signed in as an agent), page 1 and a deep page, median of repeats.

The database is `<DUNWELL_BENCH_POSTGRES_URL>` (default: the machine's server, the `test` database's
server) with a fresh `dunwell_bench_*` database made, migrated and dropped here. Temporal is not
needed: the list pages never call it (the client is made lazily and never connects).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from temporalio.client import Client

from db.models import InvoiceRow, TaskRow
from db.session import make_engine, make_sessionmaker, migrate, scratch_database
from db.store import Store
from settings import Settings
from workflows.models import Customer, Invoice

POSTGRES_URL = os.environ.get(
    "DUNWELL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
AGENT_KEY = "bench-agent-key-0123456789abcdef"
AGENT = "agent-key-1"  # the name DUNWELL_API_KEYS gives its first key
OPEN_STAGES = ("scheduled", "reminding", "disputed", "promised", "arrangement", "paused", "agent")
OUTCOMES = ("paid", "paid", "paid", "cancelled", "written_off", "handed_over")
TASK_KINDS = (
    "review_dispute", "call_debtor", "personal_call", "agree_plan", "reply",
    "no_working_contact", "overpayment", "plan_ended",
)  # fmt: skip
BATCH = 5000


@dataclass
class PageTime:
    name: str
    path: str
    median_ms: float
    p90_ms: float
    rows: int


@dataclass
class ListTimes:
    invoices: int
    open_tasks: int
    seed_s: float
    pages: list[PageTime]


def _seed(url: str, invoices: int) -> int:
    """`invoices` invoices over 2,000 customers and two years, about 60% open; an open task for
    one open invoice in five, and as many done. Returns how many tasks are open."""
    rng = random.Random(7)
    engine = make_engine(url)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    open_tasks = 0
    with engine.begin() as connection:
        for first in range(0, invoices, BATCH):
            rows, tasks = [], []
            for n in range(first, min(first + BATCH, invoices)):
                invoice_id = f"INV-{n:07d}"
                customer_id = f"C-{n % 2000:05d}"
                created = start + timedelta(minutes=5 * n + rng.randrange(5))
                due = created.date() + timedelta(days=30)
                amount = Decimal(rng.randrange(5_000, 2_500_000)) / 100
                closed = rng.random() < 0.4
                outcome = rng.choice(OUTCOMES) if closed else None
                stage = outcome or rng.choice(OPEN_STAGES)
                document = Invoice(
                    invoice_id=invoice_id,
                    amount=amount,
                    currency="EUR",
                    issued_on=created.date(),
                    due_on=due,
                    payment_url=f"https://pay.example.com/{invoice_id}",
                    customer=Customer(id=customer_id, name=f"Customer {customer_id}"),
                ).model_dump(mode="json")
                rows.append(
                    {
                        "invoice_id": invoice_id,
                        "customer_id": customer_id,
                        "stage": stage,
                        "outcome": outcome,
                        "amount": amount,
                        "outstanding": Decimal(0) if outcome == "paid" else amount,
                        "currency": "EUR",
                        "due_on": due,
                        "policy_name": "standard",
                        "policy_version": 1,
                        "fingerprint": "bench",
                        "document": document,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                if n % 5 == 0:
                    status = "done" if closed else "open"
                    open_tasks += status == "open"
                    kind = TASK_KINDS[n // 5 % len(TASK_KINDS)]
                    tasks.append(
                        {
                            "id": uuid.uuid4().hex,
                            "task_key": f"{invoice_id}:{kind}",
                            "invoice_id": invoice_id,
                            "customer_id": customer_id,
                            "kind": kind,
                            "title": f"{kind.replace('_', ' ')} for {invoice_id}",
                            "detail": {},
                            "status": status,
                            "created_at": created + timedelta(days=31),
                            "assigned_to": AGENT if n % 35 == 0 else None,
                        }
                    )
            connection.execute(sa.insert(InvoiceRow), rows)
            if tasks:
                connection.execute(sa.insert(TaskRow), tasks)
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return open_tasks


async def _time_pages(url: str, invoices: int, tasks: int, repeats: int) -> list[PageTime]:
    from api.app import create_app  # the API's import cost stays out of the other figures

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home), database_url=url, api_keys=f"agent:{AGENT_KEY}", public_url=None
        )
        temporal = await Client.connect("127.0.0.1:1", lazy=True)
        engine = make_engine(url)
        store = Store(make_sessionmaker(engine))
        app = create_app(settings, temporal=temporal, store=store)
        # Deep pages: halfway through the open tasks and through the open invoices.
        deep_tasks = max(1, tasks // 50 // 2)
        deep_invoices = max(1, invoices * 3 // 5 // 50 // 2)
        pages = [
            ("work list, oldest first, page 1", "/console?order=oldest"),
            ("work list, largest first, page 1", "/console?order=largest"),
            ("work list, one kind, page 1", "/console?kind=call_debtor"),
            ("work list, mine", "/console?mine=1"),
            (f"work list, page {deep_tasks}", f"/console?order=oldest&page={deep_tasks}"),
            ("invoice list, open, page 1", "/console/invoices?state=open"),
            ("invoice list, overdue, page 1", "/console/invoices?state=overdue"),
            ("invoice list, one stage, page 1", "/console/invoices?state=all&stage=disputed"),
            ("invoice list, one customer", "/console/invoices?state=all&customer=C-00042"),
            ("invoice list, by number", "/console/invoices?state=all&q=INV-000012"),
            (f"invoice list, open, page {deep_invoices}",
             f"/console/invoices?state=open&page={deep_invoices}"),
        ]  # fmt: skip
        times: list[PageTime] = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                form = await http.get("/console/sign-in")
                token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                signed = await http.post("/console/sign-in", data={"key": AGENT_KEY, "csrf": token})
                if signed.status_code not in (200, 303):
                    raise RuntimeError(f"the bench could not sign in: {signed.status_code}")
                for name, path in pages:
                    samples, rows = [], 0
                    for attempt in range(repeats + 1):
                        began = time.perf_counter()
                        response = await http.get(path)
                        elapsed = (time.perf_counter() - began) * 1000
                        if response.status_code != 200:
                            raise RuntimeError(f"{path} answered {response.status_code}")
                        body = response.text
                        rows = body.count('<li class="task"') + max(0, body.count("<tr>") - 1)
                        if attempt:  # the first request of each page warms caches
                            samples.append(elapsed)
                    ordered = sorted(samples)
                    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
                    times.append(PageTime(name, path, statistics.median(samples), p90, rows))
        engine.dispose()
    return times


async def measure_console_lists(invoices: int, repeats: int = 20) -> ListTimes:
    """Seed, migrate, time each list page; the database is dropped afterwards."""
    with scratch_database(POSTGRES_URL, "dunwell_bench") as url:
        migrate(url)
        began = time.perf_counter()
        open_tasks = _seed(url, invoices)
        seeded = time.perf_counter() - began
        pages = await _time_pages(url, invoices, open_tasks, repeats)
    return ListTimes(invoices, open_tasks, seeded, pages)
