"""Channel senders: email through SendGrid, SMS and WhatsApp through Twilio, or the local outbox.

Senders are synchronous (the official SDKs block) and run in the worker's activity thread pool.
Every provider failure becomes a `DeliveryError` that says whether retrying can help and whether
the recipient itself is the problem (an invalid or unsubscribed address makes the channel unusable
for that debtor, and the journey moves on to another channel).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import urllib.error
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any, Protocol

from python_http_client.exceptions import HTTPError as SendGridHTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    CustomArg,
    From,
    HtmlContent,
    Mail,
    PlainTextContent,
    ReplyTo,
    To,
)
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from activities.rendering import RenderedMessage
from settings import Settings
from workflows.policy import Channel

log = logging.getLogger("dunwell.channels")

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
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime
    ) -> SendReceipt | None:
        """The provider's record of this message sent since `since`, when it can tell.

        Raises `CannotTell` where the provider keeps no list to ask (SendGrid's mail send).
        """
        ...


class CannotTell(Exception):
    """The provider cannot say whether an earlier attempt's message reached it."""


# ---- outbox ------------------------------------------------------------------------------------


class OutboxSender:
    """Development and demos: delivers nothing, says so in the log."""

    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        first_line = message.subject or (message.text.splitlines() or [""])[0]
        log.info(
            "OUTBOX (not delivered) %s to %s: %s [%s]", channel.value, masked(to), first_line, key
        )
        return SendReceipt("outbox", key, delivered=False)

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime
    ) -> SendReceipt | None:
        return None  # nothing leaves the machine: writing the outbox again harms nobody


# ---- SendGrid ----------------------------------------------------------------------------------


class SendGridSender:
    """Email through the SendGrid v3 Mail Send API."""

    def __init__(
        self,
        api_key: str,
        email_from: str,
        reply_to: str | None = None,
        base_url: str | None = None,
        timeout: float = 10,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=base_url or SENDGRID_DEFAULT_URL)
        self._from = _address(email_from, "DUNWELL_EMAIL_FROM")
        self._reply_to = _address(reply_to, "DUNWELL_EMAIL_REPLY_TO") if reply_to else None
        self._timeout = timeout

    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        if channel != Channel.email:
            raise ValueError(f"SendGridSender sends email, not {channel.value}")
        name, address = parseaddr(to)
        if "@" not in address:
            # The SDK cannot even build a request for this; SendGrid would refuse it anyway.
            raise DeliveryError(
                f"not an email address: {to!r}", retryable=False, recipient_problem=True
            )
        mail = Mail(
            from_email=From(self._from[1], self._from[0] or None),
            to_emails=To(address, name or None),
            subject=message.subject or "",
            plain_text_content=PlainTextContent(message.text),
            html_content=HtmlContent(message.html) if message.html else None,
        )
        if self._reply_to is not None:
            mail.reply_to = ReplyTo(self._reply_to[1], self._reply_to[0] or None)
        mail.category = Category("dunwell")
        mail.custom_arg = CustomArg("dunwell_key", key)
        try:
            # The SDK's own send() takes no timeout; this is the same call with one.
            response = self._client.client.mail.send.post(
                request_body=mail.get(), timeout=self._timeout
            )
        except SendGridHTTPError as exc:
            raise _sendgrid_error(exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _unreachable("SendGrid", exc) from exc
        return SendReceipt("sendgrid", response.headers.get("X-Message-Id") or "", delivered=True)

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime
    ) -> SendReceipt | None:
        # Mail Send keeps no record we could look up by our key (the Email Activity API is a
        # paid add-on, minutes behind, and not keyed by our custom args).
        raise CannotTell("SendGrid cannot say whether an earlier attempt's email reached it")


def _address(value: str, setting: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"{setting} must be an email address, like 'Name <addr@example.com>'")
    return name, addr


def _sendgrid_error(exc: SendGridHTTPError) -> DeliveryError:
    status = int(exc.status_code)
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    errors = _sendgrid_errors(body)
    detail = "; ".join(e.get("message") or "" for e in errors) or body[:200]
    if status == 400 and any(_about_recipient(e) for e in errors):
        return DeliveryError(
            f"SendGrid refused the recipient: {detail}", retryable=False, recipient_problem=True
        )
    if status == 401:
        return DeliveryError(
            f"SendGrid rejected the API key (401): check DUNWELL_SENDGRID_API_KEY. {detail}",
            retryable=False,
        )
    if status == 403:
        return DeliveryError(
            "SendGrid refused to send (403): check that DUNWELL_SENDGRID_API_KEY has Mail Send "
            f"permission and DUNWELL_EMAIL_FROM is a verified sender. {detail}",
            retryable=False,
        )
    retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
    return _by_status("SendGrid", status, detail, retry_after)


def _sendgrid_errors(body: str) -> list[dict[str, Any]]:
    try:
        errors = json.loads(body).get("errors", [])
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _about_recipient(error: dict[str, Any]) -> bool:
    field = str(error.get("field") or "")
    return field.startswith("personalizations") and (".to" in field or field.endswith("email"))


# ---- Twilio ------------------------------------------------------------------------------------


class _TwilioHttp(TwilioHttpClient):
    """The SDK's HTTP client, remembering each thread's last Retry-After.

    TwilioRestException carries no headers, and one client serves many activity threads.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self._local.retry_after = None
        response = super().request(*args, **kwargs)
        if response.status_code >= 400 and response.headers:
            self._local.retry_after = response.headers.get("Retry-After")
        return response

    @property
    def retry_after(self) -> str | None:
        return getattr(self._local, "retry_after", None)


class TwilioSender:
    """SMS and WhatsApp through the Twilio Programmable Messaging API."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sms_from: str | None,
        whatsapp_from: str | None,
        base_url: str | None = None,
        status_callback: str | None = None,
        timeout: float = 10,
    ) -> None:
        self._http = _TwilioHttp(timeout)
        self._client = TwilioClient(account_sid, auth_token, http_client=self._http)
        if base_url:
            # Requests go to Domain.base_url + the resource path; region/edge host rewriting
            # (TWILIO_REGION, TWILIO_EDGE) would mangle a custom host, so it is switched off.
            self._client.api.base_url = base_url.rstrip("/")
            self._client.region = None
            self._client.edge = None
        self._sms_from = sms_from
        self._whatsapp_from = whatsapp_from
        self._status_callback = status_callback

    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        if channel == Channel.sms:
            sender, setting = self._sms_from, "DUNWELL_TWILIO_FROM"
        elif channel == Channel.whatsapp:
            sender, setting = self._whatsapp_from, "DUNWELL_TWILIO_WHATSAPP_FROM"
            sender = _whatsapp(sender) if sender else None
            to = _whatsapp(to)
        else:
            raise ValueError(f"TwilioSender sends sms and whatsapp, not {channel.value}")
        if not sender:
            raise DeliveryError(
                f"{setting} is not set: cannot send {channel.value}", retryable=False
            )
        options: dict[str, Any] = {}
        if self._status_callback:
            options["status_callback"] = self._status_callback
        try:
            if sender.removeprefix("whatsapp:").startswith("MG"):
                options["messaging_service_sid"] = sender.removeprefix("whatsapp:")
            else:
                options["from_"] = sender
            sent = self._client.messages.create(to=to, body=message.text, **options)
        except TwilioException as exc:
            raise self._twilio_error(exc) from exc
        except OSError as exc:  # requests' ConnectionError, Timeout... are OSErrors
            raise _unreachable("Twilio", exc) from exc
        return SendReceipt("twilio", str(sent.sid), delivered=True)

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime
    ) -> SendReceipt | None:
        """Ask Twilio's message list: this body to this number, created since `since`."""
        recipient = _whatsapp(to) if channel == Channel.whatsapp else to
        try:
            # Newest first. Not filtered by DateSent: a message still queued has none yet.
            found = self._client.messages.list(to=recipient, limit=50)
        except TwilioException as exc:
            raise self._twilio_error(exc) from exc
        except OSError as exc:
            raise _unreachable("Twilio", exc) from exc
        for sent in found:
            created = sent.date_created
            if sent.body == message.text and (created is None or created >= since - _SKEW):
                return SendReceipt("twilio", str(sent.sid), delivered=True)
        return None

    def _twilio_error(self, exc: TwilioException) -> DeliveryError:
        status = getattr(exc, "status", None)
        if not isinstance(status, int):
            return DeliveryError(f"Twilio client error: {exc!r}", retryable=False)
        code = getattr(exc, "code", None)
        message = str(getattr(exc, "msg", None) or getattr(exc, "detail", None) or "")
        message = message.removeprefix("Unable to create record: ")
        detail = f"error {code}: {message}" if code else str(message)
        if code in TWILIO_RECIPIENT_CODES:
            return DeliveryError(
                f"Twilio refused the recipient ({TWILIO_RECIPIENT_CODES[code]}; {detail})",
                retryable=False,
                recipient_problem=True,
            )
        if code in TWILIO_CONFIG_CODES or status in (401, 403):
            setting = TWILIO_CONFIG_CODES.get(
                code or 0, "DUNWELL_TWILIO_ACCOUNT_SID and DUNWELL_TWILIO_AUTH_TOKEN"
            )
            return DeliveryError(
                f"Twilio refused our request ({status}, {detail}): check {setting}",
                retryable=False,
            )
        return _by_status("Twilio", status, detail, _retry_after(self._http.retry_after))


_SKEW = timedelta(seconds=60)
"""How far the provider's clock and ours may disagree."""


def _whatsapp(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


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
