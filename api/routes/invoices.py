"""Invoices: start a journey, read it, and record what agents and billing systems learn."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import journeys
from api.deps import (
    Agent,
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
    AcceptedOut,
    ActionIn,
    ActionOut,
    ArrangementIn,
    ContactIn,
    DisputeIn,
    InvoiceIn,
    InvoiceList,
    InvoiceOut,
    MessageOut,
    OptOutIn,
    PaymentIn,
    PaymentOut,
    PlanOut,
    PromiseIn,
    ResolutionIn,
    TimelineEventOut,
    check_precision,
    money,
)
from db.store import InvoiceView, Store
from settings import Settings
from workflows.journey import workflow_id
from workflows.models import (
    ActionResult,
    AgreeArrangement,
    CancelArrangement,
    ChannelOptedIn,
    ChannelOptedOut,
    Close,
    ContactChanged,
    Instalment,
    Invoice,
    OpenDispute,
    Outcome,
    Pause,
    PaymentReceived,
    PlanView,
    PromiseToPay,
    ResolveDispute,
    Resume,
    Stage,
)
from workflows.policy import Channel, Policy

router = APIRouter(prefix="/v1/invoices", tags=["invoices"], responses=COMMON_PROBLEMS)
_RECORD_WAIT_STEPS = 30  # tenths of a second

PAYMENT_WAIT_S = 4.0
"""How long a payment's answer waits for the journey to apply it before answering 202."""

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
    """The invoice's row; a journey that exists but is not yet recorded gets a moment to be."""
    row = await run_in_threadpool(store.get_invoice, invoice_id)
    if row is not None:
        return row
    if not await journeys.exists(client, invoice_id):
        raise journeys.unknown_invoice(invoice_id)
    # Just started: the worker's first activity writes the row, normally within milliseconds.
    for _ in range(_RECORD_WAIT_STEPS):
        await asyncio.sleep(0.1)
        row = await run_in_threadpool(store.get_invoice, invoice_id)
        if row is not None:
            return row
    raise Problem(
        503,
        f"The journey of invoice {invoice_id} has started but is not recorded yet; "
        "is the worker running? Try again in a moment.",
    )


def _new_invoice_out(invoice: Invoice, policy: Policy, settings: Settings) -> InvoiceOut:
    """What a journey looks like the moment it starts, before the worker has recorded it."""
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
        next_action=None,
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
    created = await journeys.start_journey(client, settings.task_queue, invoice, policy, actor.name)
    # The journey writes its own row with its first activity: one writer, no second transaction
    # on the start path, and a start whose answer was lost still ends with a row.
    response.status_code = 201 if created else 200
    if not created:
        row = await run_in_threadpool(store.get_invoice, invoice.invoice_id)
        if row is not None:
            return invoice_out(row, settings=settings)
    return _new_invoice_out(invoice, policy, settings)


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


@router.post(
    "/{invoice_id}/payments",
    status_code=200,
    response_model=PaymentOut,
    responses={
        **_PROBLEMS,
        202: {"model": PaymentOut, "description": "Accepted: no worker applied it in time; "
              "it is applied later, once"},
    },
)  # fmt: skip
async def record_payment(
    invoice_id: str,
    body: PaymentIn,
    response: Response,
    actor: Integration,
    store: StoreDep,
    client: TemporalClient,
) -> PaymentOut:
    """Report a payment; 200 with the new outstanding amount once the journey applied it.

    The same reference again is recorded once (and answers with the amounts as they are).
    """
    # A journey not yet recorded (no worker has run it) still takes payments: none is lost.
    row = await run_in_threadpool(store.get_invoice, invoice_id)
    currency = row.currency if row else await journeys.currency_of(client, store, invoice_id)
    try:
        check_precision(body.amount, currency)
    except ValueError as exc:
        raise Problem(422, f"{exc}.") from None
    payment = PaymentReceived(
        amount=body.amount, reference=body.reference, paid_at=body.paid_at, actor=actor.name
    )
    await journeys.signal(client, store, invoice_id, "payment_received", payment)
    applied = await _applied(store, invoice_id, body.reference)
    if applied is None:
        response.status_code = 202
        return PaymentOut(
            invoice_id=invoice_id,
            reference=body.reference,
            applied=False,
            detail=f"Payment {body.reference} accepted; the journey applies it when its worker "
            f"runs (GET /v1/invoices/{invoice_id} shows it then).",
        )
    return PaymentOut(
        invoice_id=invoice_id,
        reference=body.reference,
        applied=True,
        outstanding=money(applied.outstanding, applied.currency),
        stage=applied.stage,
        outcome=applied.outcome,
        detail=f"Payment {body.reference} applied.",
    )


async def _applied(store: Store, invoice_id: str, reference: str) -> InvoiceView | None:
    """The invoice once its journey has recorded the payment, or None after PAYMENT_WAIT."""
    deadline = asyncio.get_running_loop().time() + PAYMENT_WAIT_S
    while True:
        found = await run_in_threadpool(store.invoice_with_payment, invoice_id, reference)
        if found is not None or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def _update(
    client: TemporalClient, store: StoreDep, invoice_id: str, name: str, arg: object
) -> ActionOut:
    row = await _known(store, client, invoice_id)
    result = await journeys.update(client, store, invoice_id, name, arg)  # type: ignore[arg-type]
    return _action_out(invoice_id, row.currency, result)


@router.post("/{invoice_id}/disputes", response_model=ActionOut, responses=_PROBLEMS)
async def open_dispute(
    invoice_id: str, body: DisputeIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Open a dispute: chasing stops at once."""
    cmd = OpenDispute(reason=body.reason, actor=actor.name)
    return await _update(client, store, invoice_id, "open_dispute", cmd)


@router.post("/{invoice_id}/disputes/resolution", response_model=ActionOut, responses=_PROBLEMS)
async def resolve_dispute(
    invoice_id: str, body: ResolutionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Resolve the open dispute: rejected resumes, upheld cancels, adjusted sets the amount."""
    cmd = ResolveDispute(outcome=body.outcome, amount=body.amount, note=body.note, actor=actor.name)
    return await _update(client, store, invoice_id, "resolve_dispute", cmd)


@router.post("/{invoice_id}/promises", response_model=ActionOut, responses=_PROBLEMS)
async def promise_to_pay(
    invoice_id: str, body: PromiseIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Record a promise to pay: reminders wait until the promised day plus the grace."""
    row = await _known(store, client, invoice_id)
    if body.amount is not None:
        _check_money(body.amount, row.currency, "amount")
    cmd = PromiseToPay(**body.model_dump(), actor=actor.name)
    return await _update(client, store, invoice_id, "promise_to_pay", cmd)


@router.post("/{invoice_id}/arrangements", response_model=ActionOut, responses=_PROBLEMS)
async def agree_arrangement(
    invoice_id: str, body: ArrangementIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Agree an instalment plan (replacing a running one): it runs as a child workflow."""
    row = await _known(store, client, invoice_id)
    for number, instalment in enumerate(body.instalments, start=1):
        _check_money(instalment.amount, row.currency, f"instalment {number}: amount")
    cmd = AgreeArrangement(
        instalments=[Instalment(**i.model_dump()) for i in body.instalments], actor=actor.name
    )
    return await _update(client, store, invoice_id, "agree_arrangement", cmd)


@router.post("/{invoice_id}/arrangements/cancel", response_model=ActionOut, responses=_PROBLEMS)
async def cancel_arrangement(
    invoice_id: str, body: ActionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Cancel the running instalment plan; the reminders resume where they stopped."""
    cmd = CancelArrangement(reason=body.reason, actor=actor.name)
    return await _update(client, store, invoice_id, "cancel_arrangement", cmd)


def _check_money(amount: Decimal, currency: str, field: str) -> None:
    try:
        check_precision(amount, currency, field)
    except ValueError as exc:
        raise Problem(422, f"{exc}.") from None


@router.post("/{invoice_id}/pause", response_model=ActionOut, responses=_PROBLEMS)
async def pause(
    invoice_id: str, body: ActionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Put the journey on hold, optionally until a moment."""
    cmd = Pause(reason=body.reason, until=body.until, actor=actor.name)
    return await _update(client, store, invoice_id, "pause", cmd)


@router.post("/{invoice_id}/resume", response_model=ActionOut, responses=_PROBLEMS)
async def resume(
    invoice_id: str, body: ActionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Resume a paused journey; the remaining steps move by the time it was paused."""
    return await _update(
        client, store, invoice_id, "resume", Resume(reason=body.reason, actor=actor.name)
    )


@router.post("/{invoice_id}/cancel", response_model=ActionOut, responses=_PROBLEMS)
async def cancel(
    invoice_id: str, body: ActionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Close the journey as cancelled (credit note, error)."""
    return await _update(
        client, store, invoice_id, "cancel", Close(reason=body.reason, actor=actor.name)
    )


@router.post("/{invoice_id}/write-off", response_model=ActionOut, responses=_PROBLEMS)
async def write_off(
    invoice_id: str, body: ActionIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> ActionOut:
    """Close the journey as written off."""
    cmd = Close(reason=body.reason, actor=actor.name)
    return await _update(client, store, invoice_id, "write_off", cmd)


@router.put(
    "/{invoice_id}/contact", status_code=202, response_model=AcceptedOut, responses=_PROBLEMS
)
async def change_contact(
    invoice_id: str, body: ContactIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> AcceptedOut:
    """Change the debtor's email, phone or preferred channel for this journey."""
    await _known(store, client, invoice_id)
    change = ContactChanged(**body.model_dump(), actor=actor.name)
    await journeys.signal(client, store, invoice_id, "contact_changed", change)
    if body.phone:  # a STOP from the new number must find this journey
        await run_in_threadpool(store.set_customer_phone, invoice_id, body.phone)
    return AcceptedOut(
        invoice_id=invoice_id, detail="Contact change accepted; later messages use it."
    )


@router.post(
    "/{invoice_id}/opt-outs", status_code=202, response_model=AcceptedOut, responses=_PROBLEMS
)
async def opt_out(
    invoice_id: str, body: OptOutIn, actor: Agent, store: StoreDep, client: TemporalClient
) -> AcceptedOut:
    """Stop using one channel for this debtor's journey (the debtor asked, e.g. on the phone)."""
    await _known(store, client, invoice_id)
    change = ChannelOptedOut(channel=body.channel, actor=actor.name)
    await journeys.signal(client, store, invoice_id, "channel_opted_out", change)
    return AcceptedOut(
        invoice_id=invoice_id, detail=f"No more {body.channel.value} messages for this journey."
    )


@router.delete(
    "/{invoice_id}/opt-outs/{channel}",
    status_code=202,
    response_model=AcceptedOut,
    responses=_PROBLEMS,
)
async def opt_back_in(
    invoice_id: str, channel: Channel, actor: Agent, store: StoreDep, client: TemporalClient
) -> AcceptedOut:
    """Use a channel again for this debtor's journey."""
    await _known(store, client, invoice_id)
    change = ChannelOptedIn(channel=channel, actor=actor.name)
    await journeys.signal(client, store, invoice_id, "channel_opted_in", change)
    return AcceptedOut(invoice_id=invoice_id, detail=f"{channel.value} messages may be sent again.")
