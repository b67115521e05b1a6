"""A journey the API accepted is readable at once, before any worker has recorded it (a burst of
starts the worker is still catching up on): never a 404 or a 503 for a journey Temporal has."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.channels import build_senders
from api.app import create_app
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from tests.api.conftest import KEYS, invoice_body, system_settings
from worker import build_workers, running
from workflows.policy import SHIPPED_POLICIES

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_an_accepted_journey_is_readable_before_the_worker_records_it(
    dev_server_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    task_queue: str,
    tmp_path: Path,
) -> None:
    settings = system_settings(tmp_path, fake_providers, task_queue)
    migrate(settings.database)
    store = Store(make_sessionmaker(make_engine(settings.database)))
    store.ensure_shipped_policies(SHIPPED_POLICIES)
    app = create_app(settings, temporal=dev_server_env.client, store=store)
    integration = {"Authorization": f"Bearer {KEYS['integration']}"}
    agent = {"Authorization": f"Bearer {KEYS['agent']}"}
    body = invoice_body(f"RDY-{task_queue}", policy="standard", due_in=10 * 86400)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            # No worker polls this task queue yet.
            created = await api.post("/v1/invoices", json=body, headers=integration)
            assert created.status_code == 201, created.text
            read = await api.get(f"/v1/invoices/{body['invoice_id']}", headers=agent)
            assert read.status_code == 200, read.text
            view = read.json()
            assert view["stage"] == "scheduled" and view["outstanding"] == body["amount"]
            assert store.get_invoice(body["invoice_id"]) is None  # not from the read model
            unknown = await api.get("/v1/invoices/RDY-NEVER-POSTED", headers=agent)
            assert unknown.status_code == 404

            with ThreadPoolExecutor(max_workers=4) as executor:
                workers = build_workers(
                    dev_server_env.client,
                    store,
                    build_senders(settings),
                    task_queue,
                    executor,
                    settings,
                )
                async with running(workers):
                    for _ in range(100):
                        if store.get_invoice(body["invoice_id"]) is not None:
                            break
                        await asyncio.sleep(0.1)
                    recorded = await api.get(f"/v1/invoices/{body['invoice_id']}", headers=agent)
                    kinds = [e["kind"] for e in recorded.json()["timeline"]]
                    assert "journey_started" in kinds
                    await dev_server_env.client.get_workflow_handle(
                        f"invoice-{body['invoice_id']}"
                    ).terminate("test finished")
