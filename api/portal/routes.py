"""The debtor's own page, `/p/{token}`: their open invoices, payments, plan, what happens next and
every message sent to them, in their language. Server-rendered, readable without JavaScript."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from activities.rendering import Creditor
from api.policy_cache import PolicyCache
from api.portal import view
from api.portal.mollie import Mollie
from api.portal.security import LANGUAGE_COOKIE, RateLimit, Sessions, is_https
from api.portal.texts import LANGUAGES, TEXTS
from db.store import InvoiceView, Store
from portal_links import PortalLinks
from settings import Settings
from workflows.policy import Policy, Step, StepAction

HERE = Path(__file__).parent
MAX_PAYMENTS = 10_000
"""Payments the page lists for one customer, at most."""
DEFAULT_POLICY = Policy(
    name="defaults", steps=[Step(name="call", offset=timedelta(0), action=StepAction.agent_task)]
)
"""Every policy setting at its default, for an invoice whose policy is gone."""
DISPUTE_REASONS = ("wrong_amount", "not_received", "already_paid", "quality", "other")
log = logging.getLogger("dunwell.portal")
router = APIRouter(prefix="/p", include_in_schema=False)


@dataclass
class Portal:
    """What the page needs, made once in the API's lifespan."""

    settings: Settings
    store: Store
    policies: PolicyCache
    links: PortalLinks | None
    sessions: Sessions
    per_link: RateLimit
    per_address: RateLimit
    pages: Environment
    company: Creditor
    mollie: Mollie | None = None

    @classmethod
    def build(
        cls, settings: Settings, store: Store, policies: PolicyCache, links: PortalLinks | None
    ) -> Portal:
        secret = settings.portal_secret.get_secret_value() if settings.portal_secret else ""
        pages = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        rate = settings.portal_requests_per_minute
        return cls(
            settings=settings,
            store=store,
            policies=policies,
            links=links,
            sessions=Sessions(secret or "no portal secret"),
            per_link=RateLimit(rate),
            per_address=RateLimit(rate * 10),
            pages=pages,
            mollie=mollie_from(settings),
            company=Creditor.from_settings(settings),
        )

    async def policy_of(self, invoice: InvoiceView) -> Policy:
        """The invoice's policy as it stands (cached), or every default should it be gone."""
        return await self.policies.get(invoice.policy_name) or DEFAULT_POLICY

    def render(self, name: str, language: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.pages.get_template(name).render(
            t=TEXTS[language], lang=language, languages=LANGUAGES, company=self.company, **values
        )
        return HTMLResponse(html, status_code=status)


def mollie_from(settings: Settings) -> Mollie | None:
    if settings.mollie_api_key is None or not settings.mollie_api_key.get_secret_value():
        return None
    return Mollie(settings.mollie_api_key.get_secret_value(), settings.mollie_base_url)


def checkout_origins(settings: Settings) -> tuple[str, ...]:
    """Where a Pay form's redirect may lead (the browser checks it against the CSP)."""
    if settings.mollie_api_key is None:
        return ()
    if settings.mollie_base_url:
        parts = urlsplit(settings.mollie_base_url)
        return (f"{parts.scheme}://{parts.netloc}",)
    return ("https://www.mollie.com",)


async def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


PortalDep = Annotated[Portal, Depends(_portal)]


def page_language(request: Request, asked: str | None, fallback: str) -> str:
    for candidate in (asked, request.cookies.get(LANGUAGE_COOKIE), fallback):
        language = (candidate or "").replace("-", "_").split("_")[0].lower()
        if language in LANGUAGES:
            return language
    return "en"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def open_link(portal: Portal, request: Request, token: str) -> tuple[str, list[InvoiceView]]:
    """The customer and invoices behind a live, unexpired link; raises `Refused` otherwise.

    Every kind of bad link (wrong, revoked, expired) gets the same answer."""
    link_key = hashlib.sha256(token.encode()).hexdigest()
    if not portal.per_address.allow(_client(request)) or not portal.per_link.allow(link_key):
        raise Refused(429, "too_many")
    if portal.links is None:
        raise Refused(404, "invalid")
    customer_id = await run_in_threadpool(portal.links.customer_of, token)
    if customer_id is None:
        raise Refused(404, "invalid")
    invoices = await run_in_threadpool(portal.store.customer_invoices, customer_id)
    if not invoices or not await _still_valid(portal, invoices):
        raise Refused(404, "invalid")
    return customer_id, invoices


async def _still_valid(portal: Portal, invoices: list[InvoiceView]) -> bool:
    """A link works while the customer has an open invoice, and for the policy's
    `portal_link_valid_for` after the last one closed."""
    if any(i.outcome is None for i in invoices):
        return True
    last = max(invoices, key=lambda i: i.updated_at)
    policy = await portal.policy_of(last)
    return datetime.now(UTC) <= last.updated_at + policy.portal_link_valid_for


async def limits(
    portal: Portal, invoices: list[InvoiceView], words: view.Words
) -> dict[str, view.Limits]:
    """Per invoice, what the page can agree by itself under the invoice's policy: a promise up
    to `promise_max_delay` from today, a plan within `self_service_plan`."""
    today = datetime.now(UTC).date()
    found = {}
    for invoice in invoices:
        policy = await portal.policy_of(invoice)
        plan = policy.self_service_plan
        promise_latest = today + timedelta(days=max(policy.promise_max_delay.days, 1))
        first_latest = today + timedelta(days=max(plan.first_within.days, 0)) if plan else today
        found[invoice.invoice_id] = view.Limits(
            plan=plan,
            values={
                "latest": words.day(promise_latest),
                "plan_max": str(plan.max_instalments) if plan else "",
                "plan_min": words.money(plan.min_instalment, invoice.currency) if plan else "",
                "plan_latest": words.day(first_latest),
                "part_min": words.money(policy.min_part_payment, invoice.currency),
            },
        )
    return found


class Refused(Exception):
    def __init__(self, status: int, reason: str, language: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.language = language
        """The debtor's, when the link was good (a form refused): else the browser's."""


def refused_page(portal: Portal, request: Request, refused: Refused) -> HTMLResponse:
    browser = request.headers.get("accept-language", "en")[:2]
    language = page_language(request, refused.language, browser)
    if refused.reason == "too_many":
        response = portal.render(
            "notice.html", language, 429, title=TEXTS[language]["too_many"], body=""
        )
        response.headers["Retry-After"] = "60"
        return response
    t = TEXTS[language]
    if refused.reason == "form_expired":
        return portal.render("notice.html", language, 403, title=t["form_expired"], body="")
    return portal.render(
        "notice.html", language, refused.status, title=t["invalid_title"], body=t["invalid_body"]
    )


@router.get("/{token}", response_class=HTMLResponse)
async def page(
    token: str,
    request: Request,
    portal: PortalDep,
    invoice: Annotated[str | None, Query(max_length=200)] = None,
    lang: Annotated[str | None, Query(max_length=8)] = None,
    done: Annotated[str | None, Query(max_length=32)] = None,
    problem: Annotated[str | None, Query(max_length=32)] = None,
    date: Annotated[str | None, Query(max_length=10)] = None,
    count: Annotated[str | None, Query(max_length=2, pattern=r"^[0-9]+$")] = None,
) -> Response:
    """The debtor's page."""
    try:
        customer_id, invoices = await open_link(portal, request, token)
    except Refused as refused:
        return refused_page(portal, request, refused)
    first = next((i for i in invoices if i.invoice_id == invoice), None)
    customer = (first or invoices[0]).invoice.customer
    language = page_language(request, lang, customer.locale)
    words = view.Words(language, customer.timezone)
    events = await run_in_threadpool(
        portal.store.customer_timeline, customer_id, MAX_PAYMENTS, 0, ("payment",)
    )
    payments: dict[str, list[Any]] = {}
    for invoice_id, event in events:
        payments.setdefault(invoice_id, []).append(event)
    shown = [first] if first else []
    shown += [i for i in invoices if i.outcome is None and i is not first]
    cards = [view.card(i, payments.get(i.invoice_id, []), words) for i in shown]
    allowed = await limits(portal, shown, words)
    owing = [i for i in shown if i.outcome is None and i.outstanding > 0]
    same = [i for i in owing if owing and i.currency == owing[0].currency]
    total = sum((i.outstanding for i in same), Decimal(0))
    open_total = (
        words("pay_all", amount=words.money(total, same[0].currency)) if len(same) > 1 else ""
    )
    focus = allowed.get(invoice or "")
    asked = {"date": date, "count": count}
    notice = view.notice(words, done, problem, asked, focus.values if focus else {})
    messages = await run_in_threadpool(portal.store.messages_to_customer, customer_id)
    sid, new_session = portal.sessions.begin(request)
    response = portal.render(
        "page.html",
        language,
        customer_name=customer.name,
        cards=cards,
        focused=first is not None,
        messages=[view.sent(m, words) for m in messages],
        token=token,
        invoice=invoice or "",
        csrf=portal.sessions.csrf(sid, token),
        notice=notice,
        problem=problem or "",
        asked_date=date or "",
        limits=allowed,
        asked_count=count or "",
        tomorrow=(datetime.now(UTC).date() + timedelta(days=1)).isoformat(),
        customer=customer,
        reasons=DISPUTE_REASONS,
        online=portal.mollie is not None,
        open_total=open_total,
    )
    if new_session:
        portal.sessions.remember(request, response, sid)
    if lang and language == lang:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 86400,
            path="/p/",
            samesite="lax",
            httponly=True,
            secure=is_https(request),
        )
    return response
