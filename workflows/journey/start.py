"""How a journey is started: its workflow id, its one-line summary and its first search attributes.

Used by the API and the tests; pure, so importing it costs nothing.
"""

from __future__ import annotations

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from workflows.common import AMOUNT_OUTSTANDING, CUSTOMER_ID, INVOICE_ID, JOURNEY_STAGE
from workflows.models import Invoice, Stage


def workflow_id(invoice_id: str) -> str:
    return f"invoice-{invoice_id}"


def journey_summary(invoice: Invoice) -> str:
    """The one-line summary shown for each journey in the Temporal UI."""
    return f"{invoice.invoice_id} · {invoice.currency} {invoice.amount} · due {invoice.due_on}"


def start_search_attributes(invoice: Invoice) -> TypedSearchAttributes:
    """Search attributes set when a journey starts. Never names, emails or phone numbers."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(CUSTOMER_ID, invoice.customer.id),
            SearchAttributePair(INVOICE_ID, invoice.invoice_id),
            SearchAttributePair(JOURNEY_STAGE, Stage.scheduled.value),
            SearchAttributePair(AMOUNT_OUTSTANDING, float(invoice.amount)),
        ]
    )
