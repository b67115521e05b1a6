"""Email through SendGrid's official SDK."""

from __future__ import annotations

import http.client
import json
import urllib.error
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

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

from activities.channels.base import (
    SENDGRID_DEFAULT_URL,
    CannotTell,
    DeliveryError,
    SendReceipt,
    _by_status,
    _retry_after,
    _unreachable,
)
from activities.rendering import RenderedMessage
from workflows.policy import Channel

# ---- SendGrid ----------------------------------------------------------------------------------

KEY_ARG = "dunwell_key"
"""The custom arg that carries a message's key: its events, and the Email Activity query."""


class SendGridSender:
    """Email through the SendGrid v3 Mail Send API."""

    def __init__(
        self,
        api_key: str,
        email_from: str,
        reply_to: str | None = None,
        base_url: str | None = None,
        timeout: float = 10,
        activity_lag_s: float = 300,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=base_url or SENDGRID_DEFAULT_URL)
        self._from = _address(email_from, "DUNWELL_EMAIL_FROM")
        self._reply_to = _address(reply_to, "DUNWELL_EMAIL_REPLY_TO") if reply_to else None
        self._timeout = timeout
        self._activity_lag_s = activity_lag_s

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
        if message.reply_to:  # the journey's own address: a reply finds its invoice
            mail.reply_to = ReplyTo(message.reply_to)
        elif self._reply_to is not None:
            mail.reply_to = ReplyTo(self._reply_to[1], self._reply_to[0] or None)
        mail.category = Category("dunwell")
        mail.custom_arg = CustomArg(KEY_ARG, key)
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
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime, key: str
    ) -> SendReceipt | None:
        """Ask SendGrid's Email Activity API for the email carrying our key (its custom arg).

        The API is a paid add-on: a key without it (401, 403, 404) cannot tell. The feed lists a
        message some time after Mail Send accepted it, so "not there" is believed only once the
        earlier attempt's claim is `activity_lag_s` old; until then the attempt waits (a
        retryable error), and sends nothing.
        """
        query = f"(unique_args['{KEY_ARG}']=\"{key}\")"
        try:
            response = self._client.client.messages.get(
                query_params={"query": query, "limit": 10}, timeout=self._timeout
            )
        except SendGridHTTPError as exc:
            if int(exc.status_code) in (401, 403, 404):
                raise CannotTell(
                    f"SendGrid's Email Activity API answered {exc.status_code}: this key cannot "
                    "read it (a paid add-on, and the key needs Email Activity access)"
                ) from exc
            raise _sendgrid_error(exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _unreachable("SendGrid", exc) from exc
        for found in _objects(response.body, "messages"):
            return SendReceipt("sendgrid", str(found.get("msg_id") or ""), delivered=True)
        age = (datetime.now(UTC) - since).total_seconds()
        if age < self._activity_lag_s:
            wait = self._activity_lag_s - age
            raise DeliveryError(
                f"SendGrid's Email Activity does not list {key} yet; it may run behind, so "
                f"asking again in {wait:.0f} s before sending (DUNWELL_SENDGRID_ACTIVITY_LAG_S)",
                retryable=True,
                retry_after=max(1.0, wait),
            )
        return None


def _address(value: str, setting: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    if "@" not in addr:
        raise ValueError(f"{setting} must be an email address, like 'Name <addr@example.com>'")
    return name, addr


def _sendgrid_error(exc: SendGridHTTPError) -> DeliveryError:
    status = int(exc.status_code)
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
    errors = _objects(body, "errors")
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


def _objects(body: bytes | str, field: str) -> list[dict[str, Any]]:
    """The objects listed under `field` of a SendGrid JSON answer (`errors`, `messages`)."""
    try:
        listed = json.loads(body or b"{}").get(field, [])
    except (ValueError, AttributeError):
        return []
    return [o for o in listed if isinstance(o, dict)] if isinstance(listed, list) else []


def _about_recipient(error: dict[str, Any]) -> bool:
    field = str(error.get("field") or "")
    return field.startswith("personalizations") and (".to" in field or field.endswith("email"))
