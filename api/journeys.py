"""Talking to journeys: start, signal, update; Temporal's errors turned into problems."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api import start_records
from api.problems import Problem, database_unavailable
from db.store import InvoiceView, Store
from settings import Settings
from workflows.journey import (
    InvoiceJourney,
    journey_summary,
    start_search_attributes,
    workflow_id,
)
from workflows.journey.start import start_record
from workflows.models import (
    ActionResult,
    ContactChanged,
    Invoice,
    JourneyInput,
    NextAction,
    RecordRequest,
    Stage,
)
from workflows.policy import Policy

# An update the worker has not answered by then gets a 503 rather than a hanging request.
UPDATE_TIMEOUT = timedelta(seconds=30)

# Refusals by the journey's state are 409; refusals of the values sent are 422.
_INVALID_INPUT = {"InvalidAmount", "InvalidUntil", "InvalidPromise", "InvalidArrangement"}


def fingerprint(invoice: Invoice) -> str:
    """The same invoice posted twice has the same fingerprint."""
    canonical = json.dumps(invoice.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    created: bool
    """False when this same invoice already had a journey."""
    next_action: NextAction | None = None
    """A new journey's first step."""
    row: InvoiceView | None = None
    """The existing journey's row, when it had one."""


async def start_journey(
    client: Client, store: Store, task_queue: str, invoice: Invoice, policy: Policy, actor: str
) -> Started:
    """Start the journey and record its start in the read model, so that it is readable at once
    and its worker writes no record of the start (`JourneyInput.start_recorded`).

    The same invoice again starts nothing; its start is recorded if it is not yet (a start whose
    record was lost, when the API stopped or the database failed in between)."""
    fp = fingerprint(invoice)
    at = datetime.now(UTC)  # before Temporal's start time, so the journey's own events follow
    start = JourneyInput(
        invoice=invoice, policy=policy, actor=actor, fingerprint=fp, start_recorded=True
    )
    if not await _start(client, task_queue, start):
        known = await run_in_threadpool(store.get_invoice, invoice.invoice_id)
        if known is None:
            found = await _start_event(client, invoice.invoice_id)
            if found is not None and found[0].start_recorded:
                await _record_start(store, found[0], found[1])
                known = await run_in_threadpool(store.get_invoice, invoice.invoice_id)
        return Started(created=False, row=known)
    record = start_record(start, at)
    await _record_start(store, start, at, record)
    return Started(created=True, next_action=record.snapshot.next_action)


async def _record_start(
    store: Store, start: JourneyInput, at: datetime, record: RecordRequest | None = None
) -> None:
    try:
        await start_records.record_start(store, record or start_record(start, at))
    except SQLAlchemyError as exc:
        if not database_unavailable(exc):
            raise
        raise Problem(
            503,
            f"The journey for invoice {start.invoice.invoice_id} has started, but the database "
            "did not answer, so it is not recorded yet. Send it again (the same request, or the "
            "same import): it is recorded then, and no second journey is started.",
        ) from exc


async def _start(client: Client, task_queue: str, start: JourneyInput) -> bool:
    """Start the journey; True when new, False when this same invoice already has one."""
    invoice, policy, fp = start.invoice, start.policy, start.fingerprint
    try:
        await client.start_workflow(
            InvoiceJourney.run,
            start,
            id=workflow_id(invoice.invoice_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=start_search_attributes(invoice),
            memo={"fingerprint": fp},
            static_summary=journey_summary(invoice),
            static_details=(
                f"policy {policy.name} v{policy.version} · customer {invoice.customer.id}"
            ),
        )
        return True
    except WorkflowAlreadyStartedError:
        description = await client.get_workflow_handle(workflow_id(invoice.invoice_id)).describe()
        existing = await description.memo_value("fingerprint", default=None)
        if existing != fp:
            raise Problem(
                409,
                f"Invoice {invoice.invoice_id} already has a journey with different details. "
                "Use a new invoice_id, or cancel the existing journey first.",
            ) from None
        return False


async def exists(client: Client, invoice_id: str) -> bool:
    """Whether Temporal has a journey for this invoice (running or closed)."""
    try:
        await client.get_workflow_handle(workflow_id(invoice_id)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def started_view(client: Client, invoice_id: str) -> InvoiceView | None:
    """A journey Temporal has but the read model has not recorded yet (started by another
    client, its worker still catching up; or its start record lost), as its start event tells
    it: scheduled, nothing paid. None when Temporal has no such journey."""
    found = await _start_event(client, invoice_id)
    if found is None:
        return None
    started, at = found
    invoice = started.invoice
    return InvoiceView(
        invoice_id=invoice.invoice_id,
        customer_id=invoice.customer.id,
        stage=Stage.scheduled,
        outcome=None,
        amount=invoice.amount,
        outstanding=invoice.amount,
        currency=invoice.currency,
        due_on=invoice.due_on,
        next_action=None,
        policy_name=started.policy.name,
        policy_version=started.policy.version,
        fingerprint=started.fingerprint,
        invoice=invoice,
        created_at=at,
        updated_at=at,
    )


async def _start_event(client: Client, invoice_id: str) -> tuple[JourneyInput, datetime] | None:
    """The journey's input and start time, from its history; None when Temporal has no such
    journey."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(invoice_id))
    try:
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [JourneyInput])
            return started, event.event_time.ToDatetime(tzinfo=UTC)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


async def currency_of(client: Client, store: Store, invoice_id: str) -> str:
    """The currency a journey was started with, read from its (decrypted) start event."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(invoice_id))
    try:
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [started] = await client.data_converter.decode(payloads, [JourneyInput])
            return str(started.invoice.currency)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise unknown_invoice(invoice_id) from None
        raise
    raise unknown_invoice(invoice_id)


def ui_link(settings: Settings | None, invoice_id: str) -> str | None:
    """The journey in the Temporal UI, when its address is known."""
    if settings is None or not settings.temporal_ui_url:
        return None
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id(invoice_id)}"


def unknown_invoice(invoice_id: str) -> Problem:
    return Problem(
        404, f"There is no invoice {invoice_id}; start its journey with POST /v1/invoices."
    )


async def _closed_problem(store: Store, invoice_id: str) -> Problem:
    return (await _not_taken(store, invoice_id)).problem


@dataclass(frozen=True)
class NotTaken:
    """A journey that could not take a signal: closed (its last row), or never started."""

    row: InvoiceView | None
    problem: Problem


async def _not_taken(store: Store, invoice_id: str) -> NotTaken:
    row = await run_in_threadpool(store.get_invoice, invoice_id)
    if row is None:
        return NotTaken(None, unknown_invoice(invoice_id))
    outcome = row.outcome.value if row.outcome else row.stage.value
    return NotTaken(
        row,
        Problem(
            409, f"The journey of invoice {invoice_id} is closed ({outcome}); nothing was changed."
        ),
    )


async def update(
    client: Client, store: Store, invoice_id: str, name: str, arg: BaseModel
) -> ActionResult:
    """Run an update; the journey's refusal becomes a 409 or 422 with its reason."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(invoice_id))
    try:
        return await handle.execute_update(
            name, arg, result_type=ActionResult, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            status = 422 if cause.type in _INVALID_INPUT else 409
            raise Problem(status, f"Refused: {cause.message}.", reason=cause.type) from None
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise Problem(
            503, "The journey did not answer in time (is the worker running?); try again."
        ) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise await _closed_problem(store, invoice_id) from None
        raise


async def signal_if_open(
    client: Client, store: Store, invoice_id: str, name: str, arg: BaseModel
) -> NotTaken | None:
    """Signal a journey that may have closed: None when it took the signal, else why not (for a
    fact that must still reach a person, as a task)."""
    try:
        await signal(client, store, invoice_id, name, arg)
    except Problem:
        return await _not_taken(store, invoice_id)
    return None


async def change_contact(
    client: Client, store: Store, invoice_id: str, change: ContactChanged
) -> None:
    """Tell the journey of a new email, phone or preferred channel; a STOP from the new number
    must find the journey too."""
    await signal(client, store, invoice_id, "contact_changed", change)
    if change.phone:
        await run_in_threadpool(store.set_customer_phone, invoice_id, change.phone)


async def signal(client: Client, store: Store, invoice_id: str, name: str, arg: BaseModel) -> None:
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(invoice_id))
    try:
        await handle.signal(name, arg)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise await _closed_problem(store, invoice_id) from None
        raise
