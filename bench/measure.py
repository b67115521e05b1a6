"""Start throughput and dispute latency: the API over real HTTP against the raw Temporal client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.journeys import fingerprint
from api.schemas import InvoiceIn
from bench.system import System
from workflows.journey import InvoiceJourney, journey_summary, start_search_attributes, workflow_id
from workflows.models import Invoice, JourneyInput, OpenDispute
from workflows.policy import STANDARD_POLICY, Policy

T = TypeVar("T")

DISPUTE_WARM_UP = 3
"""Disputes per path before the counted ones."""

DUE_IN = timedelta(days=365)
"""Far enough ahead that no step falls due while we measure: each journey's start is recorded
(by the API, or by the journey started by the raw client) and it sets a timer, nothing more."""


def invoice_body(invoice_id: str, index: int) -> dict[str, Any]:
    today = date.today()
    return {
        "invoice_id": invoice_id,
        "amount": "1250.00",
        "currency": "EUR",
        "issued_on": today.isoformat(),
        "due_on": (today + DUE_IN).isoformat(),
        "payment_url": f"https://pay.example.com/{invoice_id}",
        "policy": STANDARD_POLICY.name,
        "customer": {
            "id": f"C-{index % 50:03d}",
            "name": "Bakkerij de Vries",
            "email": "ap@devries.example",
            "phone": "+31612345678",
            "locale": "nl",
            "timezone": "Europe/Amsterdam",
            "country": "NL",
        },
    }


@dataclass(frozen=True)
class Prepared:
    """A raw start, prepared outside the timing as the API's request body is."""

    invoice: Invoice
    fingerprint: str


def prepare(invoice_ids: list[str]) -> list[Prepared]:
    prepared = []
    for i, invoice_id in enumerate(invoice_ids):
        invoice = InvoiceIn.model_validate(invoice_body(invoice_id, i)).to_invoice()
        prepared.append(Prepared(invoice, fingerprint(invoice)))
    return prepared


async def pool(items: Iterable[T], concurrency: int, call: Callable[[T], Awaitable[None]]) -> float:
    """Run `call` over `items` with `concurrency` clients; the wall-clock seconds it took."""
    iterator = iter(items)

    async def client() -> None:
        for item in iterator:  # shared: each client takes the next item when it is free
            await call(item)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - began


# ---- starts ------------------------------------------------------------------------------------


async def start_raw(system: System, policy: Policy, item: Prepared) -> None:
    """A journey started by a Temporal client without the API: what `api.journeys.start_journey`
    asks of Temporal, except that the journey records its own start (`start_recorded` is False;
    the API records it itself). Both ways end with the journey recorded and waiting."""
    invoice = item.invoice
    await system.raw.start_workflow(
        InvoiceJourney.run,
        JourneyInput(invoice=invoice, policy=policy, actor="bench", fingerprint=item.fingerprint),
        id=workflow_id(invoice.invoice_id),
        task_queue=system.settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=start_search_attributes(invoice),
        memo={"fingerprint": item.fingerprint},
        static_summary=journey_summary(invoice),
        static_details=f"policy {policy.name} v{policy.version} · customer {invoice.customer.id}",
    )


async def start_api(system: System, body: dict[str, Any]) -> None:
    answer = await system.lean.post_json("/v1/invoices", body, system.headers("integration"))
    if answer.status != 201:
        raise RuntimeError(f"POST /v1/invoices answered {answer.status}: {answer.text}")


@dataclass
class StartRounds:
    raw: list[float]
    api: list[float]
    order: list[str]
    cpu: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"raw": [], "api": []})
    """Per round, CPU ms per journey of each process (bench, api, worker, temporal), from the
    first start until every journey of the round was recorded and had run its first task."""
    settle: dict[str, list[float]] = field(default_factory=lambda: {"raw": [], "api": []})
    """Per round, seconds the worker still needed after the last start had been answered."""


async def start_throughput(
    system: System, journeys: int, concurrency: int, rounds: int
) -> StartRounds:
    """Rounds in the order raw, api, api, raw, raw, api, ... (ABBA), each of `journeys` new
    journeys; the worker settles (every journey recorded and waiting on its timer) between
    rounds."""
    policy = await asyncio.to_thread(system.store.get_policy, STANDARD_POLICY.name)
    if policy is None:
        raise RuntimeError("the standard policy is missing from the read model")
    flat: list[str] = []
    for r in range(rounds):
        flat += ["raw", "api"] if r % 2 == 0 else ["api", "raw"]
    result = StartRounds(raw=[], api=[], order=flat)

    # Warm-up, not counted: connections, the API's first requests, the worker's first runs.
    warm = max(concurrency, 8)
    for kind in ("raw", "api"):
        await _start_round(system, policy, kind, f"warm-{kind}", warm, concurrency)

    for r, kind in enumerate(flat):
        prefix = f"{kind}-{r:02d}"
        before = system.cpu.read()
        seconds, _, settle = await _start_round(system, policy, kind, prefix, journeys, concurrency)
        used = {k: v - before[k] for k, v in system.cpu.read().items()}
        result.cpu[kind].append({k: 1000 * v / journeys for k, v in used.items()})
        result.settle[kind].append(settle)
        (result.raw if kind == "raw" else result.api).append(journeys / seconds)
    return result


async def more_journeys(
    system: System, kind: str, prefix: str, count: int, concurrency: int
) -> list[str]:
    """Start (untimed) `count` more journeys the `kind` way, settled."""
    policy = await asyncio.to_thread(system.store.get_policy, STANDARD_POLICY.name)
    assert policy is not None
    _, ids, _ = await _start_round(system, policy, kind, prefix, count, concurrency)
    return ids


async def _start_round(
    system: System, policy: Policy, kind: str, prefix: str, count: int, concurrency: int
) -> tuple[float, list[str], float]:
    """Start `count` journeys; the seconds until the last start was answered, their ids, and
    the seconds after that until all were recorded and had run their first task (CPU is
    measured over both)."""
    ids = [f"{system.run}-{prefix}-{i:05d}" for i in range(count)]
    if kind == "raw":
        prepared = prepare(ids)
        seconds = await pool(prepared, concurrency, lambda p: start_raw(system, policy, p))
    else:
        bodies = [invoice_body(invoice_id, i) for i, invoice_id in enumerate(ids)]
        seconds = await pool(bodies, concurrency, lambda b: start_api(system, b))
    settle = await system.settled.wait(f"{system.run}-{prefix}", count)
    return seconds, ids, settle


# ---- disputes ----------------------------------------------------------------------------------


async def dispute_raw(system: System, invoice_id: str) -> float:
    handle = system.raw.get_workflow_handle_for(InvoiceJourney.run, workflow_id(invoice_id))
    began = time.perf_counter()
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="bench: damaged"))
    return time.perf_counter() - began


async def dispute_api(system: System, invoice_id: str) -> float:
    began = time.perf_counter()
    response = await system.api.post(
        f"/v1/invoices/{invoice_id}/disputes",
        json={"reason": "bench: damaged"},
        headers=system.headers("agent"),
    )
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(
            f"POST /v1/invoices/{invoice_id}/disputes answered {response.status_code}: "
            f"{response.text}"
        )
    return elapsed


async def dispute_latency(
    system: System, count: int, api_ids: list[str], raw_ids: list[str]
) -> tuple[list[float], list[float]]:
    """Sequential, alternating API and raw (which goes first swaps every pair), each on a journey
    of its own that is settled and waiting on its timer. A few of each first, not counted."""
    warm = DISPUTE_WARM_UP
    if len(api_ids) < count + warm or len(raw_ids) < count + warm:
        raise RuntimeError("not enough started journeys for the disputes")
    for i in range(warm):
        await dispute_api(system, api_ids[i])
        await dispute_raw(system, raw_ids[i])
    api: list[float] = []
    raw: list[float] = []
    for i in range(warm, warm + count):
        if i % 2:
            api.append(await dispute_api(system, api_ids[i]))
            raw.append(await dispute_raw(system, raw_ids[i]))
        else:
            raw.append(await dispute_raw(system, raw_ids[i]))
            api.append(await dispute_api(system, api_ids[i]))
    return api, raw


# ---- a burst of starts -------------------------------------------------------------------------


@dataclass
class Burst:
    journeys: int
    posted_s: float
    """From the first POST until the last was answered."""
    readable_s: float
    """From the first POST until every journey had answered its GET with 200."""
    caught_up_s: float
    """From the first POST until the worker had run every journey's first task."""
    unreadable: int
    """GETs of accepted journeys that did not answer 200 (503s included)."""


async def burst(system: System, count: int, concurrency: int) -> Burst:
    """`count` journeys POSTed through the API as fast as `concurrency` clients go, each read
    back with GET at once; then the time until the worker has run them all (each waiting on
    its first step's timer)."""
    prefix = f"{system.run}-burst"
    bodies = [invoice_body(f"{prefix}-{i:05d}", i) for i in range(count)]
    headers = system.headers("integration")
    unreadable = 0
    last_read = 0.0
    began = time.perf_counter()

    async def one(body: dict[str, Any]) -> None:
        nonlocal unreadable, last_read
        await start_api(system, body)
        path = f"/v1/invoices/{body['invoice_id']}"
        try:
            read = await system.api.get(path, headers=headers)
        except httpx.RemoteProtocolError:
            # A keep-alive connection the API closed (idle past uvicorn's 5 s while the dev
            # server stalled under the burst) as the GET went out: sent again, as browsers do.
            read = await system.api.get(path, headers=headers)
        if read.status_code != 200:
            unreadable += 1
        last_read = max(last_read, time.perf_counter())

    posted = await pool(bodies, concurrency, one)
    await system.settled.wait(prefix, count, within=3600)
    return Burst(count, posted, last_read - began, time.perf_counter() - began, unreadable)
