"""What a debtor can do on their page: dispute an invoice, promise a date, propose a plan, ask a
person for more, and change how we reach them. Each lands in the journey as actor `debtor`,
exactly as an agent's action would (the same updates, the same refusals), then the page says
what happened.

Forms are posted, checked against the session's CSRF token, and answered with a redirect back to
the page (post/redirect/get), which shows a notice chosen from a fixed list: nothing a request
sends is echoed back as text.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api import journeys
from api.deps import TemporalClient
from api.portal import proposal
from api.portal.routes import DISPUTE_REASONS, PortalDep, Refused, open_link, refused_page
from api.problems import Problem
from api.schemas import ContactIn
from db.store import InvoiceView
from workflows.models import (
    AgentRequest,
    AgreeArrangement,
    ChannelOptedOut,
    ContactChanged,
    OpenDispute,
    PromiseToPay,
)
from workflows.policy import Channel

router = APIRouter(prefix="/p", include_in_schema=False)

DEBTOR = "debtor"
Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=320)]


def back(token: str, invoice: str, **notice: str) -> RedirectResponse:
    """To the page, with a notice (`done=...` or `problem=...`) it knows how to word."""
    query = urlencode({"invoice": invoice, **notice})
    return RedirectResponse(f"/p/{token}?{query}#notice", status_code=303)


async def checked(
    portal: PortalDep, request: Request, token: str, csrf: str, invoice_id: str | None
) -> tuple[str, list[InvoiceView], InvoiceView | None]:
    """The link's customer and invoices, after the link, the rate limits and the CSRF token
    were checked; with `invoice_id`, that invoice (None when it is not this customer's)."""
    customer_id, invoices = await open_link(portal, request, token)
    if not portal.sessions.csrf_ok(request, token, csrf):
        raise Refused(403, "form_expired", invoices[0].invoice.customer.locale)
    found = next((i for i in invoices if i.invoice_id == invoice_id), None)
    return customer_id, invoices, found


async def open_invoice(
    portal: PortalDep, request: Request, token: str, csrf: str, invoice_id: str
) -> InvoiceView | Response:
    """The customer's open invoice a form is about, or the answer to give instead."""
    try:
        _, _, found = await checked(portal, request, token, csrf, invoice_id)
    except Refused as refused:
        return refused_page(portal, request, refused)
    if found is None or found.outcome is not None:
        return back(token, invoice_id, problem="closed")
    return found


@router.post("/{token}/dispute")
async def dispute(
    token: str,
    request: Request,
    portal: PortalDep,
    client: TemporalClient,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=32)] = "",
    details: Text = "",
) -> Response:
    """Tell us something is wrong with an invoice: the reminders stop at once."""
    found = await open_invoice(portal, request, token, csrf, invoice)
    if isinstance(found, Response):
        return found
    if reason not in DISPUTE_REASONS:
        return back(token, invoice, problem="dispute_reason")
    text = f"{reason}: {details.strip()}" if details.strip() else reason
    try:
        await journeys.update(
            client, portal.store, invoice, "open_dispute", OpenDispute(reason=text, actor=DEBTOR)
        )
    except Problem as problem:
        if problem.extra.get("reason") == "DisputeAlreadyOpen":
            return back(token, invoice, problem="dispute_open")
        return back(token, invoice, problem="closed")
    return back(token, invoice, done="dispute")


@router.post("/{token}/promise")
async def promise(
    token: str,
    request: Request,
    portal: PortalDep,
    client: TemporalClient,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    promised_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Promise to pay by a date: agreed at once within the policy's limits."""
    found = await open_invoice(portal, request, token, csrf, invoice)
    if isinstance(found, Response):
        return found
    try:
        day = date.fromisoformat(promised_on)
    except ValueError:
        return back(token, invoice, problem="promise_date")
    cmd = PromiseToPay(promised_on=day, actor=DEBTOR)
    try:
        await journeys.update(client, portal.store, invoice, "promise_to_pay", cmd)
    except Problem as problem:
        why = problem.extra.get("reason")
        if why == "PromiseLimitReached":  # the journey asked an agent to call already
            return back(token, invoice, problem="promise_count")
        if why == "InvalidPromise":
            return back(token, invoice, problem="promise_limit", date=day.isoformat())
        return back(token, invoice, problem="promise_now")
    return back(token, invoice, done="promise", date=day.isoformat())


@router.post("/{token}/plan")
async def propose_plan(
    token: str,
    request: Request,
    portal: PortalDep,
    client: TemporalClient,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    count: Annotated[int, Form(ge=2, le=36)] = 2,
    first_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Propose monthly instalments: agreed at once within the policy's `self_service_plan`."""
    found = await open_invoice(portal, request, token, csrf, invoice)
    if isinstance(found, Response):
        return found
    try:
        first = date.fromisoformat(first_on)
    except ValueError:
        return back(token, invoice, problem="promise_date")
    instalments = proposal.split(found.outstanding, found.currency, count, first)
    policy = await portal.policy_of(found)
    asked = {"count": str(count), "date": first.isoformat()}
    why = proposal.refusal(policy.self_service_plan, instalments, date.today())
    if why is not None:
        return back(token, invoice, problem=why, **asked)
    try:
        agreed = AgreeArrangement(instalments=instalments, actor=DEBTOR)
        await journeys.update(client, portal.store, invoice, "agree_arrangement", agreed)
    except Problem:
        return back(token, invoice, problem="plan_refused", **asked)
    return back(token, invoice, done="plan", **asked)


@router.post("/{token}/request")
async def ask_a_person(
    token: str,
    request: Request,
    portal: PortalDep,
    client: TemporalClient,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=32)] = "",
    promised_on: Annotated[str, Form(max_length=10)] = "",
    count: Annotated[int, Form(ge=0, le=36)] = 0,
    message: Text = "",
) -> Response:
    """Send a request the page cannot agree by itself to a person (an agent task)."""
    found = await open_invoice(portal, request, token, csrf, invoice)
    if isinstance(found, Response):
        return found
    if kind not in ("promise_request", "plan_request"):
        return back(token, invoice, problem="closed")
    try:
        day = date.fromisoformat(promised_on)
    except ValueError:
        return back(token, invoice, problem="promise_date")
    if kind == "plan_request":
        plan = proposal.split(found.outstanding, found.currency, max(count, 2), day)
        detail = {
            "instalments": str(len(plan)),
            "first_on": day.isoformat(),
            "schedule": ";".join(f"{i.due_on}={i.amount}" for i in plan),
        }
        title = (
            f"The debtor of invoice {invoice} proposes {len(plan)} monthly instalments from "
            f"{day.isoformat()}, outside what the policy agrees by itself: agree a plan or call"
        )
    else:
        detail = {"promised_on": day.isoformat()}
        title = (
            f"The debtor of invoice {invoice} asks to pay by {day.isoformat()}, later than the "
            "policy agrees by itself: call or write to agree a date or a plan"
        )
    if message.strip():
        detail["message"] = message.strip()
    ask = AgentRequest(kind=kind, title=title, detail=detail)
    await journeys.signal(client, portal.store, invoice, "agent_request", ask)
    return back(token, invoice, done="request")


@router.post("/{token}/contact")
async def contact(
    token: str,
    request: Request,
    portal: PortalDep,
    client: TemporalClient,
    csrf: Annotated[str, Form()] = "",
    invoice: Annotated[str, Form(max_length=200)] = "",
    preferred_channel: Annotated[str, Form(max_length=16)] = "",
    email: Short = "",
    phone: Annotated[str, Form(max_length=40)] = "",
    no_sms: Annotated[str, Form(max_length=3)] = "",
    no_whatsapp: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """How we reach the debtor: preferred channel, a corrected email or phone, no texts.

    Opting back in is for an agent (the debtor may have said STOP by text, too)."""
    try:
        _, invoices, _ = await checked(portal, request, token, csrf, None)
    except Refused as refused:
        return refused_page(portal, request, refused)
    current = invoices[-1].invoice.customer
    fields: dict[str, Any] = {}
    if preferred_channel and preferred_channel != current.preferred_channel:
        fields["preferred_channel"] = preferred_channel
    if email.strip() and email.strip() != current.email:
        fields["email"] = email.strip()
    if phone.strip() and phone.strip() != current.phone:
        fields["phone"] = phone.strip()
    try:
        change = ContactIn(**fields) if fields else None
    except ValidationError:
        return back(token, invoice, problem="contact_invalid")
    open_ones = [i for i in invoices if i.outcome is None]
    for view in open_ones:
        if change is not None:
            signal = ContactChanged(**change.model_dump(), actor=DEBTOR)
            await journeys.change_contact(client, portal.store, view.invoice_id, signal)
        for channel, off in ((Channel.sms, no_sms), (Channel.whatsapp, no_whatsapp)):
            if off:
                fact = ChannelOptedOut(channel=channel, actor=DEBTOR)
                await journeys.signal(
                    client, portal.store, view.invoice_id, "channel_opted_out", fact
                )
    return back(token, invoice, done="contact")
