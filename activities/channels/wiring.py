"""Which sender serves each channel, from the settings."""

from __future__ import annotations

import logging
from typing import Any

from activities.channels.base import Sender
from activities.channels.outbox import OutboxSender
from activities.channels.sendgrid import SendGridSender
from activities.channels.twilio import TwilioSender
from settings import Settings
from workflows.policy import Channel

log = logging.getLogger("dunwell.channels")

# ---- wiring ------------------------------------------------------------------------------------


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """A sender per channel: the provider when configured, else the local outbox.

    A half-configured provider is a mistake worth stopping for: ValueError names what is missing.
    """
    outbox = OutboxSender()
    senders: dict[Channel, Sender] = {channel: outbox for channel in Channel}

    api_key = _secret(settings.sendgrid_api_key)
    if api_key:
        senders[Channel.email] = SendGridSender(
            api_key,
            settings.email_from,
            settings.email_reply_to or None,
            base_url=settings.sendgrid_base_url or None,
            timeout=settings.provider_timeout_s,
            activity_lag_s=settings.sendgrid_activity_lag_s,
        )

    twilio = _twilio_sender(settings)
    if twilio is not None:
        if settings.twilio_from:
            senders[Channel.sms] = twilio
        if settings.twilio_whatsapp_from:
            senders[Channel.whatsapp] = twilio

    for channel, sender in senders.items():
        where = "the local outbox (not delivered)" if sender is outbox else type(sender).__name__
        log.info("%s messages go to %s", channel.value, where)
    return senders


def _twilio_sender(settings: Settings) -> TwilioSender | None:
    given = {
        "DUNWELL_TWILIO_ACCOUNT_SID": settings.twilio_account_sid or None,
        "DUNWELL_TWILIO_AUTH_TOKEN": _secret(settings.twilio_auth_token),
        "DUNWELL_TWILIO_FROM": settings.twilio_from or None,
        "DUNWELL_TWILIO_WHATSAPP_FROM": settings.twilio_whatsapp_from or None,
    }
    if not any(given.values()):
        return None
    credentials = ("DUNWELL_TWILIO_ACCOUNT_SID", "DUNWELL_TWILIO_AUTH_TOKEN")
    missing = [name for name in credentials if not given[name]]
    if missing:
        present = ", ".join(name for name, value in given.items() if value)
        raise ValueError(
            f"Twilio is half configured: {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set ({present} is). Set "
            f"{'it' if len(missing) == 1 else 'them'}, or unset every DUNWELL_TWILIO_* variable "
            "to use the local outbox."
        )
    if not (given["DUNWELL_TWILIO_FROM"] or given["DUNWELL_TWILIO_WHATSAPP_FROM"]):
        raise ValueError(
            "Twilio is half configured: set DUNWELL_TWILIO_FROM (an SMS number such as "
            "+14155550100) and/or DUNWELL_TWILIO_WHATSAPP_FROM (a WhatsApp sender)."
        )
    return TwilioSender(
        str(given["DUNWELL_TWILIO_ACCOUNT_SID"]),
        str(given["DUNWELL_TWILIO_AUTH_TOKEN"]),
        given["DUNWELL_TWILIO_FROM"],
        given["DUNWELL_TWILIO_WHATSAPP_FROM"],
        base_url=settings.twilio_base_url or None,
        timeout=settings.provider_timeout_s,
        status_callback=(
            f"{settings.public_url.rstrip('/')}/v1/webhooks/twilio/status"
            if settings.public_url
            else None
        ),
    )


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    secret = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return secret or None
