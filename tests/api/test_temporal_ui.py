"""What an operator reads in the Temporal UI: each journey's summary, its current details, and
the history in words (timers, activities), decoded through the same codec as the UI's."""

from __future__ import annotations

from datetime import date

import pytest
import temporalio.api.sdk.v1
from temporalio.api.common.v1 import Payload

from tests.api.conftest import System, invoice_body, new_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_journey_reads_in_words_in_the_temporal_ui(system: System) -> None:
    invoice_id = new_id()
    body = invoice_body(invoice_id)  # fast: overdue_1 now, overdue_2 2 s later, final_notice 1 h
    assert (await system.post("/v1/invoices", body, "integration")).status_code == 201
    await system.until(invoice_id, lambda v: any(
        e["kind"] == "message" and e["detail"]["template"] == "overdue_2"
        for e in v["timeline"]))  # fmt: skip
    # A payment: the journey records it with an activity of its own (a started journey has
    # written nothing yet: the API recorded its start, each message its own line).
    payment = {"amount": "50.00", "reference": "BANK-UI-1"}
    paid = await system.post(f"/v1/invoices/{invoice_id}/payments", payment, "integration")
    assert paid.status_code == 200, paid.text
    client = system.env.client
    handle = client.get_workflow_handle(f"invoice-{invoice_id}")

    described = await handle.describe()
    due_on = date.fromisoformat(body["due_on"]).isoformat()
    assert await described.static_summary() == f"{invoice_id} · EUR 1250.00 · due {due_on}"
    metadata = await handle.query(
        "__temporal_workflow_metadata", result_type=temporalio.api.sdk.v1.WorkflowMetadata
    )
    details = metadata.current_details
    assert "**reminding** · outstanding EUR 1200.00" in details, details  # markdown in the UI
    assert "next: final_notice" in details, details

    async def words(payload: Payload) -> str:
        [text] = await client.data_converter.decode([payload], [str])
        return str(text)

    history = await handle.fetch_history()
    summaries = [
        await words(e.user_metadata.summary)
        for e in history.events
        if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
    ]
    assert "email · friendly · overdue_1" in summaries, summaries
    assert "sms · neutral · overdue_2" in summaries, summaries
    assert any(
        s.startswith("wait until ") and s.endswith(" for final_notice") for s in summaries
    ), summaries
    assert [s for s in summaries if s.startswith("record ")] == ["record payment"], summaries
