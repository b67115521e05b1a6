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


class ChannelOptedIn(BaseModel):
    """The debtor asked for this channel again (Twilio START / UNSTOP)."""

    channel: Channel
    actor: str = "debtor"


class MessageBounced(BaseModel):
    """A provider told us, after accepting it, that a message never reached the debtor.

    `message_key` is the message's key (`{workflow id}:{step}:{channel}`); a bounce reported twice
    for one key changes nothing the second time.
    """

    message_key: str
    channel: Channel
    reason: str = ""
    actor: str = "provider"


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


class PromiseToPay(BaseModel):
    """The debtor promises to pay (all, or `amount`) by a day or a moment."""

    promised_on: date | None = None
    promised_at: datetime | None = None
    amount: Decimal | None = None
    actor: str = "agent"


class Instalment(BaseModel):
    """One instalment of a plan: an amount due on a day (or at a moment)."""

    due_on: date | None = None
    due_at: datetime | None = None
    amount: Decimal


class AgreeArrangement(BaseModel):
    instalments: list[Instalment]
    actor: str = "agent"


class CancelArrangement(BaseModel):
    reason: str
    actor: str = "agent"


# ---- the instalment plan (child workflow) ------------------------------------------------------


class InstalmentStatus(StrEnum):
    open = "open"
    paid = "paid"
    late = "late"
    """Due and not (fully) paid, inside the grace period."""
    missed = "missed"
    """Grace expired unpaid: the plan defaulted on it."""


class InstalmentView(BaseModel):
    number: int
    due_on: date
    due_at: datetime | None = None
    amount: Decimal
    paid: Decimal = Decimal("0")
    status: InstalmentStatus = InstalmentStatus.open


class PlanOutcome(StrEnum):
    running = "running"
    completed = "completed"
    defaulted = "defaulted"
    cancelled = "cancelled"
    superseded = "superseded"
    ended = "ended"
    """The journey closed (paid another way, cancelled, written off) or changed its amount."""


class PlanView(BaseModel):
    """The plan as the invoice view shows it."""

    number: int
    workflow_id: str
    status: PlanOutcome = PlanOutcome.running
    currency: str
    total: Decimal
    paid: Decimal = Decimal("0")
    outstanding: Decimal
    instalments: list[InstalmentView]
    revision: int = 0
    """Grows with every change, so an older view never overwrites a newer one."""


class PlanInput(BaseModel):
    invoice: Invoice
    """With the debtor's current contact details."""
    number: int
    policy: Policy
    instalments: list[Instalment]
    unreachable: list[Channel] = Field(default_factory=list)
    actor: str = "agent"
    history_budget: int = 1000
    """Continue as new before a run's history reaches this many events (or when Temporal asks)."""
    state: PlanState | None = None
    """Set when the plan continues as new: where the previous run stopped."""


class PlanState(BaseModel):
    view: PlanView
    started_at: datetime | None = None
    reminded: list[int] = Field(default_factory=list)
    late_noted: list[int] = Field(default_factory=list)
    payments: list[str] = Field(default_factory=list)
    emitted: int = 0
    held: bool = False
    held_stage: Stage | None = None
    held_since: datetime | None = None
    held_total: timedelta = timedelta(0)
    end_reason: str | None = None


class PlanHold(BaseModel):
    """The journey stopped (or resumed) chasing: the plan's reminders stop (or resume) too."""

    held: bool
    stage: Stage | None = None


class EndPlan(BaseModel):
    outcome: PlanOutcome
    reason: str
    actor: str = "system"


class PlanResult(BaseModel):
    outcome: PlanOutcome
    paid: Decimal
    outstanding: Decimal
    reason: str = ""
    view: PlanView | None = None


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
    promise: PromiseToPay | None = None
    promises_made: int = 0
    plan_number: int | None = None


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
    plan: PlanView | None = None
    """Written by the instalment plan; journeys leave it out."""


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


PlanInput.model_rebuild()
