"""What dunwell stands on goes down mid-send: PostgreSQL itself (a throwaway cluster made with the
machine's initdb/pg_ctl, stopped with `-m immediate` and started again) and the Temporal dev server
(SIGKILLed and started again on its database file). Nothing is lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client

from api.app import create_app
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from devserver import temporal_command, wait_for_port
from fake_providers import FakeProviders
from settings import Settings
from tests.api.conftest import KEYS, end_journeys, invoice_body, new_id, system_settings
from tests.faults.conftest import (
    Harness,
    assert_nothing_lost_or_doubled,
    free_port,
    postgres_binaries,
    stop_process,
)
from tests.keys import TEST_CONVERTER
from workflows.journey import workflow_id
from workflows.policy import SHIPPED_POLICIES

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Cluster:
    """A PostgreSQL cluster of our own, run as the `postgres` user, on a free port."""

    def __init__(self) -> None:
        self.bin = postgres_binaries()
        self.dir = Path(tempfile.mkdtemp(prefix="dunwell-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = Cluster()
    made.create()
    made.start()
    try:
        yield made
    finally:
        made.remove()


async def test_postgresql_stopped_and_restarted_mid_send_loses_and_doubles_nothing(
    cluster: Cluster, dev_server_env: object, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    migrate(cluster.url)
    client: Client = dev_server_env.client  # type: ignore[attr-defined]
    harness = Harness(
        client=client,
        store=Store(make_sessionmaker(make_engine(cluster.url))),
        providers=fake_providers,
        database=cluster.url,
        tmp=tmp_path,
        temporal_target=client.service_client.config.target_host,
    )
    try:
        harness.start_worker()
        await harness.start_journeys(20, lead_s=6, spread_s=10)
        await asyncio.sleep(9)  # mid-send
        began = time.monotonic()
        cluster.stop("immediate")  # no checkpoint, connections cut
        await asyncio.sleep(10)
        cluster.start()
        down_s = time.monotonic() - began

        await harness.wait_until_sent(timeout_s=150)

        figures = harness.figures("postgresql-down", down_s=round(down_s, 1))
        assert_nothing_lost_or_doubled(figures)
        with make_engine(cluster.url).connect() as connection:  # the journeys closed nothing
            open_ = connection.execute(sa.text("SELECT count(*) FROM invoices")).scalar_one()
        assert open_ == 20
    finally:
        await harness.end()


class DevServer:
    """A Temporal dev server of our own, on its own database file, that a test can kill."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        settings = Settings(temporal_port=self.port, temporal_ui_port=free_port())
        self.command = [*temporal_command(settings, home), "--headless"]
        self.log = home / "temporal.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out)
        wait_for_port(self.port, "the Temporal dev server", self.process, timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process)


async def test_the_temporal_server_killed_and_restarted_loses_and_doubles_nothing(
    fake_providers: FakeProviders, tmp_path: Path
) -> None:
    server = DevServer(tmp_path)
    await asyncio.to_thread(server.start)
    client = await Client.connect(f"127.0.0.1:{server.port}", data_converter=TEST_CONVERTER)
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    harness = Harness(
        client=client,
        store=Store(make_sessionmaker(make_engine(url))),
        providers=fake_providers,
        database=url,
        tmp=tmp_path,
        temporal_target=f"127.0.0.1:{server.port}",
    )
    try:
        harness.start_worker()
        await harness.start_journeys(20, lead_s=6, spread_s=10)
        await asyncio.sleep(9)  # mid-send
        server.kill()
        await asyncio.sleep(5)
        await asyncio.to_thread(server.start)

        await harness.wait_until_sent(timeout_s=150)

        figures = harness.figures("temporal-killed")
        assert_nothing_lost_or_doubled(figures)
    finally:
        await harness.end()
        server.stop()


async def test_a_start_the_database_could_not_record_is_recorded_by_the_retry(
    cluster: Cluster, dev_server_env: object, fake_providers: FakeProviders, tmp_path: Path
) -> None:
    """PostgreSQL stops between the journey's start and its record: the POST answers 503 saying
    the journey has started and to send it again; the retry, once the database is back, records
    it and starts nothing more (no worker runs here: the record is the API's)."""
    migrate(cluster.url)
    client: Client = dev_server_env.client  # type: ignore[attr-defined]
    store = Store(make_sessionmaker(make_engine(cluster.url)))
    store.ensure_shipped_policies(SHIPPED_POLICIES)
    task_queue = f"outage-{uuid.uuid4().hex[:8]}"
    settings = system_settings(tmp_path, fake_providers, task_queue)
    app = create_app(settings, temporal=client, store=store)
    headers = {"Authorization": f"Bearer {KEYS['integration']}"}
    first, second = new_id(), new_id()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            try:
                body = invoice_body(first, policy="standard", due_in=86400)
                answer = await api.post("/v1/invoices", json=body, headers=headers)
                assert answer.status_code == 201, answer.text  # and the policy is cached
                cluster.stop("immediate")
                body = invoice_body(second, policy="standard", due_in=86400)
                answer = await api.post("/v1/invoices", json=body, headers=headers)
                assert answer.status_code == 503, answer.text
                assert "has started" in answer.json()["detail"]
                assert "Send it again (the same request" in answer.json()["detail"]
                assert answer.headers["Retry-After"]
                await client.get_workflow_handle(workflow_id(second)).describe()  # it did

                cluster.start()
                again = await api.post("/v1/invoices", json=body, headers=headers)
                assert again.status_code == 200, again.text
                row = store.get_invoice(second)
                assert row is not None and row.next_action is not None
                assert [e.kind for e in store.timeline(second)] == ["journey_started"]
                runs = [e async for e in client.list_workflows(f'WorkflowId="invoice-{second}"')]
                assert len(runs) == 1
            finally:
                await end_journeys(client, task_queue)
