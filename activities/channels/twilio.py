"""SMS and WhatsApp through Twilio's official SDK."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from activities.channels.base import (
    TWILIO_CONFIG_CODES,
    TWILIO_RECIPIENT_CODES,
    DeliveryError,
    SendReceipt,
    _by_status,
    _retry_after,
    _unreachable,
)
from activities.rendering import RenderedMessage
from workflows.policy import Channel

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
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime, key: str
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
            # A list page that failed carries the HTTP response, not a status (twilio.base.page).
            response = next((a for a in exc.args if hasattr(a, "status_code")), None)
            if response is None:
                return DeliveryError(f"Twilio client error: {exc!r}", retryable=False)
            status = int(response.status_code)
            if status in (401, 403):
                return DeliveryError(
                    f"Twilio refused to list messages ({status}): check "
                    "DUNWELL_TWILIO_ACCOUNT_SID and DUNWELL_TWILIO_AUTH_TOKEN",
                    retryable=False,
                )
            detail = f"listing messages: {str(getattr(response, 'text', ''))[:200]}"
            return _by_status("Twilio", status, detail, _retry_after(self._http.retry_after))
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
