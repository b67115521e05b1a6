"""The data a journey is made of: its input, the facts and commands it receives, what it reports.

Plain pydantic models shared by the workflow, the activities and the API (which imports them; never
the other way round). New fields always get defaults, so stored histories keep replaying.
Money is `Decimal` and travels as a string.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.policy import Channel, Policy, Tone


class Stage(StrEnum):
    scheduled = "scheduled"
    reminding = "reminding"
    disputed = "disputed"
    promised = "promised"
    arrangement = "arrangement"
    paused = "paused"
    agent = "agent"
    # A closed journey's stage is its outcome.
    paid = "paid"
    cancelled = "cancelled"
    written_off = "written_off"
    handed_over = "handed_over"


class Outcome(StrEnum):
    paid = "paid"
    cancelled = "cancelled"
    written_off = "written_off"
    handed_over = "handed_over"


class Customer(BaseModel):
    """The debtor, as the billing system knows them. Never put into search attributes."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    locale: str = "en"
    timezone: str = "UTC"
    country: str | None = None
    kind: Literal["business", "consumer", "key"] = "business"
    preferred_channel: Channel | None = None


class Invoice(BaseModel):
    invoice_id: str
    amount: Decimal
    currency: str
    issued_on: date
    due_on: date
    due_at: datetime | None = None
    payment_url: str
    policy: str = "standard"
    customer: Customer


class JourneyInput(BaseModel):
    invoice: Invoice
    policy: Policy
    """The snapshot taken at start."""
    actor: str = "system"
    fingerprint: str = ""
    """Hash of the request that started the journey: the same invoice posted again matches it."""


class NextAction(BaseModel):
    at: datetime
    step: str
    channels: list[Channel] | None = None
    action: str | None = None


# ---- facts (signals) ---------------------------------------------------------------------------


class PaymentReceived(BaseModel):
    amount: Decimal
    reference: str
    paid_at: datetime | None = None
    actor: str = "integration"


class ContactChanged(BaseModel):
    email: str | None = None
    phone: str | None = None
    preferred_channel: Channel | None = None
    actor: str = "agent"


class ChannelOptedOut(BaseModel):
    channel: Channel
    actor: str = "debtor"


class TaskCompleted(BaseModel):
    task_id: str
    kind: str
    actor: str = "agent"
    note: str = ""


# ---- commands (updates) ------------------------------------------------------------------------


class OpenDispute(BaseModel):
    reason: str
    actor: str = "agent"


class DisputeOutcome(StrEnum):
    rejected = "rejected"
    upheld = "upheld"
    adjusted = "adjusted"


class ResolveDispute(BaseModel):
    outcome: DisputeOutcome
    amount: Decimal | None = None
    note: str = ""
    actor: str = "agent"


class Pause(BaseModel):
    reason: str
    until: datetime | None = None
    actor: str = "agent"


class Resume(BaseModel):
    reason: str = ""
    actor: str = "agent"


class Close(BaseModel):
    """Cancel (credit note, error) or write off."""

    reason: str
    actor: str = "agent"


# ---- what the journey reports ------------------------------------------------------------------


class JourneyStatus(BaseModel):
    invoice_id: str
    customer_id: str
    stage: Stage
    outcome: Outcome | None = None
    amount: Decimal
    outstanding: Decimal
    currency: str
    due_on: date
    next_action: NextAction | None = None
    dispute_reason: str | None = None
    paused_reason: str | None = None
    last_tone: Tone | None = None
    payments: list[str] = Field(default_factory=list)


class ActionResult(BaseModel):
    """What an update answers: the journey after the command."""

    stage: Stage
    outcome: Outcome | None = None
    outstanding: Decimal
    detail: str = ""


# ---- activity inputs ---------------------------------------------------------------------------


class TimelineEvent(BaseModel):
    key: str
    """Unique per journey event, so a retried activity never records twice."""
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any] = Field(default_factory=dict)


class TaskRequest(BaseModel):
    key: str
    kind: str
    title: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Snapshot(BaseModel):
    """The read model's view of a journey, written with every event."""

    invoice_id: str
    customer_id: str
    stage: Stage
    outcome: Outcome | None = None
    outstanding: Decimal
    next_action: NextAction | None = None


class RecordRequest(BaseModel):
    snapshot: Snapshot
    events: list[TimelineEvent] = Field(default_factory=list)
    tasks: list[TaskRequest] = Field(default_factory=list)
    invoice: Invoice | None = None
    """Given once, at journey start, to create the invoice row if the API did not."""
    policy_name: str | None = None
    policy_version: int | None = None
    fingerprint: str | None = None


class NextStepNote(BaseModel):
    """What the message tells the debtor happens next if nothing happens."""

    kind: Literal["reminder", "agent_call", "hand_over", "none"]
    at: datetime | None = None


class MessageRequest(BaseModel):
    key_prefix: str
    """`invoice-X:step-name`; the channel is appended to make each message's unique key."""
    invoice: Invoice
    outstanding: Decimal
    template: str
    tone: Tone
    channels: list[Channel]
    all_channels: bool = True
    """True: send on every channel listed (in order). False: stop at the first that works."""
    unreachable: list[Channel] = Field(default_factory=list)
    next_step: NextStepNote = Field(default_factory=lambda: NextStepNote(kind="none"))
    extra: dict[str, str] = Field(default_factory=dict)
    snapshot: Snapshot
    at: datetime


class ChannelOutcome(BaseModel):
    channel: Channel
    status: Literal["sent", "outbox", "failed", "skipped"]
    reason: str = ""
    permanent: bool = False


class MessageResult(BaseModel):
    outcomes: list[ChannelOutcome] = Field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(o.status in ("sent", "outbox") for o in self.outcomes)


def zero_if_negative(value: Decimal) -> Decimal:
    return value if value > 0 else Decimal("0")


WAIT_FOREVER = timedelta(days=3650)
