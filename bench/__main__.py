"""`python -m bench` (`make bench`): how much the API costs over the raw Temporal client.

Measures, against a Temporal dev server it starts itself (in memory), a real worker and the real
API under uvicorn on loopback, on the SQLite read model (or `DUNWELL_DATABASE_URL`, PostgreSQL):

1. journeys started per second through `POST /v1/invoices` and through `client.start_workflow`,
   and their ratio as the median of 5 alternating rounds each (target >= 0.9), with the
   worker's CPU milliseconds per journey started through the API (target <= 10); the API
   records the start itself, a journey started by the raw client records its own;
2. p50 and p99 latency of opening a dispute through the API and through `execute_update`
   (p99 ratio target <= 1.5);
3. a burst of 10,000 journeys through the API, each read back at once (target: every GET 200),
   the time until the worker has run them all to their first step, and the worker's memory
   (target <= 300 MB);
4. history events of a whole standard journey per policy step (target <= 12), in the
   time-skipping test server; and, for information, of one with a dispute in the middle;
5. the due-date surge (bench/surge.py): 2,000 journeys falling due at once, reminders delivered
   per second through the whole pipeline to the fake SendGrid, against a bare Temporal timer ->
   activity pipeline on the same server (bench/bare.py; target >= 0.7 of it);
6. the console's work list and invoice list pages (bench/console.py): 100,000 invoices written
   straight into a throwaway PostgreSQL database (`DUNWELL_BENCH_POSTGRES_URL`, default the local
   server), each page asked for over HTTP, page 1 and a deep page (information; no target).

Each figure with a target ends in `met` or `MISSED`; the exit status is non-zero only on errors.
Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from pathlib import Path

from bench.run import Options, run

DEFAULTS = {
    "journeys": 300, "concurrency": 32, "disputes": 100, "rounds": 5, "surge": 2000,
    "burst": 10000, "console_invoices": 100000,
}  # fmt: skip
QUICK = {
    "journeys": 20, "concurrency": 8, "disputes": 5, "rounds": 1, "surge": 40, "burst": 40,
    "console_invoices": 1000,
}  # fmt: skip


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, help="journeys per start round (default 300)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients (default 32)")
    parser.add_argument("--disputes", type=int, help="disputes per path (default 100)")
    parser.add_argument(
        "--rounds", type=int, help="start rounds per path, ABBA-interleaved; medians (default 5)"
    )
    parser.add_argument("--surge", type=int, help="journeys due at once (default 2000)")
    parser.add_argument(
        "--burst",
        type=int,
        help="journeys posted at once, each read back; then the worker's memory (default 10000)",
    )
    parser.add_argument(
        "--console-invoices",
        type=int,
        help="invoices seeded into PostgreSQL for the console's list pages (default 100000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small numbers for a smoke run (20, 8, 5, 1, 40, 40, 1000)",
    )
    parser.add_argument(
        "--profile-api",
        type=Path,
        metavar="FILE",
        help="run the API under cProfile, write its stats to FILE and print the top entries",
    )
    parser.add_argument(
        "--worker",
        choices=("process", "inline"),
        default="process",
        help="run the worker as `python -m cli worker` (process, default) or in this process",
    )
    parser.add_argument(
        "--no-portal",
        action="store_true",
        help="messages without the debtor's personal link (to measure what the link costs)",
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    values = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    for name, value in values.items():
        if value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return Options(
        **values,
        profile_api=args.profile_api,
        worker_mode=args.worker,
        portal=not args.no_portal,
    )


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    status = 0
    try:
        asyncio.run(run(options))
    except KeyboardInterrupt:
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is shut down by now; skip the interpreter teardown that can crash after a
    # Temporal worker ran (sdk-python#300), so the status is ours.
    os._exit(status)


if __name__ == "__main__":
    main()
