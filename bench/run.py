"""One bench run: start throughput, dispute latency, history size; one line per figure."""

from __future__ import annotations

import pstats
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from bench.console import measure_console_lists
from bench.history import STEPS, measure_histories
from bench.measure import (
    DISPUTE_WARM_UP,
    StartRounds,
    burst,
    dispute_latency,
    more_journeys,
    start_throughput,
)
from bench.report import figure, median, note, percentile, rates
from bench.surge import measure_surge
from bench.system import ACTIVITY_THREADS, running_system, temporal_version
from worker import WORKER_THREADS

START_RATIO_TARGET = 0.9
WORKER_CPU_TARGET_MS = 10.0
DISPUTE_RATIO_TARGET = 1.5
EVENTS_PER_STEP_TARGET = 12.0
SURGE_RATIO_TARGET = 0.7
RSS_TARGET_MB = 300.0


@dataclass
class Options:
    journeys: int
    concurrency: int
    disputes: int
    rounds: int
    surge: int = 2000
    burst: int = 10000
    console_invoices: int = 100000
    profile_api: Path | None = None
    worker_mode: str = "process"
    portal: bool = True


async def run(options: Options) -> None:
    began = time.perf_counter()
    n, c = options.journeys, options.concurrency
    print(
        f"dunwell bench: {n} journeys per start round, {c} concurrent, {options.rounds} round(s) "
        f"per path, {options.disputes} disputes per path",
        flush=True,
    )
    async with running_system(
        c,
        worker_mode=options.worker_mode,
        profile_api=options.profile_api,
        portal=options.portal,
    ) as system:
        worker = (
            "in this process"
            if system.worker_mode == "inline"
            else "in a child process (`python -m cli worker`)"
        )
        http = "httptools" if find_spec("httptools") else "h11"
        loop = "uvloop" if find_spec("uvloop") else "asyncio"
        print(
            f"setup: {temporal_version().splitlines()[0]}; dev server storage: in memory "
            f"(no --db-filename); worker {worker}: build_workers, real activities, outbox senders "
            f"(no provider credentials), {WORKER_THREADS} activity threads; read model: "
            f"{system.database_kind}; API: `python {' '.join(system.api_command[1:])}` (uvicorn, "
            f"{http} + {loop}) in a child process on {system.api_url}, driven over real HTTP "
            f"(starts by bench/http.py's keep-alive client, the rest by httpx.AsyncClient); "
            f"raw starts and updates from this process with their own client",
            flush=True,
        )

        note("measuring start throughput")
        starts = await start_throughput(system, n, c, options.rounds)
        raw, api = median(starts.raw), median(starts.api)
        how = f"median of {len(starts.raw)} rounds"
        figure(f"start via raw client: {raw:.1f} journeys/s ({n} journeys, {c} concurrent; "
               f"{how}: {rates(starts.raw)})")  # fmt: skip
        figure(f"start via API: {api:.1f} journeys/s ({n} journeys, {c} concurrent; {how}: "
               f"{rates(starts.api)})")  # fmt: skip
        for kind in ("raw", "api"):
            print(f"  {kind} rounds: {_cpu_line(system.worker_mode, starts, kind)}", flush=True)
        ratio = api / raw
        # The product's start is the API's; a journey a Temporal client starts records itself.
        worker_ms = median([r["worker"] for r in starts.cpu["api"]])
        worker_raw_ms = median([r["worker"] for r in starts.cpu["raw"]])
        figure(
            f"start ratio (API/raw): {ratio:.2f} (target >= {START_RATIO_TARGET}; medians of "
            f"{len(starts.order)} alternating rounds {','.join(starts.order)}; best of each "
            f"{max(starts.api) / max(starts.raw):.2f}; worker CPU {worker_ms:.1f} ms per start)",
            met=ratio >= START_RATIO_TARGET,
        )
        if system.worker_mode == "process":
            figure(
                f"worker CPU per journey start: {worker_ms:.1f} ms (target <= "
                f"{WORKER_CPU_TARGET_MS:.0f}; median of the API rounds, until each journey waits "
                f"on its first step; {worker_raw_ms:.1f} ms for a journey started without the "
                "API, which records its own start)",
                met=worker_ms <= WORKER_CPU_TARGET_MS,
            )

        d = options.disputes
        # Fresh journeys, started together and dealt out alternately, so both paths find theirs
        # in the same state (in the worker's cache, timer set): older journeys may have been
        # evicted from the cache by the later rounds, and a replay would cost one path alone.
        note("starting journeys for the disputes")
        fresh = await more_journeys(system, "raw", "dispute", 2 * (d + DISPUTE_WARM_UP), c)
        note("measuring dispute latency")
        api_lat, raw_lat = await dispute_latency(system, d, fresh[0::2], fresh[1::2])
        ms = 1000
        a50, a99 = percentile(api_lat, 50) * ms, percentile(api_lat, 99) * ms
        r50, r99 = percentile(raw_lat, 50) * ms, percentile(raw_lat, 99) * ms
        figure(
            f"dispute via raw client: p50 {r50:.1f} ms, p99 {r99:.1f} ms ({d} updates, sequential)"
        )
        figure(f"dispute via API: p50 {a50:.1f} ms, p99 {a99:.1f} ms ({d} requests, sequential)")
        figure(f"dispute p50 ratio (API/raw): {a50 / r50:.2f} (information)")
        figure(
            f"dispute p99 ratio (API/raw): {a99 / r99:.2f} (target <= {DISPUTE_RATIO_TARGET})",
            met=a99 / r99 <= DISPUTE_RATIO_TARGET,
        )

        note(f"a burst of {options.burst} journeys through the API, each read back at once")
        burst_result = await burst(system, options.burst, c)
        figure(
            f"burst: {burst_result.journeys} journeys posted in {burst_result.posted_s:.1f} s; "
            f"all readable {burst_result.readable_s:.1f} s after the first POST "
            f"({burst_result.unreadable} GETs not 200; target 0)",
            met=burst_result.unreadable == 0,
        )
        figure(
            f"burst: worker caught up {burst_result.caught_up_s:.1f} s after the first POST "
            f"(every journey run to its first step; information)"
        )
        rss = system.worker_rss_mb()
        open_journeys = options.burst + len(starts.order) * n
        scaled = open_journeys >= 10000
        figure(
            f"worker memory: {rss:.0f} MB resident with about {open_journeys} open journeys "
            f"(target <= {RSS_TARGET_MB:.0f} MB with 10,000"
            f"{')' if scaled else '; information at this size)'}",
            met=rss <= RSS_TARGET_MB if scaled else None,
        )

        note("measuring history size (time-skipping server, real worker)")
        standard, disputed = await measure_histories(system.store, system.settings)
    figure(
        f"history events: {standard.events} for {STEPS} steps ({standard.per_step:.1f} per step; "
        f"target <= {EVENTS_PER_STEP_TARGET:.0f}; standard policy to {standard.outcome}; "
        f"{standard.breakdown()})",
        met=standard.per_step <= EVENTS_PER_STEP_TARGET,
    )
    figure(
        f"history events with a dispute: {disputed.events} for {STEPS} steps "
        f"({disputed.per_step:.1f} per step; information; {disputed.note}; to {disputed.outcome}; "
        f"{disputed.breakdown()})"
    )
    note(f"measuring the due-date surge ({options.surge} journeys)")
    surge = await measure_surge(options.surge)
    figure(
        f"due-date surge: {surge.pipeline_per_s:.1f} reminders/s through the pipeline "
        f"({surge.journeys} journeys due at once, all delivered {surge.seconds:.1f} s after)"
    )
    figure(
        f"bare timer -> activity pipeline: {surge.bare_per_s:.1f} reminders/s (same server and "
        f"worker settings; the activity sleeps {surge.call_s * 1000:.1f} ms, one fake call)"
    )
    figure(
        f"surge ratio (pipeline/bare): {surge.bare_ratio:.2f} (target >= {SURGE_RATIO_TARGET})",
        met=surge.bare_ratio >= SURGE_RATIO_TARGET,
    )
    if surge.cpu is not None and surge.bare_cpu is not None:
        ours, bare = surge.cpu, surge.bare_cpu
        figure(
            f"surge CPU per reminder: pipeline {ours.total_ms:.1f} ms (worker {ours.worker_ms:.1f}"
            f" + dev server {ours.server_ms:.1f}), bare {bare.total_ms:.1f} ms (worker "
            f"{bare.worker_ms:.1f} + dev server {bare.server_ms:.1f}); bare/pipeline "
            f"{bare.total_ms / ours.total_ms:.2f} (information: each process's CPU from the "
            "due moment to the last reminder, per reminder)"
        )
    figure(
        f"plain SDK loop: {surge.plain_per_s:.1f} messages/s (same fake, {ACTIVITY_THREADS} "
        f"threads; context: pipeline/plain {surge.ratio:.2f})"
    )
    await _console_lists(options.console_invoices)
    if options.profile_api is not None:
        _print_profile(options.profile_api)
    print(f"bench finished in {time.perf_counter() - began:.0f} s", flush=True)


async def _console_lists(invoices: int) -> None:
    note(f"measuring the console's lists on {invoices:,} invoices seeded into PostgreSQL")
    try:
        lists = await measure_console_lists(invoices)
    except Exception as exc:  # PostgreSQL absent: say so, measure the rest
        figure(f"console lists: not measured ({exc.__class__.__name__}: {exc})")
        return
    how = (
        f"{lists.invoices} invoices, {lists.open_tasks} open tasks on PostgreSQL, seeded in "
        f"{lists.seed_s:.0f} s; GET over ASGI signed in as an agent, median/p90 of 20 ms"
    )
    for prefix in ("work list", "invoice list"):
        pages = [p for p in lists.pages if p.name.startswith(prefix)]
        parts = "; ".join(
            f"{p.name.removeprefix(prefix + ', ')} {p.median_ms:.1f}/{p.p90_ms:.1f}" for p in pages
        )
        figure(f"console {prefix} page ({how}): {parts}")


def _cpu_line(worker_mode: str, starts: StartRounds, kind: str) -> str:
    rounds = starts.cpu[kind]
    cpu = {k: median([r[k] for r in rounds]) for k in rounds[0]}
    parts = [
        ("this process (client" + (", worker)" if worker_mode == "inline" else ")"), cpu["bench"]),
        ("API process", cpu["api"]),
        ("worker process", cpu["worker"]),
        ("dev server", cpu["temporal"]),
    ]
    used = ", ".join(f"{name} {ms:.1f}" for name, ms in parts if ms or name != "worker process")
    return (
        f"CPU ms per journey (median of rounds, from the first start until the last journey "
        f"waited on its first step): {used}; worker caught up {rates(starts.settle[kind])} s "
        "after the last start"
    )


def _print_profile(path: Path) -> None:
    if not path.exists():
        note(f"no API profile was written to {path}")
        return
    print(f"API profile (cProfile: the API's main thread only) in {path}:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
