"""What agents and billing systems tell a journey: payments, disputes, promises, plans, holds,
closing, contact changes and opt-outs. Each is a Temporal update (refusable at once) or signal."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from api import journeys
from api.deps import (
    Agent,
    Integration,
    StoreDep,
    TemporalClient,
)
from api.problems import COMMON_PROBLEMS, Problem
from api.routes.invoices import _PROBLEMS, _action_out, _known
from api.schemas import (
    AcceptedOut,
    ActionIn,
    ActionOut,
    ArrangementIn,
    ContactIn,
    DisputeIn,
    OptOutIn,
    PaymentIn,
    PaymentOut,
    PromiseIn,
    ResolutionIn,
    check_precision,
)
from db.store import InvoiceView, Store
from workflows.common import money
from workflows.models import (
    AgreeArrangement,
    CancelArrangement,
    ChannelOptedIn,
    ChannelOptedOut,
    Close,
    ContactChanged,
    Instalment,
    OpenDispute,
    Pause,
    PaymentReceived,
    PromiseToPay,
    ResolveDispute,
    Resume,
)
from workflows.policy import Channel

router = APIRouter(prefix="/v1/invoices", tags=["invoices"], responses=COMMON_PROBLEMS)

PAYMENT_WAIT_S = 4.0
"""How long a payment's answer waits for the journey to apply it before answering 202."""


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
    # The row (for the currency of the answer) is read while the journey runs the update: an
    # unknown invoice is refused by Temporal as well (404), so nothing waits on the lookup. Once
    # the journey has applied the action, a failed lookup must not turn the answer into an error.
    row = asyncio.ensure_future(_known(store, client, invoice_id))
    try:
        result = await journeys.update(client, store, invoice_id, name, arg)  # type: ignore[arg-type]
    except BaseException:
        row.cancel()
        await asyncio.gather(row, return_exceptions=True)
        raise
    try:
        currency = (await row).currency
    except Exception:  # the action is applied: answer it, with the currency from Temporal
        currency = await journeys.currency_of(client, store, invoice_id)
    return _action_out(invoice_id, currency, result)


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
    await journeys.change_contact(client, store, invoice_id, change)
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
