"""What the API accepts and answers. Validation here is the first line: bad input never starts a
journey, and every rejection names the field and what to send instead."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from pydantic import AfterValidator, BaseModel, Field, HttpUrl, field_validator, model_validator

from workflows.common import fits_currency, minor_units
from workflows.models import (
    Customer,
    DisputeOutcome,
    Invoice,
    NextAction,
    Outcome,
    Stage,
)
from workflows.policy import Channel
from workflows.schedule import is_supported_country

_CURRENCIES = frozenset(list_currencies())
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give the time with a UTC offset, e.g. 2026-12-22T09:00:00+01:00")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=16, decimal_places=4)]


def check_precision(amount: Decimal, currency: str, field: str = "amount") -> None:
    """The currency's decimals (ISO 4217), from the one table the journey uses too."""
    if not fits_currency(amount, currency):
        digits = minor_units(currency)
        raise ValueError(f"{field} {amount} has more decimals than {currency} allows ({digits})")


class CustomerIn(BaseModel):
    id: str = Field(pattern=IDENTIFIER, examples=["C-17"])
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, description="E.164, e.g. +31612345678")
    locale: str = "en"
    timezone: str = "UTC"
    country: str | None = Field(None, description="ISO 3166-1 alpha-2, for public holidays")
    kind: Literal["business", "consumer", "key"] = "business"
    preferred_channel: Channel | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not _EMAIL.match(v):
            raise ValueError("not an email address")
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None and not _E164.match(v):
            raise ValueError("give the number in E.164 form, e.g. +31612345678")
        return v

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        try:
            Locale.parse(v.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            raise ValueError(f"unknown locale {v!r}; use e.g. en, nl, nl-BE") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name like Europe/Amsterdam"
            ) from None
        return v

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is not None and not is_supported_country(v.upper()):
            raise ValueError(f"unknown country {v!r}; use an ISO 3166-1 alpha-2 code like NL")
        return v.upper() if v else v

    @model_validator(mode="after")
    def _reachable(self) -> CustomerIn:
        if not self.email and not self.phone:
            raise ValueError(
                "give the customer an email or a phone number so reminders can reach them"
            )
        if self.preferred_channel == Channel.email and not self.email:
            raise ValueError("preferred_channel is email but the customer has no email")
        if self.preferred_channel in (Channel.sms, Channel.whatsapp) and not self.phone:
            raise ValueError(f"preferred_channel is {self.preferred_channel} but there is no phone")
        return self


class InvoiceIn(BaseModel):
    invoice_id: str = Field(pattern=IDENTIFIER, examples=["INV-2026-0042"])
    amount: PositiveMoney = Field(examples=["1250.00"])
    currency: str = Field(examples=["EUR"])
    issued_on: date
    due_on: date
    due_at: AwareDatetime | None = Field(
        None, description="Exact due moment (tests, demos); overrides due_on's send-window start"
    )
    payment_url: HttpUrl
    policy: str = Field("standard", pattern=r"^[a-z0-9_-]+$")
    customer: CustomerIn

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in _CURRENCIES:
            raise ValueError(f"unknown currency {v!r}; use an ISO 4217 code like EUR")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceIn:
        check_precision(self.amount, self.currency)
        if self.due_on < self.issued_on:
            raise ValueError("due_on is before issued_on")
        return self

    def to_invoice(self) -> Invoice:
        data = self.model_dump(mode="json")
        return Invoice.model_validate(
            {**data, "customer": Customer.model_validate(data["customer"])}
        )


class PaymentIn(BaseModel):
    amount: PositiveMoney = Field(examples=["250.00"])
    reference: str = Field(min_length=1, max_length=200, examples=["BANK-2026-1201-0007"])
    paid_at: AwareDatetime | None = None


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ResolutionIn(BaseModel):
    outcome: DisputeOutcome
    amount: PositiveMoney | None = Field(None, description="The new amount, for `adjusted`")
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _amount_for_adjusted(self) -> ResolutionIn:
        if self.outcome == DisputeOutcome.adjusted and self.amount is None:
            raise ValueError("an `adjusted` resolution needs the new `amount`")
        if self.outcome != DisputeOutcome.adjusted and self.amount is not None:
            raise ValueError("`amount` is only for an `adjusted` resolution")
        return self


class ActionIn(BaseModel):
    """Pause, resume, cancel or write off."""

    reason: str = Field(min_length=1, max_length=2000)
    until: AwareDatetime | None = Field(None, description="Pause only: resume by itself then")


class PromiseIn(BaseModel):
    """A promise to pay: by a day (the debtor's calendar) or a moment, optionally only part."""

    promised_on: date | None = Field(None, examples=["2026-12-30"])
    promised_at: AwareDatetime | None = None
    amount: PositiveMoney | None = Field(None, description="Part of the outstanding amount")

    @model_validator(mode="after")
    def _one_moment(self) -> PromiseIn:
        if (self.promised_on is None) == (self.promised_at is None):
            raise ValueError("give exactly one of `promised_on` (a date) or `promised_at`")
        return self


class InstalmentIn(BaseModel):
    due_on: date | None = Field(None, examples=["2027-01-15"])
    due_at: AwareDatetime | None = None
    amount: PositiveMoney = Field(examples=["400.00"])

    @model_validator(mode="after")
    def _one_moment(self) -> InstalmentIn:
        if (self.due_on is None) == (self.due_at is None):
            raise ValueError("give each instalment exactly one of `due_on` or `due_at`")
        return self


class ArrangementIn(BaseModel):
    """An instalment plan; the amounts must add up to the outstanding amount exactly."""

    instalments: list[InstalmentIn] = Field(min_length=1, max_length=120)


class InstalmentOut(BaseModel):
    number: int
    due_on: date
    due_at: datetime | None
    amount: Decimal
    paid: Decimal
    status: str = Field(description="open, late (inside the grace period), paid or missed")


class PlanOut(BaseModel):
    number: int
    workflow_id: str = Field(description="The plan's workflow in the Temporal UI")
    status: str = Field(description="running, completed, defaulted, cancelled, superseded or ended")
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    instalments: list[InstalmentOut]


class ContactIn(BaseModel):
    email: str | None = None
    phone: str | None = None
    preferred_channel: Channel | None = None

    _email = field_validator("email")(CustomerIn._email.__func__)  # type: ignore[attr-defined]
    _phone = field_validator("phone")(CustomerIn._phone.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _something(self) -> ContactIn:
        if self.email is None and self.phone is None and self.preferred_channel is None:
            raise ValueError("send at least one of email, phone, preferred_channel")
        return self


class OptOutIn(BaseModel):
    channel: Channel
    """The channel the debtor asked not to be contacted on (for this invoice's journey)."""


class TaskCompleteIn(BaseModel):
    note: str = Field("", max_length=2000)


class TimelineEventOut(BaseModel):
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]


class CustomerTimelineEventOut(TimelineEventOut):
    invoice_id: str


class InvoiceOut(BaseModel):
    invoice_id: str
    customer_id: str
    stage: Stage
    outcome: Outcome | None
    amount: Decimal
    outstanding: Decimal
    currency: str
    due_on: date
    policy: str
    policy_version: int
    next_action: NextAction | None
    plan: PlanOut | None = Field(None, description="The newest instalment plan, if any")
    workflow_id: str = Field(description="The journey's workflow in Temporal")
    temporal_ui: str | None = Field(
        None, description="The journey in the Temporal UI (when DUNWELL_TEMPORAL_UI_URL is set)"
    )
    timeline: list[TimelineEventOut] | None = None
    created_at: datetime
    updated_at: datetime


class InvoiceList(BaseModel):
    items: list[InvoiceOut]
    limit: int
    offset: int


class AcceptedOut(BaseModel):
    invoice_id: str
    accepted: bool = True
    detail: str


class PaymentOut(BaseModel):
    """A payment's answer: `applied` with the new amounts (200), or accepted for later (202)."""

    invoice_id: str
    reference: str
    applied: bool
    outstanding: Decimal | None = Field(None, description="After the payment (when applied)")
    stage: Stage | None = None
    outcome: Outcome | None = None
    detail: str


class ActionOut(BaseModel):
    invoice_id: str
    stage: Stage
    outcome: Outcome | None
    outstanding: Decimal
    detail: str = ""


class TaskOut(BaseModel):
    id: str
    invoice_id: str
    customer_id: str
    kind: str
    title: str
    detail: dict[str, Any]
    status: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    note: str | None


class PortalLinkOut(BaseModel):
    """A debtor's personal link (`url`), or the answer to revoking it."""

    customer_id: str
    url: str | None
    revoked: bool


class CustomerTimelineOut(BaseModel):
    customer_id: str
    events: list[CustomerTimelineEventOut]
    limit: int
    offset: int


class MessageOut(BaseModel):
    """A message as it was sent, or held in the local outbox (`status` outbox: not delivered)."""

    key: str
    channel: Channel
    template: str
    tone: str
    locale: str
    recipient: str
    status: str
    subject: str | None
    body: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery_status: str | None = None
    """What the provider reported afterwards (webhooks): delivered, opened, bounced, ..."""
    delivery_at: datetime | None = None
