"""The system under measurement, all on 127.0.0.1 and started by the bench itself.

- a Temporal dev server (`temporal server start-dev`, no `--db-filename`: in memory),
- a real worker (`worker.build_workers`, the real activities, outbox senders: no provider
  credentials, so nothing is sent anywhere), by default as `python -m cli worker` in a child
  process as `dunwell dev` runs it (in this process, it would share the GIL with the load
  generator and starve the HTTP client: the start ratio drops to about half),
- the real API (`python -m cli api`: uvicorn with its own Temporal client, as `dunwell dev` runs
  it) in a child process on a free loopback port,
- one SQLite read model (WAL) in a temporary directory, migrated, with the shipped policies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import sqlalchemy as sa
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.channels import build_senders
from bench.http import LeanClient
from bench.report import note
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from devserver import temporal_binary
from encryption import Keyring, new_key
from settings import Settings
from temporal_client import connect, data_converter
from worker import build_workers, running
from workflows.common import SEARCH_ATTRIBUTES
from workflows.journey import workflow_id
from workflows.policy import SHIPPED_POLICIES

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "integration": "bench-integration-secret-0000",
    "agent": "bench-agent-secret-000000000",
}
ACTIVITY_THREADS = 32
"""As `worker.run_worker` sizes its activity pool."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def temporal_version() -> str:
    try:
        out = subprocess.run(
            [temporal_binary(), "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "temporal CLI (version unknown)"
    return out.strip() or "temporal CLI (version unknown)"


@contextlib.contextmanager
def stdout_to(path: Path) -> Iterator[None]:
    """Send file descriptor 1 to `path` meanwhile: a server started now prints its banner there."""
    sys.stdout.flush()
    saved = os.dup(1)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(target, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(target)


@dataclass
class Settled:
    """How many journeys are recorded in the read model and, with `client`, have run their first
    workflow task (their next step published, waiting on its timer)."""

    engine: sa.Engine
    client: Client | None = None

    def started(self, prefix: str) -> int:
        query = sa.text(
            "SELECT count(*) FROM timeline_events "
            "WHERE kind = 'journey_started' AND invoice_id LIKE :prefix"
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query, {"prefix": prefix + "%"}).scalar_one())

    async def waiting(self, prefix: str) -> int:
        """Journeys under `prefix` whose first task has run (it publishes `NextActionAt`)."""
        assert self.client is not None
        query = f'WorkflowId STARTS_WITH "{workflow_id(prefix)}" AND NextActionAt IS NOT NULL'
        return (await self.client.count_workflows(query)).count

    async def wait(self, prefix: str, expected: int, within: float = 180) -> float:
        """Wait until `expected` journeys under `prefix` are recorded and, with `client`, have run
        their first task; the seconds it took. (A journey started through the API is recorded
        before the worker has run it.)"""
        began = time.perf_counter()
        deadline = began + within
        probes = [("recorded", self._recorded)]
        if self.client is not None:
            probes.append(("run", self.waiting))
        for what, count_of in probes:
            while (count := await count_of(prefix)) < expected:
                if time.perf_counter() > deadline:
                    raise RuntimeError(
                        f"only {count} of {expected} journeys ({prefix}*) {what} in {within:.0f} s"
                    )
                await asyncio.sleep(0.1)
        if self.client is None:
            # The workflow task after the recording (the timer) follows at once; let it land.
            await asyncio.sleep(0.3)
        return time.perf_counter() - began

    async def _recorded(self, prefix: str) -> int:
        return await asyncio.to_thread(self.started, prefix)


@dataclass
class System:
    env: WorkflowEnvironment
    raw: Client
    """A client of its own for the raw measurements, as the API process has its own."""
    api: httpx.AsyncClient
    lean: LeanClient
    """The start rounds' and the burst's POSTs (bench/http.py: a fraction of httpx's CPU)."""
    api_url: str
    api_command: list[str]
    worker_mode: str
    store: Store
    settings: Settings
    settled: Settled
    tmp: Path
    cpu: CpuMeter
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    """Prefix of this run's invoice ids: a shared database may hold earlier runs' rows."""
    worker_pid: int = 0

    def worker_rss_mb(self) -> float:
        """Resident memory of the worker process (this process when the worker runs inline)."""
        status = Path(f"/proc/{self.worker_pid or os.getpid()}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kib / 1024

    @property
    def database_kind(self) -> str:
        return self.settings.database.split(":", 1)[0].split("+", 1)[0]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS[role]}"}


async def _wait_for_api(
    process: asyncio.subprocess.Process, url: str, log: Path, within: float = 90
) -> None:
    deadline = time.perf_counter() + within
    async with httpx.AsyncClient(trust_env=False, timeout=2) as probe:
        while True:
            if process.returncode is not None:
                raise RuntimeError(
                    f"the API exited with status {process.returncode}:\n{_tail(log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await probe.get(f"{url}/healthz")).status_code == 200:
                    return
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the API did not answer within {within:.0f} s:\n{_tail(log)}")
            await asyncio.sleep(0.2)


def _log_file(path: Path) -> IO[bytes]:
    return open(path, "wb")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _stop(process: asyncio.subprocess.Process, name: str, log: Path) -> None:
    """SIGINT: uvicorn's graceful shutdown (and cProfile's dump); the worker stops on it too."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout=20)
        except TimeoutError:
            note(f"{name} did not stop in 20 s; killing it")
            process.kill()
            await process.wait()
    if process.returncode not in (0, -signal.SIGINT):
        note(f"{name} exited with status {process.returncode}:\n{_tail(log)}")


@contextlib.asynccontextmanager
async def running_system(
    concurrency: int,
    *,
    worker_mode: str = "process",
    profile_api: Path | None = None,
    portal: bool = True,
) -> AsyncIterator[System]:
    """The whole system, stopped in reverse order (API, worker, dev server) on the way out.

    `worker_mode`: "process" runs `python -m cli worker` as a child, as `dunwell dev` does;
    "inline" runs `build_workers` in this process, as the end-to-end tests do.
    """
    with tempfile.TemporaryDirectory(prefix="dunwell-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        keys = new_key("bench")  # every payload encrypted, as in production
        portal_secret = secrets.token_urlsafe(32) if portal else ""
        keyring = Keyring.parse(keys)
        # The read model: SQLite in the run's directory, or DUNWELL_DATABASE_URL (PostgreSQL).
        database = os.environ.get("DUNWELL_DATABASE_URL") or f"sqlite:///{tmp / 'dunwell.db'}"
        migrate(database)
        engine = make_engine(database)
        store = Store(make_sessionmaker(engine))
        store.ensure_shipped_policies(SHIPPED_POLICIES)
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            note("starting the Temporal dev server (in memory)")
            with stdout_to(tmp / "temporal.log"):
                env = await WorkflowEnvironment.start_local(
                    dev_server_existing_path=temporal_binary(),
                    search_attributes=SEARCH_ATTRIBUTES,
                    data_converter=data_converter(keyring),
                    ui=False,
                    dev_server_log_level="error",
                )
            stack.push_async_callback(env.shutdown)
            target = env.client.service_client.config.target_host
            port = free_port()
            settings = Settings(
                encryption_keys=SecretStr(keys),
                home=tmp,
                database_url=database,
                api_host="127.0.0.1",
                api_port=port,
                api_keys=",".join(f"{role}:{key}" for role, key in KEYS.items()),
                temporal_address=target,
                task_queue=task_queue,
                log_level="WARNING",
                portal_secret=SecretStr(portal_secret) if portal else None,
            )
            child_env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")},
                "DUNWELL_HOME": str(tmp),
                "DUNWELL_DATABASE_URL": database,
                "DUNWELL_API_HOST": "127.0.0.1",
                "DUNWELL_API_PORT": str(port),
                "DUNWELL_API_KEYS": settings.api_keys.get_secret_value(),
                "DUNWELL_TEMPORAL_ADDRESS": target,
                "DUNWELL_TASK_QUEUE": task_queue,
                "DUNWELL_ENCRYPTION_KEYS": keys,
                "DUNWELL_LOG_LEVEL": "WARNING",
                # Every message carries the debtor's personal link, as under `dunwell dev`.
                **({"DUNWELL_PORTAL_SECRET": portal_secret} if portal else {}),
            }

            worker_pid = 0
            if worker_mode == "inline":
                executor = stack.enter_context(
                    ThreadPoolExecutor(ACTIVITY_THREADS, thread_name_prefix="activity")
                )
                senders = build_senders(settings)  # no provider credentials: the outbox
                workers = build_workers(env.client, store, senders, task_queue, executor, settings)
                await stack.enter_async_context(running(workers))
            elif worker_mode == "process":
                note("starting the worker: -m cli worker")
                worker_process = await _spawn(
                    [sys.executable, "-m", "cli", "worker"], child_env, tmp / "worker.log"
                )
                stack.push_async_callback(_stop, worker_process, "the worker", tmp / "worker.log")
                worker_pid = worker_process.pid
            else:
                raise ValueError(f"unknown worker mode {worker_mode!r}")

            command = [sys.executable, "-m", "cli", "api"]
            if profile_api is not None:
                command = [sys.executable, "-m", "cProfile", "-o", str(profile_api), *command[1:]]
            note(f"starting the API: {' '.join(command[1:])} on 127.0.0.1:{port}")
            api_process = await _spawn(command, child_env, tmp / "api.log")
            url = f"http://127.0.0.1:{port}"
            system = System(
                env=env,
                raw=await connect(target, "default", keyring),
                api=httpx.AsyncClient(
                    base_url=url,
                    limits=httpx.Limits(
                        max_connections=concurrency, max_keepalive_connections=concurrency
                    ),
                    timeout=60,
                    trust_env=False,
                ),
                lean=LeanClient(url, concurrency),
                api_url=url,
                api_command=command,
                worker_mode=worker_mode,
                store=store,
                settings=settings,
                settled=Settled(engine, env.client),
                tmp=tmp,
                cpu=CpuMeter(api_process.pid, worker_pid, child_pids("temporal")),
                worker_pid=worker_pid,
            )

            stack.push_async_callback(_stop, api_process, "the API", tmp / "api.log")
            stack.push_async_callback(system.api.aclose)
            stack.push_async_callback(system.lean.aclose)
            await _wait_for_api(api_process, url, tmp / "api.log")
            yield system


async def _spawn(command: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with _log_file(log) as out:
        return await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process `pid`; 0 if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def child_pids(name: str) -> list[int]:
    """Children of this process whose command name is `name` (the dev server is one)."""
    found = []
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and comm == name:
            found.append(int(entry.name))
    return found


@dataclass
class CpuMeter:
    """CPU seconds of this process (client, worker), the API process and the dev server."""

    api_pid: int
    """0: no API process (the surge)."""
    worker_pid: int
    """0: the worker runs in this process."""
    temporal_pids: list[int]

    def read(self) -> dict[str, float]:
        return {
            "bench": time.process_time(),
            "api": process_cpu(self.api_pid) if self.api_pid else 0.0,
            "worker": process_cpu(self.worker_pid) if self.worker_pid else 0.0,
            "temporal": sum(process_cpu(pid) for pid in self.temporal_pids),
        }
