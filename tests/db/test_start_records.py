"""The API's start records, written in batches (`api.start_records`): requests that wait together
share a transaction, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from api.start_records import record_start
from db.store import Store
from tests.db.test_store import invoice
from workflows.journey.start import start_record
from workflows.models import JourneyInput, RecordRequest
from workflows.policy import STANDARD_POLICY

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def started(invoice_id: str) -> RecordRequest:
    start = JourneyInput(
        invoice=invoice(invoice_id), policy=STANDARD_POLICY, actor="api", fingerprint="fp"
    )
    return start_record(start, AT)


@pytest.mark.asyncio
async def test_starts_written_together_are_each_recorded_once_and_answered_alone(
    store: Store,
) -> None:
    records = [started(f"INV-{n}") for n in range(20)]
    records[7] = records[7].model_copy(update={"invoice": None})  # cannot be written
    records.append(started("INV-3"))  # the same start again

    answers = await asyncio.gather(
        *(record_start(store, r) for r in records), return_exceptions=True
    )

    assert [n for n, a in enumerate(answers) if a is not None] == [7]
    assert isinstance(answers[7], ValueError)
    assert store.get_invoice("INV-7") is None
    for n in (0, 3, 19):
        row = store.get_invoice(f"INV-{n}")
        assert row is not None and row.next_action is not None
        assert [e.kind for e in store.timeline(f"INV-{n}")] == ["journey_started"]
