"""What every sender shares: the `Sender` protocol, `DeliveryError` and how provider failures are
classified (retryable or not, the recipient's fault or ours)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from activities.rendering import RenderedMessage
from workflows.policy import Channel

SENDGRID_DEFAULT_URL = "https://api.sendgrid.com"

# Twilio error codes that mean this recipient cannot be reached on this channel.
# https://www.twilio.com/docs/api/errors
TWILIO_RECIPIENT_CODES = {
    21211: "invalid 'To' phone number",
    21214: "'To' phone number cannot be reached",
    21217: "phone number does not appear to be valid",
    21407: "this phone number type does not support SMS",
    21610: "the recipient has unsubscribed (replied STOP)",
    21612: "the 'To' phone number is not currently reachable",
    21614: "'To' number is not a valid mobile number",
    63003: "the channel could not find the 'To' address",
    63024: "invalid message recipient",
}
# Twilio error codes that mean our own configuration is wrong, with the setting to check.
TWILIO_CONFIG_CODES = {
    20003: "DUNWELL_TWILIO_ACCOUNT_SID and DUNWELL_TWILIO_AUTH_TOKEN",
    20404: "DUNWELL_TWILIO_ACCOUNT_SID",
    21212: "DUNWELL_TWILIO_FROM / DUNWELL_TWILIO_WHATSAPP_FROM",
    21606: "DUNWELL_TWILIO_FROM / DUNWELL_TWILIO_WHATSAPP_FROM",
    21659: "DUNWELL_TWILIO_FROM / DUNWELL_TWILIO_WHATSAPP_FROM",
    63007: "DUNWELL_TWILIO_WHATSAPP_FROM",
}


class DeliveryError(Exception):
    """A provider did not take the message.

    `retryable`: a later attempt may work (timeout, connection error, 429, 5xx).
    `recipient_problem`: the address itself is invalid or unsubscribed; do not use this channel
    for this debtor again. Neither: our own configuration is wrong (the reason says what to fix).
    `ambiguous`: the request may have reached the provider and been accepted (a read timeout,
    a connection cut after sending): only the provider can say whether the message went out.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        recipient_problem: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.recipient_problem = recipient_problem
        self.retry_after = retry_after
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class SendReceipt:
    provider: str
    message_id: str
    delivered: bool
    """False for the outbox: nobody received anything."""


class Sender(Protocol):
    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        """Hand one message to the provider; raises DeliveryError."""
        ...

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime, key: str
    ) -> SendReceipt | None:
        """The provider's record of the message `key` sent since `since`, when it can tell.

        Raises `CannotTell` where the provider keeps no record we may read (SendGrid without its
        Email Activity add-on).
        """
        ...


class CannotTell(Exception):
    """The provider cannot say whether an earlier attempt's message reached it."""


# ---- shared classification ---------------------------------------------------------------------


def masked(address: str) -> str:
    """An email address or number as logs may show it: enough to tell two apart, no more."""
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return f"***{address[-3:]}" if len(address) > 3 else "***"


def redacted(text: str, *addresses: str) -> str:
    """`text` (a provider's error, say) with each of `addresses` masked."""
    for address in addresses:
        if address:
            text = text.replace(address, masked(address))
    return text


def _by_status(provider: str, status: int, detail: str, retry_after: float | None) -> DeliveryError:
    if status == 429:
        return DeliveryError(
            f"{provider} is rate limiting us (429): {detail}",
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500 or status == 408:
        return DeliveryError(
            f"{provider} is unavailable ({status}): {detail}",
            retryable=True,
            retry_after=retry_after,
        )
    return DeliveryError(f"{provider} refused the message ({status}): {detail}", retryable=False)


def _unreachable(provider: str, exc: BaseException) -> DeliveryError:
    reason = str(getattr(exc, "reason", None) or exc)
    return DeliveryError(
        f"{provider} could not be reached: {type(exc).__name__}: {reason[:300]}",
        retryable=True,
        ambiguous=not _never_connected(exc),
    )


def _never_connected(exc: BaseException) -> bool:
    """Whether the request surely never reached the provider (refused, unresolvable, or timed
    out while connecting); anything else may have been sent before it failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        if type(seen).__name__ == "ConnectTimeout":
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, ConnectionRefusedError | socket.gaierror):
            return True
        inner = seen.__cause__ or seen.__context__
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        seen = inner if inner is not seen else None
    return "Connection refused" in str(exc) or "Failed to establish a new connection" in str(exc)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds, or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
