"""The `dunwell` command line: `dev` runs everything; `worker`, `api`, `migrate` run one part;
`keys` manages API keys; `encryption-key` makes a payload encryption key; `import` starts
journeys from a CSV file."""

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


def _keys(args: argparse.Namespace) -> None:
    from db.keys import KeyProblem, KeyStore
    from db.session import make_engine, make_sessionmaker

    _migrate()
    keys = KeyStore(make_sessionmaker(make_engine(get_settings().database)))
    try:
        if args.keys_command == "create":
            view, key = keys.create(args.name, args.role)
            print(f"Created {view.role} key {view.name!r}. It is shown only this once:\n\n{key}\n")
        elif args.keys_command == "revoke":
            view = keys.revoke(args.name)
            print(f"Revoked key {view.name!r}; it is refused from now on.")
        else:
            for v in keys.list():
                state = f"revoked {v.revoked_at:%Y-%m-%d %H:%M}" if v.revoked_at else "live"
                used = f"{v.last_used_at:%Y-%m-%d %H:%M}" if v.last_used_at else "never"
                print(f"{v.name:<30} {v.role:<12} {state:<24} last used {used}")
    except KeyProblem as exc:
        sys.exit(f"dunwell keys: {exc}")


def _require_encryption_keys() -> None:
    """Refuse to start, with what to do, rather than write a debtor's data to Temporal in clear."""
    from encryption import KeyProblem
    from temporal_client import keyring_from

    try:
        keyring_from(get_settings().encryption_key_value)
    except KeyProblem as exc:
        sys.exit(f"dunwell: {exc}")


def _encryption_key() -> None:
    from encryption import new_key

    print(new_key())


def _worker() -> None:
    from worker import run_worker

    _require_encryption_keys()
    try:
        asyncio.run(run_worker())
    except KeyboardInterrupt:
        pass


def _api() -> None:
    import uvicorn

    settings = get_settings()
    _require_encryption_keys()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=settings.api_access_log,
        proxy_headers=True,
    )


def _import(args: argparse.Namespace) -> int:
    from devserver import DEV_KEY_FILE
    from invoice_import import import_file

    settings = get_settings()
    url = (settings.api_url or f"http://127.0.0.1:{settings.api_port}").rstrip("/")
    key = settings.api_key.get_secret_value() if settings.api_key else None
    dev_key = settings.home / DEV_KEY_FILE
    if key is None and dev_key.exists():
        key = dev_key.read_text().strip()
    if not key:
        sys.exit(
            "dunwell import: set DUNWELL_API_KEY to an integration or admin key "
            f"(or run `dunwell dev`, whose key is kept in {dev_key})"
        )
    # One line per request would bury the progress bar.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(import_file(args.file, url, key, args.concurrency))


def _dev() -> None:
    from devserver import run_dev

    sys.exit(run_dev(get_settings()))


def _roles() -> list[str]:
    from db.keys import ROLES  # imported late: `dunwell --help` stays quick

    return list(ROLES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="dunwell", description="Durable collection journeys on Temporal."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="Temporal dev server + UI, database, worker and API in one")
    commands.add_parser("worker", help="run the Temporal worker")
    commands.add_parser("api", help="run the HTTP API")
    commands.add_parser("migrate", help="apply database migrations and add the shipped policies")
    keys = commands.add_parser("keys", help="API keys kept hashed in the database")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="make a key and show it once")
    create.add_argument("--role", required=True, choices=_roles())
    create.add_argument("--name", required=True, help="who holds it; recorded as the actor")
    revoke = key_commands.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("name")
    key_commands.add_parser("list", help="every key: role, revoked or live, last use")
    commands.add_parser(
        "encryption-key", help="print a new `id:base64key` for DUNWELL_ENCRYPTION_KEYS"
    )
    imports = commands.add_parser(
        "import",
        help="start a journey for every row of a CSV file, through the API "
        "(DUNWELL_API_URL, DUNWELL_API_KEY)",
    )
    imports.add_argument("file", help="a CSV file with a header row (see the README)")
    imports.add_argument(
        "--concurrency", type=int, default=8, help="rows started at once (default 8)"
    )
    fakes = commands.add_parser(
        "fake-providers", help="a fake SendGrid and Twilio on loopback, for trying dunwell"
    )
    fakes.add_argument("--port", type=int, default=8025)
    fakes.add_argument(
        "--public-url", help="dunwell's API, e.g. http://127.0.0.1:8000: report deliveries there"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.command == "fake-providers":
        import fake_providers

        extra = ["--public-url", args.public_url] if args.public_url else []
        fake_providers.main(["--port", str(args.port), *extra])
        return
    if args.command == "import":
        sys.exit(_import(args))
    if args.command == "keys":
        logging.getLogger("alembic").setLevel(logging.WARNING)
        _keys(args)
        return
    {
        "dev": _dev,
        "worker": _worker,
        "api": _api,
        "migrate": _migrate,
        "encryption-key": _encryption_key,
    }[args.command]()


if __name__ == "__main__":
    main()
