"""A journey the API accepted is readable at once: the API records its start before it answers
(`JourneyInput.start_recorded`), so it is in the read model (GET, the lists, the console) before
any worker has run it. A journey Temporal has but the read model lacks (started by another client,
its record lost) is read from its history: never a 404 or a 503 for a journey Temporal has."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.channels import build_senders
from api.app import create_app
from api.journeys import fingerprint
from api.schemas import InvoiceIn
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from settings import Settings
from tests.api.conftest import KEYS, end_journeys, invoice_body, new_id, system_settings
from worker import build_workers, running
from workflows.journey import InvoiceJourney, workflow_id
from workflows.models import JourneyInput
from workflows.policy import SHIPPED_POLICIES

pytestmark = pytest.mark.asyncio(loop_scope="session")

INTEGRATION = {"Authorization": f"Bearer {KEYS['integration']}"}
AGENT = {"Authorization": f"Bearer {KEYS['agent']}"}


@dataclass
class NoWorker:
    """The API on the dev server with no worker polling its task queue (yet)."""

    api: httpx.AsyncClient
    store: Store
    client: Client
    settings: Settings

    async def start_worker_until(self, invoice_id: str, kind: str) -> None:
        """Run a worker until the journey's history holds an event of `kind` (an attribute)."""
        with ThreadPoolExecutor(max_workers=4) as executor:
            workers = build_workers(
                self.client,
                self.store,
                build_senders(self.settings),
                self.settings.task_queue,
                executor,
                self.settings,
            )
            async with running(workers):
                for _ in range(200):
                    if await self.history_has(invoice_id, kind):
                        return
                    await asyncio.sleep(0.05)
        raise AssertionError(f"the journey's history never had {kind}")

    async def history_has(self, invoice_id: str, kind: str) -> bool:
        history = await self.client.get_workflow_handle(workflow_id(invoice_id)).fetch_history()
        return any(e.HasField(kind) for e in history.events)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def no_worker(
    dev_server_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    task_queue: str,
    tmp_path: Path,
) -> AsyncIterator[NoWorker]:
    settings = system_settings(tmp_path, fake_providers, task_queue)
    migrate(settings.database)
    store = Store(make_sessionmaker(make_engine(settings.database)))
    store.ensure_shipped_policies(SHIPPED_POLICIES)
    app = create_app(settings, temporal=dev_server_env.client, store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
            try:
                yield NoWorker(api, store, dev_server_env.client, settings)
            finally:
                await end_journeys(dev_server_env.client, task_queue)


def kinds(view: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in view["timeline"]]


async def test_an_accepted_journey_is_in_the_read_model_before_any_worker_runs_it(
    no_worker: NoWorker,
) -> None:
    api, invoice_id = no_worker.api, new_id()
    body = invoice_body(invoice_id, policy="standard", due_in=10 * 86400)
    created = await api.post("/v1/invoices", json=body, headers=INTEGRATION)
    assert created.status_code == 201, created.text
    first_step = created.json()["next_action"]
    assert first_step is not None and first_step["step"] == "before_due"

    # No worker polls this task queue yet: this is the read model, not the journey.
    row = no_worker.store.get_invoice(invoice_id)
    assert row is not None and row.stage.value == "scheduled"
    read = await api.get(f"/v1/invoices/{invoice_id}", headers=AGENT)
    assert read.status_code == 200, read.text
    assert read.json()["next_action"] == first_step and kinds(read.json()) == ["journey_started"]
    listed = await api.get("/v1/invoices", params={"customer_id": f"C-{invoice_id}"}, headers=AGENT)
    assert [i["invoice_id"] for i in listed.json()["items"]] == [invoice_id]
    assert not await no_worker.history_has(invoice_id, "workflow_task_completed_event_attributes")

    # The worker's first task writes nothing (no local activity, no activity) and sleeps.
    await no_worker.start_worker_until(invoice_id, "timer_started_event_attributes")
    assert not await no_worker.history_has(invoice_id, "activity_task_scheduled_event_attributes")
    history = await no_worker.client.get_workflow_handle(workflow_id(invoice_id)).fetch_history()
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events]
    assert "core_local_activity" not in markers
    read = await api.get(f"/v1/invoices/{invoice_id}", headers=AGENT)
    assert read.json()["next_action"] == first_step and kinds(read.json()) == ["journey_started"]


async def test_a_start_whose_record_was_lost_is_read_from_temporal_and_recorded_by_a_retry(
    no_worker: NoWorker,
) -> None:
    """The API stopped between starting the journey and recording it: GET answers from the
    journey's history, and the client's retry of the same POST records it (starting nothing)."""
    api, invoice_id = no_worker.api, new_id()
    body = invoice_body(invoice_id, policy="standard", due_in=10 * 86400)
    invoice = InvoiceIn.model_validate(body).to_invoice()
    policy = no_worker.store.get_policy("standard")
    assert policy is not None
    await no_worker.client.start_workflow(  # what the API does before recording
        InvoiceJourney.run,
        JourneyInput(
            invoice=invoice,
            policy=policy,
            actor="billing-system",
            fingerprint=fingerprint(invoice),
            start_recorded=True,
        ),
        id=workflow_id(invoice_id),
        task_queue=no_worker.settings.task_queue,
        memo={"fingerprint": fingerprint(invoice)},
    )
    read = await api.get(f"/v1/invoices/{invoice_id}", headers=AGENT)
    assert read.status_code == 200, read.text
    assert read.json()["stage"] == "scheduled" and no_worker.store.get_invoice(invoice_id) is None
    unknown = await api.get("/v1/invoices/RDY-NEVER-POSTED", headers=AGENT)
    assert unknown.status_code == 404

    again = await api.post("/v1/invoices", json=body, headers=INTEGRATION)
    assert again.status_code == 200, again.text
    row = no_worker.store.get_invoice(invoice_id)
    assert row is not None and row.next_action is not None
    timeline = no_worker.store.timeline(invoice_id)
    assert [(e.kind, e.actor) for e in timeline] == [("journey_started", "billing-system")]
