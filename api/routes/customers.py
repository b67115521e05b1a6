"""One debtor's journeys as one timeline."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import AnyRole, StoreDep
from api.problems import COMMON_PROBLEMS
from api.schemas import IDENTIFIER, CustomerTimelineEventOut, CustomerTimelineOut

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
