"""The `dunwell` command line: `dev` runs everything; `worker`, `api`, `migrate` run one part."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from settings import get_settings


def _migrate() -> None:
    from db.session import make_engine, make_sessionmaker, migrate
    from db.store import Store
    from workflows.policy import SHIPPED_POLICIES

    settings = get_settings()
    if settings.database.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
    migrate(settings.database)
    Store(make_sessionmaker(make_engine(settings.database))).ensure_shipped_policies(
        SHIPPED_POLICIES
    )


def _worker() -> None:
    from worker import run_worker

    try:
        asyncio.run(run_worker())
    except KeyboardInterrupt:
        pass


def _api() -> None:
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=settings.api_access_log,
        proxy_headers=True,
    )


def _dev() -> None:
    from devserver import run_dev

    sys.exit(run_dev(get_settings()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dunwell", description="Durable collection journeys on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="Temporal dev server + UI, database, worker and API in one")
    commands.add_parser("worker", help="run the Temporal worker")
    commands.add_parser("api", help="run the HTTP API")
    commands.add_parser("migrate", help="apply database migrations and add the shipped policies")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    {"dev": _dev, "worker": _worker, "api": _api, "migrate": _migrate}[args.command]()


if __name__ == "__main__":
    main()
