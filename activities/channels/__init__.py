"""Channel senders: email through SendGrid, SMS and WhatsApp through Twilio, or the local outbox.

Senders are synchronous (the official SDKs block) and run in the worker's activity thread pool.
Every provider failure becomes a `DeliveryError` that says whether retrying can help and whether
the recipient itself is the problem (an invalid or unsubscribed address makes the channel unusable
for that debtor, and the journey moves on to another channel).

A new channel gets its sender here (a module like `sendgrid.py`), a place in `wiring.py`, a
member of `workflows.policy.Channel` and its provider queue in `workflows.messaging.PROVIDERS`.
"""

from activities.channels.base import (
    SENDGRID_DEFAULT_URL,
    TWILIO_CONFIG_CODES,
    TWILIO_RECIPIENT_CODES,
    CannotTell,
    DeliveryError,
    Sender,
    SendReceipt,
    masked,
    redacted,
)
from activities.channels.outbox import OutboxSender
from activities.channels.sendgrid import SendGridSender
from activities.channels.twilio import TwilioSender
from activities.channels.wiring import build_senders

__all__ = [
    "SENDGRID_DEFAULT_URL",
    "TWILIO_CONFIG_CODES",
    "TWILIO_RECIPIENT_CODES",
    "CannotTell",
    "DeliveryError",
    "OutboxSender",
    "SendGridSender",
    "SendReceipt",
    "Sender",
    "TwilioSender",
    "build_senders",
    "masked",
    "redacted",
]
