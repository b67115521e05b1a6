"""Email through SendGrid's official SDK."""

from __future__ import annotations

import http.client
import json
import urllib.error
from datetime import datetime
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
        if message.reply_to:  # the journey's own address: a reply finds its invoice
            mail.reply_to = ReplyTo(message.reply_to)
        elif self._reply_to is not None:
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
