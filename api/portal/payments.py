"""Paying from the debtor's page through Mollie (iDEAL and the account's other methods).

"Pay" creates a Mollie payment for one invoice's outstanding amount (the next instalment during a
plan), or for every open invoice at once, and sends the browser to Mollie's checkout. Mollie's
webhook carries only the payment id, so the status is always fetched from Mollie; a paid payment
becomes a `payment_received` on each invoice's journey with its share, referenced
`mollie:<payment id>`, which the journey applies once however often the webhook comes. A refund or
chargeback becomes an agent task, once per amount reversed.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api import journeys
from api.deps import StoreDep, TemporalClient
from api.portal.actions import back, checked
from api.portal.mollie import IdentifierError, MollieError, NotFoundError
from api.portal.routes import PortalDep, Refused, open_link, page_language, refused_page
from api.portal.view import Words, due_now
from api.problems import Problem
from db.store import InvoiceView, PortalPayment, Store
from workflows.common import fits_currency, money
from workflows.models import PaymentReceived

log = logging.getLogger("dunwell.portal")
router = APIRouter(prefix="/p", include_in_schema=False)
webhook = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WAITING = ("open", "pending", "authorized")


def allocate(
    invoices: list[InvoiceView], scope: str, invoice_id: str, part: Decimal | None = None
) -> dict[str, Decimal]:
    """`{invoice_id: amount}`: one invoice, every open one in its currency (oldest first), or
    `part` of what is open, oldest invoice first."""
    chosen = next((i for i in invoices if i.invoice_id == invoice_id and i.outcome is None), None)
    if chosen is None:
        return {}
    if scope == "one":
        return {chosen.invoice_id: due_now(chosen)} if due_now(chosen) > 0 else {}
    open_ones = [
        i
        for i in invoices
        if i.outcome is None and i.currency == chosen.currency and i.outstanding > 0
    ]
    open_ones.sort(key=lambda i: (i.due_on, i.invoice_id))
    if scope == "all":
        return {i.invoice_id: i.outstanding for i in open_ones}
    left, shares = part or Decimal(0), {}
    for invoice in open_ones:
        if left <= 0:
            break
        share = min(left, invoice.outstanding)
        shares[invoice.invoice_id] = share
        left -= share
    return shares


def part_problem(
    amount: str, invoices: list[InvoiceView], chosen: InvoiceView, least: Decimal
) -> tuple[Decimal | None, str | None]:
    """The part the debtor chose, or why it cannot be taken (a notice key)."""
    try:
        part = Decimal(amount.replace(",", ".").strip())
    except (InvalidOperation, ValueError):
        return None, "part_invalid"
    owed = sum(
        (i.outstanding for i in invoices if i.outcome is None and i.currency == chosen.currency),
        Decimal(0),
    )
    if not part.is_finite() or not fits_currency(part, chosen.currency) or part <= 0:
        return None, "part_invalid"
    if part < min(least, owed) or part > owed:
        return None, "part_range"
    return part, None


@router.post("/{token}/pay")
async def pay(
    token: str,
    request: Request,
    portal: PortalDep,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[str, Form(max_length=8)] = "one",
    amount: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Start a Mollie payment and go to its checkout."""
    try:
        customer_id, invoices, _ = await checked(portal, request, token, csrf, None)
    except Refused as refused:
        return refused_page(portal, request, refused)
    part = None
    chosen = next((i for i in invoices if i.invoice_id == invoice and i.outcome is None), None)
    if scope == "part" and chosen is not None:
        least = (await portal.policy_of(chosen)).min_part_payment
        part, why = part_problem(amount, invoices, chosen, least)
        if why is not None:
            return back(token, invoice, problem=why)
    allocation = allocate(invoices, scope, invoice, part)
    if portal.mollie is None or not allocation:
        return back(token, invoice, problem="closed")
    first = next(i for i in invoices if i.invoice_id in allocation)
    ref = secrets.token_urlsafe(16)
    total = sum(allocation.values(), Decimal(0))
    shares = {
        invoice_id: str(money(share, first.currency)) for invoice_id, share in allocation.items()
    }
    base = portal.settings.portal_base_url
    ids = ", ".join(allocation)
    try:
        created = await run_in_threadpool(
            portal.mollie.create,
            total,
            first.currency,
            f"{portal.settings.company_name}: {ids}",
            f"{base}/p/{token}/paid/{ref}",
            f"{base}/v1/webhooks/mollie",
            {
                "ref": ref,
                "customer_id": customer_id,
                "invoices": shares,
            },
        )
    except MollieError as exc:
        log.warning("Mollie refused a payment for %s: %s", ids, exc)
        return back(token, invoice, problem="pay_unavailable")
    payment = PortalPayment(
        ref=ref,
        payment_id=created.payment_id,
        customer_id=customer_id,
        allocation=shares,
        amount=total,
        currency=first.currency,
        status=created.status,
        created_at=datetime.now(UTC),
    )
    await run_in_threadpool(portal.store.add_portal_payment, payment)
    if not created.checkout_url:
        return back(token, invoice, problem="pay_unavailable")
    return RedirectResponse(created.checkout_url, status_code=303)


@router.get("/{token}/paid/{ref}")
async def paid(token: str, ref: str, request: Request, portal: PortalDep) -> Response:
    """Where Mollie sends the debtor back: processing until Mollie says paid (or not)."""
    try:
        customer_id, invoices = await open_link(portal, request, token)
    except Refused as refused:
        return refused_page(portal, request, refused)
    payment = await run_in_threadpool(portal.store.portal_payment, ref)
    if payment is None or payment.customer_id != customer_id or portal.mollie is None:
        return refused_page(portal, request, Refused(404, "invalid"))
    first = next(iter(payment.allocation))
    try:
        found = await run_in_threadpool(portal.mollie.get, payment.payment_id or "")
        status = found.status
    except MollieError:
        status = "pending"  # Mollie did not answer: keep waiting, the page asks again
    customer = invoices[0].invoice.customer
    language = page_language(request, None, customer.locale)
    words = Words(language, customer.timezone)
    state = "waiting" if status in WAITING else ("paid" if status == "paid" else "failed")
    return portal.render(
        "payment.html",
        language,
        state=state,
        amount=words.money(payment.amount, payment.currency),
        back_url=f"/p/{token}?invoice={first}",
    )


@webhook.post("/mollie", response_class=PlainTextResponse)
async def mollie_webhook(
    request: Request, portal: PortalDep, store: StoreDep, client: TemporalClient
) -> PlainTextResponse:
    """Mollie's webhook: only a payment id. Its status is fetched from Mollie, never trusted."""
    form = await request.form()
    payment_id = str(form.get("id") or "")
    if portal.mollie is None:
        raise Problem(409, "Mollie is not configured here (DUNWELL_MOLLIE_API_KEY).")
    try:
        found = await run_in_threadpool(portal.mollie.get, payment_id)
    except (NotFoundError, IdentifierError):
        # Not one of ours (or made up): nothing to do, and nothing to tell the caller.
        log.info("Mollie webhook for an unknown payment id")
        return PlainTextResponse("ok")
    except MollieError as exc:
        raise Problem(503, f"Mollie could not be asked about the payment ({exc}); retry.") from None
    shares = {k: Decimal(str(v)) for k, v in (found.metadata.get("invoices") or {}).items()}
    customer_id = str(found.metadata.get("customer_id", ""))
    if found.status == "paid":
        for invoice_id, share in shares.items():
            reference = f"mollie:{found.payment_id}"
            if await run_in_threadpool(store.invoice_with_payment, invoice_id, reference):
                continue  # Mollie called again: this invoice has it already
            fact = PaymentReceived(
                amount=share,
                reference=reference,
                paid_at=_moment(found.paid_at),
                actor="debtor",
            )
            await _pay(client, store, invoice_id, customer_id, fact)
    reversed_ = found.refunded + found.charged_back
    if reversed_ > 0 and shares:
        # An agent settles it (the invoices are owed again); once per amount reversed.
        what = "charged back" if found.charged_back else "refunded"
        invoice_id = next(iter(shares))
        await run_in_threadpool(
            store.open_task,
            f"mollie:{found.payment_id}:reversed:{found.refunded}:{found.charged_back}",
            invoice_id,
            customer_id,
            "refund",
            f"Mollie payment {found.payment_id} was {what} ({found.currency} {reversed_}): "
            f"the invoices it paid ({', '.join(shares)}) are owed again",
            payment_id=found.payment_id,
            refunded=str(found.refunded),
            charged_back=str(found.charged_back),
            invoices=",".join(shares),
        )
    ref = str(found.metadata.get("ref", ""))
    if ref:
        await run_in_threadpool(store.set_portal_payment_status, ref, found.status)
    return PlainTextResponse("ok")


async def _pay(
    client: TemporalClient, store: Store, invoice_id: str, customer_id: str, fact: PaymentReceived
) -> None:
    """Signal the journey; when it has closed, an agent task keeps the payment (none is lost)."""
    not_taken = await journeys.signal_if_open(client, store, invoice_id, "payment_received", fact)
    if not_taken is not None:
        await run_in_threadpool(
            store.open_task,
            f"closed:{invoice_id}:payment:{fact.reference}",
            invoice_id,
            customer_id,
            "payment_after_close",
            f"{not_taken.problem.detail} A Mollie payment of {fact.amount} ({fact.reference}) "
            "arrived for it: settle it by hand.",
            reference=fact.reference,
            amount=str(fact.amount),
        )


def _moment(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
