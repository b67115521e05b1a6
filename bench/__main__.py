"""`python -m bench` (`make bench`): how much the API costs over the raw Temporal client.

Measures, against a Temporal dev server it starts itself (in memory), a real worker and the real
API under uvicorn on loopback:

1. journeys started per second through `POST /v1/invoices` and through `client.start_workflow`,
   and their ratio (target >= 0.8);
2. p50 and p99 latency of opening a dispute through the API and through `execute_update`, and
   their ratios (target <= 2);
3. history events of a whole standard journey per policy step (target <= 15), in the
   time-skipping test server; and, for information, of one with a dispute in the middle;
4. the due-date surge (bench/surge.py): 2,000 journeys falling due at once, reminders delivered
   per second through the whole pipeline to the fake SendGrid, beside a plain loop of the same SDK
   calls in the same run, and their ratio.

A figure that misses its target is marked `TARGET MISSED`; the exit status is non-zero only on
errors. Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from pathlib import Path

from bench.run import Options, run

DEFAULTS = {"journeys": 300, "concurrency": 32, "disputes": 100, "rounds": 2, "surge": 2000}
QUICK = {"journeys": 20, "concurrency": 8, "disputes": 5, "rounds": 1, "surge": 40}


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, help="journeys per start round (default 300)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients (default 32)")
    parser.add_argument("--disputes", type=int, help="disputes per path (default 100)")
    parser.add_argument(
        "--rounds", type=int, help="start rounds per path, ABBA-interleaved; best kept (default 2)"
    )
    parser.add_argument("--surge", type=int, help="journeys due at once (default 2000)")
    parser.add_argument(
        "--quick", action="store_true", help="small numbers for a smoke run (20, 8, 5, 1, 40)"
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
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    values = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}
    for name, value in values.items():
        if value < 1:
            parser.error(f"--{name} must be at least 1")
    return Options(**values, profile_api=args.profile_api, worker_mode=args.worker)


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
