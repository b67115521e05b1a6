"""With encryption on, the worker refuses unencrypted signals and updates: a payment typed into
the Temporal CLI by someone without the key changes nothing, and the worker logs it as refused."""

from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.channels import OutboxSender
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from temporal_client import data_converter
from tests.keys import TEST_KEYRING
from worker import build_workers, running
from workflows.journey import InvoiceJourney, start_search_attributes, workflow_id
from workflows.models import Customer, Invoice, JourneyInput, OpenDispute, PaymentReceived
from workflows.policy import STANDARD_POLICY, Channel

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_plaintext_payment_changes_nothing_and_is_logged_as_refused(
    dev_server_env: WorkflowEnvironment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = dev_server_env.client.service_client.config.target_host
    worker_client = await Client.connect(
        target, data_converter=data_converter(TEST_KEYRING, refuse_plain=True)
    )
    plain = await Client.connect(target, data_converter=pydantic_data_converter)  # no key
    ours = dev_server_env.client
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    store = Store(make_sessionmaker(make_engine(url)))
    queue = f"plain-{uuid.uuid4().hex[:8]}"
    invoice_id = f"PLAIN-{uuid.uuid4().hex[:8]}"
    due = datetime.now(UTC) + timedelta(days=30)
    invoice = Invoice(
        invoice_id=invoice_id, amount=Decimal("250.00"), currency="EUR", issued_on=date.today(),
        due_on=due.date(), due_at=due, payment_url="https://pay.example.com/x",
        customer=Customer(id="C-1", name="Debtor", email="d@example.com"),
    )  # fmt: skip
    senders = dict.fromkeys(Channel, OutboxSender())
    with ThreadPoolExecutor(8) as executor:
        workers = build_workers(worker_client, store, senders, queue, executor)  # type: ignore[arg-type]
        async with running(workers):
            handle = await ours.start_workflow(
                InvoiceJourney.run,
                JourneyInput(invoice=invoice, policy=STANDARD_POLICY, actor="test"),
                id=workflow_id(invoice_id),
                task_queue=queue,
                search_attributes=start_search_attributes(invoice),
            )
            caplog.set_level(logging.WARNING)
            forged = plain.get_workflow_handle(handle.id)
            await forged.signal(
                "payment_received", PaymentReceived(amount=Decimal("250.00"), reference="CLI-1")
            )
            with pytest.raises(WorkflowUpdateFailedError):
                await forged.execute_update("open_dispute", OpenDispute(reason="typed in the CLI"))
            await asyncio.sleep(1)
            status = await handle.query(InvoiceJourney.status)
            assert (status.outstanding, status.payments, status.outcome) == (
                Decimal("250.00"), [], None
            )  # fmt: skip
            assert "dropping the signal" in caplog.text

            # The same payment, encrypted by a client with the key, is applied.
            await handle.signal(
                InvoiceJourney.payment_received,
                PaymentReceived(amount=Decimal("250.00"), reference="BANK-1"),
            )
            result = await handle.result()
            assert result.outstanding == Decimal("0")
