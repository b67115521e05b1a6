"""Invoices: start a journey, read it, and record what agents and billing systems learn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import journeys
from api.deps import (
    AnyRole,
    Integration,
    Policies,
    SettingsDep,
    StoreDep,
    TemporalClient,
)
from api.problems import COMMON_PROBLEMS, Problem, problem_responses
from api.schemas import (
    IDENTIFIER,
    ActionOut,
    InvoiceIn,
    InvoiceList,
    InvoiceOut,
    MessageOut,
    PlanOut,
    TimelineEventOut,
)
from db.store import InvoiceView, Store
from settings import Settings
from workflows.common import money
from workflows.journey import workflow_id
from workflows.models import (
    ActionResult,
    Invoice,
    NextAction,
    Outcome,
    PlanView,
    Stage,
)
from workflows.policy import Policy

router = APIRouter(prefix="/v1/invoices", tags=["invoices"], responses=COMMON_PROBLEMS)

_PROBLEMS = problem_responses(
    {
        404: "Unknown invoice",
        409: "Refused by the journey's state (closed, disputed, a plan running...)",
        422: "Invalid input: every problem named",
    }
)


def invoice_out(
    row: InvoiceView, store: Store | None = None, settings: Settings | None = None
) -> InvoiceOut:
    currency = row.currency
    timeline = None
    if store is not None:
        timeline = [
            TimelineEventOut.model_validate(e.model_dump()) for e in store.timeline(row.invoice_id)
        ]
    return InvoiceOut(
        invoice_id=row.invoice_id,
        customer_id=row.customer_id,
        stage=Stage(row.stage),
        outcome=row.outcome,
        amount=money(row.amount, currency),
        outstanding=money(row.outstanding, currency),
        currency=currency,
        due_on=row.due_on,
        policy=row.policy_name,
        policy_version=row.policy_version,
        next_action=row.next_action,
        plan=_plan_out(row.plan) if row.plan else None,
        workflow_id=workflow_id(row.invoice_id),
        temporal_ui=journeys.ui_link(settings, row.invoice_id),
        timeline=timeline,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _plan_out(plan: PlanView) -> PlanOut:
    currency = plan.currency
    data = plan.model_dump()
    for key in ("total", "paid", "outstanding"):
        data[key] = money(data[key], currency)
    for instalment in data["instalments"]:
        instalment["amount"] = money(instalment["amount"], currency)
        instalment["paid"] = money(instalment["paid"], currency)
    return PlanOut.model_validate(data)


async def _known(store: Store, client: Client, invoice_id: str) -> InvoiceView:
    """The invoice's row (the API records each start before answering); a journey Temporal has
    but the read model lacks (started by another client and not yet recorded by its worker, or
    its start record lost) is read from its start event: never a 404 for a journey that exists."""
    row = await run_in_threadpool(store.get_invoice, invoice_id)
    if row is not None:
        return row
    started = await journeys.started_view(client, invoice_id)
    if started is None:
        raise journeys.unknown_invoice(invoice_id)
    return started


def _new_invoice_out(
    invoice: Invoice, policy: Policy, settings: Settings, next_action: NextAction | None
) -> InvoiceOut:
    """What a journey looks like the moment it starts, as the API has just recorded it (or, for a
    journey whose record is not there yet, as its start says)."""
    now = datetime.now(UTC)
    return InvoiceOut(
        invoice_id=invoice.invoice_id,
        customer_id=invoice.customer.id,
        stage=Stage.scheduled,
        outcome=None,
        amount=money(invoice.amount, invoice.currency),
        outstanding=money(invoice.amount, invoice.currency),
        currency=invoice.currency,
        due_on=invoice.due_on,
        policy=policy.name,
        policy_version=policy.version,
        next_action=next_action,
        workflow_id=workflow_id(invoice.invoice_id),
        temporal_ui=journeys.ui_link(settings, invoice.invoice_id),
        created_at=now,
        updated_at=now,
    )


def _action_out(invoice_id: str, currency: str, result: ActionResult) -> ActionOut:
    return ActionOut(
        invoice_id=invoice_id,
        stage=result.stage,
        outcome=result.outcome,
        outstanding=money(result.outstanding, currency),
        detail=result.detail,
    )


@router.post("", status_code=201, response_model=InvoiceOut, responses=_PROBLEMS)
async def start_invoice(
    body: InvoiceIn,
    response: Response,
    actor: Integration,
    store: StoreDep,
    policies: Policies,
    client: TemporalClient,
    settings: SettingsDep,
) -> InvoiceOut:
    """Start the invoice's journey; the same invoice again answers 200 with the existing one."""
    policy = await policies.get(body.policy)
    if policy is None:
        raise Problem(422, f"There is no policy {body.policy!r}; GET /v1/policies lists them.")
    invoice = body.to_invoice()
    started = await journeys.start_journey(
        client, store, settings.task_queue, invoice, policy, actor.name
    )
    response.status_code = 201 if started.created else 200
    if started.row is not None:
        return invoice_out(started.row, settings=settings)
    return _new_invoice_out(invoice, policy, settings, started.next_action)


@router.get("", response_model=InvoiceList)
async def list_invoices(
    actor: AnyRole,
    store: StoreDep,
    settings: SettingsDep,
    customer_id: str | None = Query(None, pattern=IDENTIFIER),
    stage: Stage | None = None,
    outcome: Outcome | None = None,
    overdue_days: int | None = Query(
        None, ge=0, le=3650, description="Open journeys at least this many days past due"
    ),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> InvoiceList:
    """List journeys, newest first, by customer, stage, outcome and days overdue."""
    due_before = None
    if overdue_days is not None:
        due_before = datetime.now(UTC).date() - timedelta(days=overdue_days - 1)
    rows = await run_in_threadpool(
        store.list_invoices,
        customer_id,
        stage.value if stage else None,
        limit,
        offset,
        outcome.value if outcome else None,
        due_before,
    )
    items = [invoice_out(r, settings=settings) for r in rows]
    return InvoiceList(items=items, limit=limit, offset=offset)


@router.get("/{invoice_id}", response_model=InvoiceOut, responses=_PROBLEMS)
async def get_invoice(
    invoice_id: str,
    actor: AnyRole,
    store: StoreDep,
    client: TemporalClient,
    settings: SettingsDep,
) -> InvoiceOut:
    """Stage, outcome, amounts, next action and timeline of one journey."""
    row = await _known(store, client, invoice_id)
    return await run_in_threadpool(invoice_out, row, store, settings)


@router.get("/{invoice_id}/messages", response_model=list[MessageOut], responses=_PROBLEMS)
async def list_messages(
    invoice_id: str, actor: AnyRole, store: StoreDep, client: TemporalClient
) -> list[MessageOut]:
    """Every message of the journey, oldest first, with its text and delivery status."""
    await _known(store, client, invoice_id)
    rows = await run_in_threadpool(store.list_messages, invoice_id, 1000)
    return [MessageOut.model_validate(m, from_attributes=True) for m in reversed(rows)]
