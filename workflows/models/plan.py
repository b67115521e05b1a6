"""The instalment plan's input, state, view and result."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from workflows.models.commands import Instalment
from workflows.models.journey import Invoice, Stage
from workflows.policy import Channel, Policy, Tone


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


class PlanHold(BaseModel):
    """The journey stopped (or resumed) chasing: the plan's reminders stop (or resume) too."""

    held: bool
    stage: Stage | None = None


class PlanInput(BaseModel):
    invoice: Invoice
    """With the debtor's current contact details."""
    number: int
    policy: Policy
    instalments: list[Instalment]
    unreachable: list[Channel] = Field(default_factory=list)
    actor: str = "agent"
    history_budget: int = 500
    """Continue as new before a run's history reaches this many events (or when Temporal asks)."""
    state: PlanState | None = None
    """Set when the plan continues as new: where the previous run stopped."""
    hold: PlanHold | None = None
    """The journey's hold when it started the plan (a plan agreed during a pause starts held)."""


class PlanMessage(BaseModel):
    """A plan message waiting to go out, or the latest one sent (for a later bounce)."""

    key: str
    template: str
    tone: Tone
    extra: dict[str, str] = Field(default_factory=dict)
    channel: Channel | None = None
    """Where it went (for the latest message sent)."""


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
    queued: list[PlanMessage] = Field(default_factory=list)
    last_sent: PlanMessage | None = None


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
    unexpected: bool = False
    """The plan did not end by itself or on the journey's word (terminated, timed out)."""


PlanInput.model_rebuild()
