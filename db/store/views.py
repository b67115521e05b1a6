"""What the store answers: plain models, never ORM objects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel

from workflows.models import (
    Invoice,
    NextAction,
    Outcome,
    PlanView,
    Stage,
)

MessageStatus = Literal["claimed", "sent", "outbox", "failed"]
RELEASED = "released"
"""`claimed_by` of a message whose last attempt knew the provider did not take it."""
TaskStatus = Literal["open", "done"]


class InvoiceView(BaseModel):
    """An invoice and the latest state of its journey."""

    invoice_id: str
    customer_id: str
    stage: Stage
    outcome: Outcome | None
    amount: Decimal
    outstanding: Decimal
    currency: str
    due_on: date
    next_action: NextAction | None
    plan: PlanView | None = None
    policy_name: str
    policy_version: int
    fingerprint: str
    invoice: Invoice
    """The invoice as the billing system sent it."""
    created_at: datetime
    updated_at: datetime


class MessageView(BaseModel):
    """One message on one channel; `status` is `claimed` until the provider has answered."""

    key: str
    invoice_id: str
    channel: str
    template: str
    tone: str
    locale: str
    recipient: str
    status: MessageStatus
    provider: str | None
    provider_message_id: str | None
    subject: str | None
    body: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery_status: str | None = None
    delivery_at: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    lease_until: datetime | None = None


class Claim(BaseModel):
    """What `claim_message` found.

    - `new`: this attempt claimed the message now; send it.
    - `done`: an earlier attempt finished it (sent, outbox or failed); send nothing.
    - `busy`: another attempt holds a live lease and may be sending right now; wait.
    - `taken_over`: an earlier attempt claimed it and died (its lease ran out) without saying
      what the provider answered; `previous_at` is when it claimed.
    """

    message: MessageView
    state: Literal["new", "done", "busy", "taken_over"]
    previous_at: datetime | None = None


class Receipt(BaseModel):
    """A provider's report on one message, as applied."""

    event_key: str
    status: str
    reason: str = ""
    bounce: bool = False


class OptOut(NamedTuple):
    """An address that may (not) be used on a channel any more, and who said so."""

    address: str
    channel: str
    actor: str
    reason: str


class ProviderState(BaseModel):
    provider: str
    state: Literal["ok", "misconfigured"]
    detail: str
    since: datetime
    checked_at: datetime


class TaskView(BaseModel):
    """A piece of work on the agents' list."""

    id: str
    task_key: str
    invoice_id: str
    customer_id: str
    kind: str
    title: str
    detail: dict[str, Any]
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    note: str | None
    assigned_to: str | None = None
    assigned_at: datetime | None = None


class PortalPayment(BaseModel):
    """A payment a debtor started on their page (see `PortalPaymentRow`)."""

    ref: str
    payment_id: str | None = None
    customer_id: str
    allocation: dict[str, str]
    """`{invoice_id: amount}` as strings, oldest invoice first."""
    amount: Decimal
    currency: str
    status: str
    created_at: datetime
