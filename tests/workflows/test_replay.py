"""Stored histories of full journeys replay with the current code: a change to the order of timers
or activities that is not behind `workflow.patched` fails here before it can break a journey that
is already running."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from temporal_client import DATA_CONVERTER
from workflows.journey import InvoiceJourney
from workflows.plan import InstalmentPlan
from workflows.sandbox import workflow_runner

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "standard_ladder",
        "dispute_adjusted_then_paid",
        "plan_defaulted_v3",
        "plan_defaulted_plan_v3",
    }


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[InvoiceJourney, InstalmentPlan],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner(),
    )
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(_workflow_id(path.stem, text), text)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def _workflow_id(stem: str, text: str) -> str:
    """The journey's own id where it matters: the ids of its plans are derived from it."""
    for event in json.loads(text)["events"]:
        started = event.get("startChildWorkflowExecutionInitiatedEventAttributes")
        if started:
            return re.sub(r"-plan-\d+$", "", started["workflowId"])
    return f"invoice-{stem}"
