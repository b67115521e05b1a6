"""How a journey is started: its workflow id, its one-line summary, its first search attributes,
its first state and the record of its start.

Used by the workflow, the API and the tests; pure, so importing it costs nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from workflows import schedule
from workflows.common import AMOUNT_OUTSTANDING, CUSTOMER_ID, INVOICE_ID, JOURNEY_STAGE
from workflows.journey.ladder import Ladder
from workflows.journey.state import JourneyState
from workflows.journey.state import Ladder as LadderPosition
from workflows.models import (
    Invoice,
    JourneyInput,
    RecordRequest,
    Snapshot,
    Stage,
    TimelineEvent,
)
from workflows.policy import Policy


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


def first_state(invoice: Invoice, policy: Policy, *, spread: bool = True) -> JourneyState:
    """A new journey's state: nothing paid, no hold, before its first step. `spread`: the
    invoice takes its place in the send window's spread (False only for journeys begun before
    the spread existed)."""
    window = policy.send_window
    offset = (
        schedule.spread_offset(invoice.invoice_id, window.spread)
        if spread and window is not None and window.spread
        else timedelta(0)
    )
    return JourneyState(
        customer=invoice.customer,
        outstanding=invoice.amount,
        ladder=LadderPosition(spread=offset),
    )


def started_detail(invoice: Invoice, policy: Policy) -> dict[str, object]:
    """What the `journey_started` event says."""
    return {
        "policy": policy.name,
        "policy_version": policy.version,
        "amount": str(invoice.amount),
        "currency": invoice.currency,
        "due_on": invoice.due_on.isoformat(),
    }


STARTED_KEY = "started"
"""The `journey_started` event's own key (`{workflow id}:started`), whoever records it."""


def first_fields(start: JourneyInput) -> dict[str, Any]:
    """What a journey's first record adds to make the invoice's row where it is absent."""
    return {
        "invoice": start.invoice,
        "policy_name": start.policy.name,
        "policy_version": start.policy.version,
        "fingerprint": start.fingerprint,
    }


def start_record(start: JourneyInput, at: datetime) -> RecordRequest:
    """The record of a journey's start, as its starter writes it (`JourneyInput.start_recorded`):
    the invoice's row with the journey's first snapshot, and the `journey_started` event. The
    same snapshot the journey itself would write at its start (a test compares the two)."""
    invoice, policy = start.invoice, start.policy
    state = first_state(invoice, policy)
    snapshot = Snapshot(
        invoice_id=invoice.invoice_id,
        customer_id=invoice.customer.id,
        stage=state.stage(len(policy.steps)),
        outcome=None,
        outstanding=state.outstanding,
        next_action=Ladder(invoice, policy).next_action(state),
        customer_phone=invoice.customer.phone,
    )
    event = TimelineEvent(
        key=f"{workflow_id(invoice.invoice_id)}:{STARTED_KEY}",
        at=at,
        kind="journey_started",
        actor=start.actor,
        detail=started_detail(invoice, policy),
    )
    return RecordRequest(snapshot=snapshot, events=[event], **first_fields(start))
