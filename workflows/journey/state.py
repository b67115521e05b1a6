"""The journey's state as plain models, with pure transitions (tested without Temporal).

Grouped by what belongs together: the holds and the time they shift the ladder, the dispute, the
promise, the ladder's position, the messages waiting to go out. The whole state is one model, so a
journey continues as new by handing it to its next run. New fields always get defaults.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field

from workflows.models import (
    Customer,
    Outcome,
    Pause,
    PaymentReceived,
    PromiseToPay,
    Stage,
)
from workflows.policy import Channel, Tone

DISPUTE = "dispute"
PAUSE = "pause"
CALL = "personal_call"
PROMISE = "promise"
PLAN = "arrangement"
REPLY = "reply"
SHIFTING = frozenset({DISPUTE, PAUSE, PROMISE, PLAN, REPLY})
"""Holds that move the rest of the ladder by the time they last. Waiting for a key customer's call
does not: the catch-up rule applies instead (the invoice's real due date still counts)."""
CHASING_STOPPED = frozenset({DISPUTE, PAUSE})
"""Holds that stop an instalment plan's own reminders too."""


class Holds(BaseModel):
    """What holds the ladder, since when, and how far the holds so far moved it."""

    kinds: set[str] = Field(default_factory=set)
    since: datetime | None = None
    shift: timedelta = timedelta(0)

    def __contains__(self, kind: object) -> bool:
        return kind in self.kinds

    def __bool__(self) -> bool:
        return bool(self.kinds)

    @property
    def shifting(self) -> bool:
        return bool(self.kinds & SHIFTING)

    @property
    def chasing_stopped(self) -> bool:
        return bool(self.kinds & CHASING_STOPPED)

    def hold(self, kind: str, now: datetime) -> None:
        if kind in SHIFTING and not self.shifting:
            self.since = now
        self.kinds.add(kind)

    def release(self, kind: str, now: datetime) -> None:
        self.kinds.discard(kind)
        if not self.shifting and self.since is not None:
            # Every remaining step moves by the time spent on hold: no burst after a pause.
            self.shift += now - self.since
            self.since = None

    def describe(self) -> str:
        return ", ".join(sorted(self.kinds))


class Dispute(BaseModel):
    reason: str
    actor: str = "agent"
    opened_at: datetime
    review_task_created: bool = False

    def review_at(self, after: timedelta) -> datetime | None:
        """When an agent must review it; None once the task exists."""
        return None if self.review_task_created else self.opened_at + after


class Promise(BaseModel):
    """The promise to pay in force (if any), and how many were made."""

    current: PromiseToPay | None = None
    due: datetime | None = None
    """The promised moment plus the policy's grace: broken if not kept by then."""
    paid: Decimal = Decimal(0)
    made: int = 0

    def make(self, promise: PromiseToPay, due: datetime) -> bool:
        """Take a new promise; answers whether it replaced one in force."""
        replaced = self.current is not None
        self.made += 1
        self.current, self.due, self.paid = promise, due, Decimal(0)
        return replaced

    def pay(self, amount: Decimal, outstanding: Decimal) -> bool:
        """Count a payment; answers whether it keeps a promise of part of the amount."""
        if self.current is None:
            return False
        self.paid += amount
        promised = self.current.amount or 0
        return outstanding > 0 and self.paid >= promised > 0

    def end(self) -> None:
        self.current = self.due = None


class Ladder(BaseModel):
    """Where the journey is on the policy's ladder, and the tones it used."""

    next_index: int = 0
    performed_any: bool = False
    spread: timedelta = timedelta(0)
    last_tone: Tone | None = None
    tone_floor: Tone | None = None
    """After a lapsed plan the journey never goes back to a softer tone."""

    def used(self, tone: Tone) -> None:
        if self.last_tone is None or tone.rank > self.last_tone.rank:
            self.last_tone = tone

    def at_least(self, tone: Tone) -> Tone:
        last = self.last_tone
        return last if last is not None and last.rank > tone.rank else tone

    def too_soft(self, tone: Tone | None) -> bool:
        return self.tone_floor is not None and tone is not None and tone.rank < self.tone_floor.rank


class QueuedMessage(BaseModel):
    """A one-off message (not a ladder step) waiting to go out."""

    template: str
    tone: Tone
    key: str
    extra: dict[str, str] = Field(default_factory=dict)
    resend: bool = False
    """The same message again, on another channel, after a bounce."""
    during_holds: bool = False
    """Goes out at once, hold or not (a confirmation of the very thing that holds the journey)."""


class LastMessage(BaseModel):
    """The journey's latest message, so that a later bounce can send it again elsewhere."""

    key: str
    template: str
    tone: Tone
    extra: dict[str, str] = Field(default_factory=dict)
    reached: set[Channel] = Field(default_factory=set)


class JourneyState(BaseModel):
    customer: Customer
    outstanding: Decimal
    outcome: Outcome | None = None
    payments: dict[str, PaymentReceived] = Field(default_factory=dict)
    holds: Holds = Field(default_factory=Holds)
    dispute: Dispute | None = None
    pause: Pause | None = None
    promise: Promise = Field(default_factory=Promise)
    ladder: Ladder = Field(default_factory=Ladder)
    unreachable: set[Channel] = Field(default_factory=set)
    bounced: set[str] = Field(default_factory=set)
    last_message: LastMessage | None = None
    queued: list[QueuedMessage] = Field(default_factory=list)
    plan_number: int = 0
    """Carried across continue-as-new: the highest plan number given so far (a plan that never
    started included), so the next run never gives it again."""
    reply_until: datetime | None = None
    """The debtor wrote: no automatic reminder until then, or until an agent answered."""
    replies: set[str] = Field(default_factory=set)
    """References of the replies recorded (a provider posting one twice is recorded once)."""
    emitted: int = 0
    """Timeline events made so far (their keys go on counting across continue-as-new)."""

    def stage(self, steps: int) -> Stage:
        if self.outcome is not None:
            return Stage(self.outcome.value)
        holds = self.holds
        if DISPUTE in holds:
            return Stage.disputed
        if PAUSE in holds:
            return Stage.paused
        if PLAN in holds:
            return Stage.arrangement
        if PROMISE in holds:
            return Stage.promised
        if CALL in holds or REPLY in holds or self.ladder.next_index >= steps:
            return Stage.agent
        return Stage.reminding if self.ladder.performed_any else Stage.scheduled

    def must_stop_sending(self) -> bool:
        return self.outcome is not None or self.holds.shifting

    def close(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.holds.kinds.clear()
        self.promise.end()

    def take_payment(self, payment: PaymentReceived) -> None:
        self.payments[payment.reference] = payment
        if self.outcome is None:
            self.outstanding -= payment.amount

    def settle(self) -> Decimal | None:
        """Once paid in full: outstanding becomes zero; answers the surplus (maybe zero)."""
        if self.outcome is not None or self.outstanding > 0:
            return None
        surplus = -self.outstanding
        self.outstanding -= self.outstanding  # zero, in the invoice's own decimals
        return surplus
