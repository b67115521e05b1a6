"""What the workflows hand to their activities (record, deliver) and get back."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from workflows.models.journey import Invoice, NextAction, Outcome, Stage
from workflows.models.plan import PlanView
from workflows.policy import Channel, Tone


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
    customer_phone: str | None = None
    """The debtor's phone as the journey knows it, so a STOP from a number changed mid-journey
    finds the journey; plans leave it out."""


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
    start: RecordRequest | None = None
    """The journey's start, carried while the journey has written no record of its own: its
    starter (the API) records it, and a message of a journey whose start record was lost (the API
    stopped in between) stores it first, where absent (`Store.record_start`)."""


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
