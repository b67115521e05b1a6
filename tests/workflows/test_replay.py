"""Stored histories of full journeys replay with the current code: a change to the order of timers
or activities that is not behind `workflow.patched` fails here before it can break a journey that
is already running."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.keys import TEST_CONVERTER
from tests.payloads import payloads
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
        "message_queued_while_paused_v5",
        "plan_continued_as_new_run1_v6",
        "plan_continued_as_new_run2_v6",
        "debtor_replied_and_disputed_v7",
        "reached_nobody_v8",  # fall-back-to-another-channel's branch before it
        "paid_during_the_last_record_v8",  # record-the-last-events's branch before it
        "standard_ladder_v9",  # the first record in the first task (its patch's new branch)
        "started_by_the_api_v13",  # the-api-records-the-start's branch before it
        "started_by_the_api_v13new",  # and its new branch
    }


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[InvoiceJourney, InstalmentPlan],
        data_converter=TEST_CONVERTER,
        workflow_runner=workflow_runner(strict=True),
    )
    text = await asyncio.to_thread(path.read_text)
    history = WorkflowHistory.from_json(_workflow_id(path.stem, text), text)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


STANDALONE = {"plan_continued_as_new": "invoice-record-plan_continued_as_new-plan-can-plan-1"}
"""Workflows recorded on their own (no parent to name them): their ids, as `record.py` set them."""


def _workflow_id(stem: str, text: str) -> str:
    """The journey's own id where it matters: its plans' ids and its message keys contain it.

    A journey's id is `invoice-{InvoiceId}`, and the InvoiceId search attribute (never encrypted)
    is in the start event; older histories fall back to their child's id, or the file's name.
    """
    for prefix, workflow_id in STANDALONE.items():
        if stem.startswith(prefix):
            return workflow_id
    events = json.loads(text)["events"]
    started = events[0].get("workflowExecutionStartedEventAttributes", {})
    if started.get("workflowType", {}).get("name") == "InvoiceJourney":
        field = started.get("searchAttributes", {}).get("indexedFields", {}).get("InvoiceId")
        if field:
            return f"invoice-{json.loads(base64.b64decode(field['data']))}"
    for event in events:
        child = event.get("startChildWorkflowExecutionInitiatedEventAttributes")
        if child:
            return re.sub(r"-plan-\d+$", "", child["workflowId"])
    return f"invoice-{stem}"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_stored_history_is_encrypted(path: Path) -> None:
    """As production histories are: every payload but Temporal's own bookkeeping."""
    found = payloads(json.loads(path.read_text()))
    kinds = {base64.b64decode(p["metadata"]["encoding"]) for p in found}
    assert kinds == {b"binary/encrypted"}
