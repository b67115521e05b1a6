"""How a plan is started: its workflow id, its one-line summary, its first search attributes."""

from __future__ import annotations

from decimal import Decimal

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from workflows.common import AMOUNT_OUTSTANDING, CUSTOMER_ID, INVOICE_ID, JOURNEY_STAGE
from workflows.models import PlanInput, Stage


def plan_workflow_id(journey_workflow_id: str, number: int) -> str:
    return f"{journey_workflow_id}-plan-{number}"


def plan_summary(input: PlanInput) -> str:
    """The one-line summary shown for the plan in the Temporal UI."""
    invoice = input.invoice
    total = sum((i.amount for i in input.instalments), Decimal(0))
    return (
        f"{invoice.invoice_id} · plan {input.number} · {len(input.instalments)} instalments · "
        f"{invoice.currency} {total}"
    )


def plan_search_attributes(input: PlanInput) -> TypedSearchAttributes:
    total = sum((i.amount for i in input.instalments), Decimal(0))
    return TypedSearchAttributes(
        [
            SearchAttributePair(CUSTOMER_ID, input.invoice.customer.id),
            SearchAttributePair(INVOICE_ID, input.invoice.invoice_id),
            SearchAttributePair(JOURNEY_STAGE, Stage.arrangement.value),
            SearchAttributePair(AMOUNT_OUTSTANDING, float(total)),
        ]
    )
