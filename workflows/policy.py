"""Escalation policies as data: the ladder of steps a journey follows, and the shipped policies.

A policy is a named, versioned document. A journey takes a snapshot of it at start, so editing a
policy never changes journeys already running. Offsets are ISO 8601 durations relative to the
invoice's due moment and may be negative (before it).
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, WithJsonSchema, field_validator, model_validator


class Tone(StrEnum):
    """Reminders escalate in this order."""

    friendly = "friendly"
    neutral = "neutral"
    firm = "firm"
    final = "final"

    @property
    def rank(self) -> int:
        return list(Tone).index(self)


class Channel(StrEnum):
    email = "email"
    sms = "sms"
    whatsapp = "whatsapp"


class StepAction(StrEnum):
    agent_task = "agent_task"
    """A person must call the debtor: a task appears on the agents' work list."""
    hand_over = "hand_over"
    """Pass the invoice to a collection agency and close the journey."""


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# JSON Schema's `duration` and `time` formats allow neither a minus sign nor a wall-clock time
# without a UTC offset; ours need both, so the document says what is really accepted.
SignedDuration = Annotated[
    timedelta,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
            "description": "ISO 8601 duration; negative is before the due moment (-P3D)",
            "examples": ["-P3D", "P7D", "PT30S"],
        }
    ),
]
LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
            "description": "wall-clock time in the debtor's time zone, HH:MM[:SS]",
        }
    ),
]


class SendWindow(BaseModel):
    """When messages may reach the debtor, in the debtor's own time zone."""

    days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: LocalTime = time(9, 0)
    end: LocalTime = time(17, 0)
    skip_public_holidays: bool = True
    spread: timedelta = Field(
        timedelta(hours=1),
        description="Messages due at the window's opening go out over its first part "
        "(each invoice at its own fixed minute), so a due-date surge does not hit the providers "
        "and the debtors' phones in the same second. At most half the window is used.",
    )

    @field_validator("days")
    @classmethod
    def _known_days(cls, days: list[str]) -> list[str]:
        days = [d.lower()[:3] for d in days]
        unknown = [d for d in days if d not in WEEKDAYS]
        if unknown or not days:
            raise ValueError(f"days must be a non-empty list of {', '.join(WEEKDAYS)}")
        return sorted(set(days), key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _start_before_end(self) -> SendWindow:
        if self.start >= self.end:
            raise ValueError("send_window.start must be earlier than send_window.end")
        if self.spread < timedelta(0):
            raise ValueError("send_window.spread must not be negative (PT0S switches it off)")
        return self

    @property
    def weekday_numbers(self) -> set[int]:
        return {WEEKDAYS.index(d) for d in self.days}


class Step(BaseModel):
    """One rung of the ladder: a message in a tone on some channels, or an action."""

    name: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    offset: SignedDuration
    tone: Tone | None = None
    channels: list[Channel] = Field(default_factory=list)
    template: str | None = Field(None, pattern=r"^[a-z0-9_]+$")
    action: StepAction | None = None

    @model_validator(mode="after")
    def _message_or_action(self) -> Step:
        if (self.template is None) == (self.action is None):
            raise ValueError(f"step {self.name!r} needs exactly one of template or action")
        if self.template is not None and (not self.channels or self.tone is None):
            raise ValueError(f"message step {self.name!r} needs a tone and at least one channel")
        return self

    @property
    def is_message(self) -> bool:
        return self.template is not None

    def describe(self) -> str:
        """One line for the Temporal UI: `email+sms · neutral · overdue_2`."""
        if self.action is not None:
            return f"{self.action.value} · {self.name}"
        channels = "+".join(c.value for c in self.channels)
        tone = self.tone.value if self.tone else ""
        return f"{channels} · {tone} · {self.template}"


class SelfServicePlan(BaseModel):
    """The instalment plans a debtor may agree by themselves on their page; anything else
    becomes a `plan_request` task for an agent."""

    max_instalments: int = Field(6, ge=2, le=36)
    """Most monthly instalments."""
    min_instalment: Decimal = Field(Decimal("25"), ge=0)
    """Smallest instalment, in the invoice's currency."""
    first_within: timedelta = timedelta(days=14)
    """The first instalment falls due at the latest this long after the proposal."""


class Policy(BaseModel):
    """A named, versioned escalation policy."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$", max_length=64)
    version: int = Field(1, ge=1)
    description: str = ""
    steps: list[Step] = Field(min_length=1, max_length=50)
    send_window: SendWindow | None = Field(default_factory=SendWindow)
    dispute_review_after: timedelta = timedelta(days=14)
    promise_grace: timedelta = timedelta(days=2)
    promise_max_delay: timedelta = timedelta(days=30)
    max_promises: int = Field(2, ge=0)
    max_instalments: int = Field(36, ge=1)
    instalment_reminder_before: timedelta = timedelta(days=3)
    instalment_grace: timedelta = timedelta(days=5)
    reply_hold: timedelta = Field(
        timedelta(days=3),
        description="After a debtor's reply, no automatic reminder for this long, counted in "
        "working days (Monday to Friday), or until an agent completes the reply task.",
    )
    self_service_plan: SelfServicePlan | None = Field(
        default_factory=SelfServicePlan,
        description="Plans the debtor may agree on their page (null: every proposal goes to an "
        "agent).",
    )
    min_part_payment: Decimal = Field(
        Decimal("10"),
        ge=0,
        description="Smallest amount a debtor may choose to pay on their page (in the invoice's "
        "currency); paying everything outstanding is always possible.",
    )
    portal_link_valid_for: timedelta = Field(
        timedelta(days=90),
        description="How long a debtor's personal link keeps working after their last open "
        "journey closed.",
    )

    @model_validator(mode="after")
    def _ordered_ladder(self) -> Policy:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("step names must be unique within a policy")
        offsets = [s.offset for s in self.steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be listed in order of offset")
        for step in self.steps[:-1]:
            if step.action == StepAction.hand_over:
                raise ValueError("hand_over closes the journey, so it must be the last step")
        tones = [s.tone.rank for s in self.steps if s.tone is not None]
        if tones != sorted(tones):
            raise ValueError(
                "tones must not soften along the ladder (friendly, neutral, firm, final)"
            )
        for duration in (self.dispute_review_after, self.promise_grace):
            if duration <= timedelta(0):
                raise ValueError("dispute_review_after and promise_grace must be positive")
        return self


def _message(name: str, offset: timedelta, tone: Tone, template: str, *channels: Channel) -> Step:
    return Step(name=name, offset=offset, tone=tone, template=template, channels=list(channels))


def _standard_ladder(unit: timedelta) -> list[Step]:
    """The standard ladder; `unit` is one day for real, one minute-ish for the demo."""
    e, s = Channel.email, Channel.sms
    return [
        _message("before_due", -3 * unit, Tone.friendly, "reminder_before_due", e),
        _message("overdue_1", 1 * unit, Tone.friendly, "overdue_1", e),
        _message("overdue_2", 7 * unit, Tone.neutral, "overdue_2", e, s),
        _message("overdue_3", 14 * unit, Tone.firm, "overdue_3", e),
        _message("final_notice", 30 * unit, Tone.final, "final_notice", e, s),
        Step(name="call_debtor", offset=45 * unit, action=StepAction.agent_task),
        Step(name="hand_over", offset=60 * unit, action=StepAction.hand_over),
    ]


STANDARD_POLICY = Policy(
    name="standard",
    description="Friendly email before the due date, escalating to a call and a collection agency.",
    steps=_standard_ladder(timedelta(days=1)),
)

DEMO_POLICY = Policy(
    name="demo",
    description="The standard ladder compressed into minutes (one day = ten seconds), "
    "with no send window, for trying dunwell live.",
    steps=_standard_ladder(timedelta(seconds=10)),
    send_window=None,
    dispute_review_after=timedelta(minutes=2),
    promise_grace=timedelta(seconds=30),
    promise_max_delay=timedelta(minutes=30),
    instalment_reminder_before=timedelta(seconds=30),
    instalment_grace=timedelta(seconds=50),
)

SHIPPED_POLICIES = (STANDARD_POLICY, DEMO_POLICY)
