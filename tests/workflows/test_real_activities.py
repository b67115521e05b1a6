"""Journeys on the real worker (`worker.build_workers`): the real delivery and record activities,
SQLite, and the providers' SDKs against the fake SendGrid and Twilio, in the time-skipping server.

The other workflow tests use fake activities that stand in for `activities/messaging.py`; these
run the real ones where the journey depends on what they answer (a refused address, an opt-out,
the preferred channel), so the fakes cannot drift from them unnoticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.channels import build_senders
from db.session import make_engine, make_sessionmaker, migrate
from db.store import OptOut, Store
from fake_providers import FakeProviders
from tests.api.conftest import system_settings
from tests.workflows.conftest import FakeActivities, Journeys, within_seconds
from worker import build_workers, running
from workflows.journey import InvoiceJourney
from workflows.models import DisputeOutcome, OpenDispute, ResolveDispute
from workflows.policy import SHIPPED_POLICIES

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Real:
    journeys: Journeys
    store: Store
    providers: FakeProviders

    def sent(self, invoice_id: str) -> list[tuple[str, str, str]]:
        """(step, channel, status) of each message of the invoice, oldest first."""
        messages = reversed(self.store.list_messages(invoice_id))
        return [(m.key.split(":")[-2], m.channel, m.status) for m in messages]

    def kinds(self, invoice_id: str) -> list[str]:
        return [e.kind for e in self.store.timeline(invoice_id)]


@pytest_asyncio.fixture(loop_scope="session")
async def real(
    time_skipping_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    task_queue: str,
    tmp_path: Path,
) -> AsyncIterator[Real]:
    settings = system_settings(tmp_path, fake_providers, task_queue).model_copy(
        update={"twilio_whatsapp_from": "+14155238886"}
    )
    migrate(settings.database)
    store = Store(make_sessionmaker(make_engine(settings.database)))
    store.ensure_shipped_policies(SHIPPED_POLICIES)
    client = time_skipping_env.client
    journeys = Journeys(time_skipping_env, task_queue, FakeActivities())
    with ThreadPoolExecutor(max_workers=8) as executor:
        workers = build_workers(client, store, build_senders(settings), task_queue, executor)
        async with running(workers):
            try:
                yield Real(journeys, store, fake_providers)
            finally:
                await journeys.finish()


def invoice_of(handle_id: str) -> str:
    return handle_id.removeprefix("invoice-")


async def test_an_address_the_provider_refuses_sends_the_step_by_sms_and_the_rest_too(
    real: Real,
) -> None:
    # The fake SendGrid refuses `bounce…` addresses as invalid, as SendGrid does: permanent.
    handle = await real.journeys.start(
        due_in=timedelta(days=5), customer={"email": "bounce@devries.example"}
    )
    invoice_id = invoice_of(handle.id)
    await real.journeys.until(lambda: len(real.sent(invoice_id)) == 3, step=timedelta(hours=2))
    assert real.sent(invoice_id) == [
        ("before_due", "email", "failed"),
        ("before_due", "sms", "sent"),
        ("overdue_1", "sms", "sent"),  # an email step: the refused address is not tried again
    ]
    assert "channel_fallback" in real.kinds(invoice_id)
    texts = [m for m in real.providers.received if m["provider"] == "twilio"]
    assert any(invoice_id in str(m["body"]) for m in texts)


async def test_a_number_that_said_stop_gets_no_text_and_the_email_still_goes(real: Real) -> None:
    number = "+316" + str(abs(hash(real.journeys.task_queue)))[:8]
    real.store.apply_opt_change(
        f"test:{number}", OptOut(number, "sms", "debtor", "replied STOP"), True
    )
    # overdue_2 (+7 days: email and SMS) is due at once, and overdue_3 (+14) is not: 12 days
    # leave room for a weekend and holidays, which move a step to the next working day (the
    # test server's clock is shared by the session, so its weekday varies from run to run).
    handle = await real.journeys.start(due_in=timedelta(days=-12), customer={"phone": number})
    invoice_id = invoice_of(handle.id)
    await real.journeys.until(lambda: len(real.sent(invoice_id)) == 1, step=timedelta(minutes=10))
    await real.journeys.sleep(timedelta(hours=1))

    assert real.sent(invoice_id) == [("overdue_2", "email", "sent")]
    texts = [e.detail for e in real.store.timeline(invoice_id)
             if e.kind == "message" and e.detail["channel"] == "sms"]  # fmt: skip
    assert [(t["status"], "opted out" in t["error"]) for t in texts] == [("failed", True)]
    assert [m for m in real.providers.received if m["to"] == number] == []


async def test_the_preferred_channel_goes_first_when_a_step_falls_back(real: Real) -> None:
    handle = await real.journeys.start(
        due_in=timedelta(days=5),
        customer={"email": "bounce@devries.example", "preferred_channel": "whatsapp"},
    )
    invoice_id = invoice_of(handle.id)

    # Counted once the provider has answered: a claimed row is still being sent.
    def answered() -> int:
        return len([m for m in real.sent(invoice_id) if m[2] != "claimed"])

    await real.journeys.until(lambda: answered() >= 2, step=timedelta(hours=2))
    # before_due is an email step; refused, it goes once to the other channels, preferred first.
    assert real.sent(invoice_id)[:2] == [
        ("before_due", "email", "failed"),
        ("before_due", "whatsapp", "sent"),
    ]


async def test_a_second_dispute_gets_its_own_review_message(real: Real) -> None:
    # Overdue already: the journey catches up with a reminder at once, and each review goes out
    # as soon as its dispute is resolved, so nothing here waits on skipped time.
    handle = await real.journeys.start(due_in=timedelta(days=-2))
    invoice_id = invoice_of(handle.id)
    await within_seconds(10, lambda: len(real.sent(invoice_id)) >= 1)

    def reviews() -> list[tuple[str, str, str]]:
        """The review messages the provider has answered for (a claimed one is under way)."""
        return [
            m
            for m in real.sent(invoice_id)
            if m[0].startswith("dispute_review") and m[2] != "claimed"
        ]

    async def dispute_rejected(reason: str, reviews_then: int) -> None:
        await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason=reason))
        await handle.execute_update(
            InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
        )
        await within_seconds(10, lambda: len(reviews()) == reviews_then)

    await dispute_rejected("damaged goods", 1)
    await dispute_rejected("wrong quantity", 2)

    # Each decision is told once, on the debtor's channel; the second is not taken for a repeat.
    assert [(channel, status) for _, channel, status in reviews()] == [("email", "sent")] * 2


async def test_a_journey_whose_start_record_was_lost_records_it_with_its_first_message(
    real: Real,
) -> None:
    """Started as the API starts it, but the API stopped before recording the start: the first
    message stores the invoice's row and `journey_started` before it is sent (each message
    needs the row), so nothing waits on a row that never comes and the timeline is whole."""
    handle = await real.journeys.start(due_in=timedelta(days=5), start_recorded=True)
    invoice_id = invoice_of(handle.id)
    assert real.store.get_invoice(invoice_id) is None
    await real.journeys.until(lambda: len(real.sent(invoice_id)) == 1, step=timedelta(hours=2))

    assert real.sent(invoice_id) == [("before_due", "email", "sent")]
    row = real.store.get_invoice(invoice_id)
    assert row is not None and row.policy_name == "standard"
    assert real.kinds(invoice_id)[:2] == ["journey_started", "message"]
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    assert real.kinds(invoice_id).count("journey_started") == 1
