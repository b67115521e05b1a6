"""One debtor: their journeys as one timeline, and their personal link to their own page."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Agent, AnyRole, StoreDep
from api.portal.routes import PortalDep
from api.problems import COMMON_PROBLEMS, Problem
from api.schemas import (
    IDENTIFIER,
    CustomerTimelineEventOut,
    CustomerTimelineOut,
    PortalLinkOut,
)
from portal_links import PortalLinks

router = APIRouter(prefix="/v1/customers", tags=["customers"], responses=COMMON_PROBLEMS)


@router.get("/{customer_id}/timeline", response_model=CustomerTimelineOut)
async def customer_timeline(
    actor: AnyRole,
    store: StoreDep,
    customer_id: str = Path(pattern=IDENTIFIER),
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> CustomerTimelineOut:
    """Every journey of one debtor, oldest event first, each event naming its invoice."""
    rows = await run_in_threadpool(store.customer_timeline, customer_id, limit, offset)
    events = [
        CustomerTimelineEventOut(invoice_id=invoice_id, **event.model_dump(exclude={"key"}))
        for invoice_id, event in rows
    ]
    return CustomerTimelineOut(customer_id=customer_id, events=events, limit=limit, offset=offset)


def _links_or_problem(portal: PortalDep) -> PortalLinks:
    if portal.links is None:
        raise Problem(
            409,
            "Debtors' personal links are off: set DUNWELL_PORTAL_SECRET (at least 32 characters) "
            "on the API and the workers.",
        )
    return portal.links


@router.get("/{customer_id}/portal-link", response_model=PortalLinkOut)
async def portal_link(
    actor: Agent, store: StoreDep, portal: PortalDep, customer_id: str = Path(pattern=IDENTIFIER)
) -> PortalLinkOut:
    """The debtor's live personal link (to read out or send by hand); made when there is none."""
    links = _links_or_problem(portal)
    if not await run_in_threadpool(store.list_invoices, customer_id, None, 1):
        raise Problem(404, f"There is no customer {customer_id} with an invoice.")
    url = await run_in_threadpool(links.url_for, customer_id)
    return PortalLinkOut(customer_id=customer_id, url=url, revoked=False)


@router.post("/{customer_id}/portal-link/revoke", response_model=PortalLinkOut)
async def revoke_portal_link(
    actor: Agent, store: StoreDep, portal: PortalDep, customer_id: str = Path(pattern=IDENTIFIER)
) -> PortalLinkOut:
    """Revoke the debtor's personal link at once; the next message carries a new one."""
    _links_or_problem(portal)
    revoked = await run_in_threadpool(store.revoke_portal_link, customer_id, actor.name)
    return PortalLinkOut(customer_id=customer_id, url=None, revoked=revoked)
