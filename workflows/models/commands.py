"""Commands (updates): each can be refused by its validator with a clear reason."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel


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
