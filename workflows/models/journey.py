"""A journey's input and what it reports: the invoice, the debtor, the stage, the status."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.models.commands import PromiseToPay
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
    start_recorded: bool = False
    """Its starter (the API) records the start itself: the invoice's row, the first snapshot and
    `journey_started`, written before it answers. The journey then writes no record of its start
    (its first task writes only what it has to say itself: a key customer's call task, a late
    start's skipped steps); its first activity carries the start again, written only where
    absent, in case the starter stopped between starting the journey and recording it."""
    history_budget: int = 2000
    """Continue as new before a run's history reaches this many events (or when Temporal asks)."""
    state: dict[str, Any] | None = None
    """Set when the journey continues as new: its state (`workflows.journey.state.JourneyState`)."""


class NextAction(BaseModel):
    at: datetime
    step: str
    channels: list[Channel] | None = None
    action: str | None = None


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
