"""Facts from outside (signals): past tense, never refused."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from workflows.policy import Channel


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


class DebtorReplied(BaseModel):
    """The debtor wrote back (an email to the journey's reply address, a text to our number)."""

    channel: Channel
    text: str
    subject: str = ""
    sender: str = ""
    attachments: list[str] = Field(default_factory=list)
    """`name (type, size)` of each attachment; the files themselves are not kept."""
    reference: str = ""
    """The provider's id of the reply: the same reply twice is recorded once."""
    actor: str = "debtor"


class AgentRequest(BaseModel):
    """Something only a person can settle: the debtor asked on their page for more than the
    policy agrees by itself (a later promise, a plan), or a payment was refunded or charged back.
    It becomes an agent task."""

    kind: str
    """`promise_request`, `plan_request` or `refund`."""
    title: str
    detail: dict[str, str] = Field(default_factory=dict)
    actor: str = "debtor"


class TaskCompleted(BaseModel):
    task_id: str
    kind: str
    actor: str = "agent"
    note: str = ""
