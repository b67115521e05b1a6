"""A fake SendGrid and Twilio on 127.0.0.1, for tests and demos: nothing leaves the machine.

It speaks just enough of both APIs for the official SDKs to send through it and parse its
answers, including the errors they return, so the code under test meets the real failure shapes.

    dunwell fake-providers [--port 8025] [--public-url http://127.0.0.1:8000]

Like the real services it reports back: with `--public-url` (dunwell's API) it posts SendGrid's
signed event webhook (processed, delivered, or a later bounce) and Twilio's signed status
callbacks (sent, delivered, or undelivered), and `POST /_fake/twilio/inbound` plays a debtor
texting STOP or START. `GET /_fake/messages` lists what arrived; `DELETE` forgets it.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
import urllib.request
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from fake_mollie import FakeMollie

log = logging.getLogger("dunwell.fake_providers")

SENDGRID_API_KEY = "SG.fake-dunwell-key"
TWILIO_ACCOUNT_SID = "AC" + "d0" * 16
TWILIO_AUTH_TOKEN = "fake-dunwell-token"

_TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_SENDGRID_DOCS = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"


class FakeProviders:
    """SendGrid `POST /v3/mail/send` and `GET /v3/messages` (Email Activity), and Twilio
    `POST /2010-04-01/Accounts/{sid}/Messages.json` and its list.

    Point the SDKs at `base_url` (DUNWELL_SENDGRID_BASE_URL, DUNWELL_TWILIO_BASE_URL) with the
    credentials given to the constructor (by default `SENDGRID_API_KEY`, `TWILIO_ACCOUNT_SID`,
    `TWILIO_AUTH_TOKEN` of this module). Accepted messages are appended to `received`.

    Failures chosen by the recipient, so tests and demos need no setup:

    - email whose local part starts with ``bounce``: SendGrid 400, invalid
      ``personalizations.0.to.0.email`` (also for any address that is not an address)
    - ... starts with ``ratelimit``: SendGrid 429 with ``Retry-After: 1``
    - ... starts with ``servererror``: SendGrid 500
    - ``+15005550001``: Twilio 400, code 21211 (invalid 'To' number; also any non-E.164 number)
    - ``+15005550002``: Twilio 400, code 21612 (cannot route to this number)
    - ``+15005550004``: Twilio 400, code 21610 (the recipient replied STOP: unsubscribed)
    - ``+15005550009``: Twilio 400, code 21614 (not a mobile number)
    - ``+15005550429``: Twilio 429, code 20429, ``Retry-After: 1``
    - ``+15005550500``: Twilio 500, code 20500
    - email starting ``timeout`` or ``+15005550408``: no answer for `hold_s` seconds (the
      client's timeout fires first)
    - email starting ``bouncelater``: accepted (202), then a ``bounce`` event to `events_url`
    - ``+15005550030``: accepted (201), then an ``undelivered`` callback (error 30005)

    The numbers follow Twilio's own magic test numbers; a ``whatsapp:`` prefix is ignored when
    matching. Wrong credentials answer 401 as the real services do. `fail_next(provider, status,
    count)` makes the next requests to one provider fail with `status` instead.
    """

    def __init__(
        self,
        sendgrid_api_key: str = SENDGRID_API_KEY,
        twilio_account_sid: str = TWILIO_ACCOUNT_SID,
        twilio_auth_token: str = TWILIO_AUTH_TOKEN,
        port: int = 0,
        events_url: str | None = None,
        inbound_url: str | None = None,
        callback_delay: float = 0.3,
        hold_s: float = 30,
        delay_s: float = 0,
    ) -> None:
        self.sendgrid_api_key = sendgrid_api_key
        self.events_url = events_url
        """Where SendGrid's signed event webhook goes (dunwell's /v1/webhooks/sendgrid)."""
        self.inbound_url = inbound_url
        """Where a debtor's text goes (dunwell's /v1/webhooks/twilio/inbound)."""
        self.callback_delay = callback_delay
        self.hold_s = hold_s
        self.delay_s = delay_s
        """Every accepted send is answered this many seconds late (a slow provider)."""
        self.activity_feed = True
        """SendGrid's Email Activity API (a paid add-on) answers; False: 403, as without it."""
        self.activity_lag_s = 0.0
        """An accepted email shows in Email Activity this many seconds later."""
        self._twilio_messages: list[dict[str, Any]] = []
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self.twilio_account_sid = twilio_account_sid
        self.twilio_auth_token = twilio_auth_token
        self._port = port
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._failures: dict[str, list[int]] = {"sendgrid": [], "twilio": []}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.mollie = FakeMollie()
        """Mollie's payments API and a checkout page (fake_mollie.py)."""

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeProviders:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.fake = self
        self._server = server
        self.mollie.base_url = self.base_url
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-providers", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProviders:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeProviders is not started; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- what was received, and failures on demand -------------------------------------------

    @property
    def sendgrid_webhook_public_key(self) -> str:
        """The verification key of the event webhook, base64 as SendGrid shows it."""
        der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    @property
    def received(self) -> list[dict[str, Any]]:
        """A copy of every accepted message, oldest first."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._twilio_messages.clear()
            for queue in self._failures.values():
                queue.clear()
        self.delay_s = 0
        self.activity_feed = True
        self.activity_lag_s = 0.0

    def fail_next(self, provider: str, status: int, count: int = 1) -> None:
        """The next `count` requests to `provider` ("sendgrid" or "twilio") answer `status`."""
        if provider not in self._failures:
            raise ValueError("provider must be 'sendgrid' or 'twilio'")
        with self._lock:
            self._failures[provider].extend([status] * count)

    def _simulate_inbound(self, body: bytes) -> _Answer:
        """`POST /_fake/twilio/inbound {"from": "+316...", "body": "STOP"}`."""
        try:
            text = json.loads(body or b"{}")
            self.inbound(str(text["from"]), str(text["body"]))
        except (ValueError, KeyError, TypeError):
            problem = {"message": 'send {"from": number, "body": text}'}
            return _Answer(400, json.dumps(problem).encode(), _JSON)
        except (RuntimeError, OSError) as exc:
            return _Answer(502, json.dumps({"message": str(exc)}).encode(), _JSON)
        return _Answer(204, b"")

    def _take_failure(self, provider: str) -> int | None:
        with self._lock:
            queue = self._failures[provider]
            return queue.pop(0) if queue else None

    def _record(self, item: dict[str, Any]) -> None:
        item["received_at"] = time.time()
        with self._lock:
            self._received.append(item)
        log.info("fake %s accepted %s to %s", item["provider"], item["id"], item["to"])

    # ---- SendGrid --------------------------------------------------------------------------------

    def _sendgrid(self, headers: Any, body: bytes) -> _Answer:
        if headers.get("Authorization") != f"Bearer {self.sendgrid_api_key}":
            return _sendgrid_errors(
                401, "The provided authorization grant is invalid, expired, or revoked", None
            )
        forced = self._take_failure("sendgrid")
        if forced is not None:
            return _sendgrid_forced(forced)
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _sendgrid_errors(400, "Bad Request", None)
        if not isinstance(payload, dict):
            return _sendgrid_errors(400, "Bad Request", None)
        problem = _sendgrid_invalid(payload)
        if problem is not None:
            return _sendgrid_errors(400, *problem)

        recipients = [to["email"] for p in payload["personalizations"] for to in p["to"]]
        bounces_later = False
        for address in recipients:
            local = address.split("@", 1)[0].lower()
            if local.startswith("timeout"):
                time.sleep(self.hold_s)
                return _sendgrid_forced(500)
            if local.startswith("bouncelater"):
                bounces_later = True
            elif local.startswith("bounce"):
                return _sendgrid_errors(
                    400, "Does not contain a valid address.", "personalizations.0.to.0.email"
                )
            if local.startswith("ratelimit"):
                return _sendgrid_forced(429)
            if local.startswith("servererror"):
                return _sendgrid_forced(500)

        message_id = secrets.token_urlsafe(16)[:22]
        content = {c.get("type"): c.get("value") for c in payload["content"]}
        custom_args = dict(payload.get("custom_args") or {})
        self._record(
            {
                "provider": "sendgrid",
                "id": message_id,
                "to": recipients[0] if len(recipients) == 1 else recipients,
                "from": payload["from"].get("email"),
                "from_name": payload["from"].get("name"),
                "reply_to": (payload.get("reply_to") or {}).get("email"),
                "subject": payload.get("subject") or payload["personalizations"][0].get("subject"),
                "text": content.get("text/plain"),
                "html": content.get("text/html"),
                "body": content.get("text/plain") or content.get("text/html"),
                "categories": list(payload.get("categories") or []),
                "custom_args": custom_args,
                "key": custom_args.get("dunwell_key"),
            }
        )
        if self.events_url:
            outcome = "bounce" if bounces_later else "delivered"
            self._later(self._sendgrid_events, message_id, recipients, custom_args, outcome)
        self._slowly()
        return _Answer(202, b"", {"X-Message-Id": message_id})

    def _sendgrid_activity(self, query: str, headers: Any) -> _Answer:
        """`GET /v3/messages?query=(unique_args['k']="v")&limit=N`: Email Activity's filter,
        for the one query form dunwell asks, over the emails older than `activity_lag_s`."""
        if headers.get("Authorization") != f"Bearer {self.sendgrid_api_key}":
            return _sendgrid_errors(
                401, "The provided authorization grant is invalid, expired, or revoked", None
            )
        if not self.activity_feed:
            return _sendgrid_errors(403, "access forbidden", None)
        forced = self._take_failure("sendgrid")
        if forced is not None:
            return _sendgrid_forced(forced)
        params = {k: v[0] for k, v in parse_qs(query).items()}
        wanted = _UNIQUE_ARG.fullmatch(params.get("query", "").strip())
        if wanted is None:
            return _sendgrid_errors(400, "invalid query", "query")
        name, value = wanted.group("name"), wanted.group("value")
        shown_before = time.time() - self.activity_lag_s
        with self._lock:
            found = [
                item
                for item in self._received
                if item["provider"] == "sendgrid"
                and item["custom_args"].get(name) == value
                and item["received_at"] <= shown_before
            ][: int(params.get("limit", "10"))]
        messages = [
            {
                "msg_id": f"{item['id']}.filter0001.1.0",
                "from_email": item["from"],
                "subject": item["subject"],
                "to_email": item["to"],
                "status": "delivered",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": datetime.fromtimestamp(item["received_at"], UTC).isoformat(),
            }
            for item in found
        ]
        return _Answer(200, json.dumps({"messages": messages}).encode(), _JSON)

    def _sendgrid_events(
        self, message_id: str, recipients: list[str], custom_args: dict[str, Any], outcome: str
    ) -> None:
        """SendGrid's event webhook: a JSON array, signed over timestamp + body (ECDSA P-256)."""
        now = int(time.time())
        events = []
        for address in recipients:
            for kind in ("processed", outcome):
                event: dict[str, Any] = {
                    "email": address,
                    "timestamp": now,
                    "event": kind,
                    "sg_event_id": secrets.token_urlsafe(16),
                    "sg_message_id": f"{message_id}.filter0001.1.0",
                    **custom_args,
                }
                if kind == "bounce":
                    event.update(
                        type="bounce", status="5.1.1", reason="550 5.1.1 The email account "
                        "that you tried to reach does not exist"
                    )  # fmt: skip
                events.append(event)
        body = json.dumps(events)
        timestamp = str(now)
        signature = self._signing_key.sign((timestamp + body).encode(), ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
        assert self.events_url is not None
        _post(self.events_url, body.encode(), headers)

    def _twilio_callbacks(self, url: str, sid: str, to: str, sender: str, outcome: str) -> None:
        """Twilio's status callbacks: form posts signed with the auth token (HMAC-SHA1)."""
        for status in ("sent", outcome):
            params = {
                "AccountSid": self.twilio_account_sid,
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "To": to,
                "From": sender,
                "ApiVersion": "2010-04-01",
            }
            if status == "undelivered":
                params["ErrorCode"] = "30005"
            self._post_twilio(url, params)

    def _post_twilio(self, url: str, params: dict[str, str]) -> None:
        signature = RequestValidator(self.twilio_auth_token).compute_signature(url, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        _post(url, urlencode(params).encode(), headers)

    def inbound(self, sender: str, body: str, to: str = "+15005550006") -> None:
        """A debtor texts our number (e.g. STOP): Twilio's signed inbound webhook, now."""
        if not self.inbound_url:
            raise RuntimeError("no inbound_url: start the fake with --public-url")
        params = {
            "AccountSid": self.twilio_account_sid,
            "MessageSid": "SM" + secrets.token_hex(16),
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        self._post_twilio(self.inbound_url, params)

    def _later(self, callback: Any, *args: Any) -> None:
        """Providers report after answering: never hold up the send's own answer."""
        timer = threading.Timer(self.callback_delay, _logged, (callback, *args))
        timer.daemon = True
        timer.start()

    # ---- Twilio ----------------------------------------------------------------------------------

    def _twilio(self, path: str, headers: Any, body: bytes) -> _Answer:
        match = _TWILIO_MESSAGES.match(path)
        if match is None:
            return _twilio_error(404, 20404, f"The requested resource {path} was not found")
        if _basic_auth(headers) != (self.twilio_account_sid, self.twilio_auth_token):
            return _twilio_error(401, 20003, "Authenticate")
        if match["sid"] != self.twilio_account_sid:
            return _twilio_error(404, 20404, f"The requested resource {path} was not found")
        forced = self._take_failure("twilio")
        if forced is not None:
            return _twilio_forced(forced)

        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender and not form.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
            return _twilio_error(400, 21602, "Message body is required.")
        number = to.removeprefix("whatsapp:")
        if number == "+15005550408":
            time.sleep(self.hold_s)
            return _twilio_error(500, 20500, "An internal server error has occurred")
        if number in _TWILIO_MAGIC:
            status, code, text = _TWILIO_MAGIC[number]
            return _twilio_error(status, code, text.format(to=to))
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")

        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        account = self.twilio_account_sid
        message: dict[str, Any] = {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, -(-len(form["Body"]) // 153))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
        }
        self._record(
            {
                "provider": "twilio",
                "id": sid,
                "to": to,
                "from": sender or None,
                "body": form["Body"],
                "status_callback": form.get("StatusCallback"),
                "key": None,
            }
        )
        with self._lock:
            self._twilio_messages.append(message)
        callback = form.get("StatusCallback")
        if callback:
            outcome = "undelivered" if number == "+15005550030" else "delivered"
            self._later(self._twilio_callbacks, callback, sid, to, sender, outcome)
        self._slowly()
        return _Answer(201, json.dumps(message).encode(), {"Content-Type": "application/json"})

    def _twilio_list(self, path: str, query: str, headers: Any) -> _Answer:
        """`GET .../Messages.json?To=...`: the account's messages, newest first (one page)."""
        if _basic_auth(headers) != (self.twilio_account_sid, self.twilio_auth_token):
            return _twilio_error(401, 20003, "Authenticate")
        forced = self._take_failure("twilio")
        if forced is not None:
            return _twilio_forced(forced)
        params = {k: v[0] for k, v in parse_qs(query).items()}
        size = int(params.get("PageSize", "50"))
        with self._lock:
            found = [
                m for m in reversed(self._twilio_messages) if m["to"] == params.get("To", m["to"])
            ][:size]
        page = {
            "messages": found,
            "page": 0,
            "page_size": size,
            "first_page_uri": path,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": path,
            "start": 0,
            "end": max(0, len(found) - 1),
        }
        return _Answer(200, json.dumps(page).encode(), _JSON)

    def _slowly(self) -> None:
        """A slow provider: it has taken the message, and answers only after `delay_s`."""
        if self.delay_s:
            time.sleep(self.delay_s)


# ---- answers -----------------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        log.info("fake callback to %s answered %s", url, response.status)


def _logged(callback: Any, *args: Any) -> None:
    try:
        callback(*args)
    except OSError as exc:  # dunwell not listening, or it refused: report, do not crash
        log.warning("fake callback %s failed: %s", getattr(callback, "__name__", ""), exc)


class _Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def _sendgrid_errors(status: int, message: str, field: str | None) -> _Answer:
    body = {"errors": [{"message": message, "field": field, "help": _SENDGRID_DOCS}]}
    return _Answer(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _sendgrid_forced(status: int) -> _Answer:
    messages = {
        401: "The provided authorization grant is invalid, expired, or revoked",
        403: "The from address does not match a verified Sender Identity.",
        429: "too many requests",
    }
    answer = _sendgrid_errors(status, messages.get(status, "internal server error"), None)
    if status == 429:
        answer.headers["Retry-After"] = "1"
    return answer


def _sendgrid_invalid(payload: dict[str, Any]) -> tuple[str, str] | None:
    """The first reason SendGrid would refuse this payload with a 400, as (message, field)."""
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return "The personalizations field is required.", "personalizations"
    for i, personalization in enumerate(personalizations):
        recipients = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(recipients, list) or not recipients:
            return "The to array is required for all personalization objects.", (
                f"personalizations.{i}.to"
            )
        for j, recipient in enumerate(recipients):
            email = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
                return "Does not contain a valid address.", f"personalizations.{i}.to.{j}.email"
    sender = payload.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        return "The from email is required.", "from.email"
    if not payload.get("subject") and not all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    ):
        return "The subject is required.", "subject"
    content = payload.get("content")
    if not payload.get("template_id") and (
        not isinstance(content, list)
        or not content
        or not all(isinstance(c, dict) and c.get("type") and c.get("value") for c in content)
    ):
        return "Unless a valid template_id is provided, the content parameter is required.", (
            "content"
        )
    return None


_JSON = {"Content-Type": "application/json"}
_UNIQUE_ARG = re.compile(r"\(?unique_args\['(?P<name>[^']+)'\]\s*=\s*\"(?P<value>[^\"]*)\"\)?")

_TWILIO_MAGIC = {
    "+15005550001": (400, 21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550002": (400, 21612, "The 'To' phone number: {to}, is not currently reachable."),
    "+15005550004": (
        400,
        21610,
        "Attempt to send to unsubscribed recipient: the owner of {to} replied STOP.",
    ),
    "+15005550009": (400, 21614, "'To' number {to} is not a valid mobile number."),
    "+15005550429": (429, 20429, "Too Many Requests"),
    "+15005550500": (500, 20500, "An internal server error has occurred"),
}


def _twilio_error(status: int, code: int, message: str) -> _Answer:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Content-Type": "application/json"}
    if status == 429:
        headers["Retry-After"] = "1"
    return _Answer(status, json.dumps(body).encode(), headers)


def _twilio_forced(status: int) -> _Answer:
    codes = {400: 21211, 401: 20003, 403: 20003, 404: 20404, 429: 20429}
    messages = {401: "Authenticate", 403: "Authenticate", 429: "Too Many Requests"}
    code = codes.get(status, 20500)
    message = messages.get(status, "An internal server error has occurred")
    if status == 400:
        message = "The 'To' number is not a valid phone number."
    return _twilio_error(status, code, message)


def _basic_auth(headers: Any) -> tuple[str, str] | None:
    value = headers.get("Authorization") or ""
    if not value.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a surge opens many connections at once; 5 would reset them
    fake: FakeProviders


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "dunwell-fake-providers"

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        mollie = fake.mollie.post(path, self.headers, body)
        if mollie is not None:
            self._answer(_Answer(*mollie))
            return
        if path == "/_fake/twilio/inbound":
            answer = fake._simulate_inbound(body)
        elif path == "/v3/mail/send":
            answer = fake._sendgrid(self.headers, body)
        elif path.startswith("/2010-04-01/"):
            answer = fake._twilio(path, self.headers, body)
        else:
            answer = _Answer(404, b'{"message": "not found"}', {"Content-Type": "application/json"})
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        mollie = self.server.fake.mollie.get(path, self.headers)
        if mollie is not None:
            self._answer(_Answer(*mollie))
            return
        if _TWILIO_MESSAGES.match(path):
            self._answer(self.server.fake._twilio_list(path, query, self.headers))
            return
        if path == "/v3/messages":
            self._answer(self.server.fake._sendgrid_activity(query, self.headers))
            return
        if path != "/_fake/messages":
            self._answer(_Answer(404, b'{"message": "not found"}', _JSON))
            return
        body = json.dumps(self.server.fake.received, indent=1).encode()
        self._answer(_Answer(200, body, _JSON))

    def do_DELETE(self) -> None:
        if self.path.split("?", 1)[0] != "/_fake/messages":
            self._answer(_Answer(404, b'{"message": "not found"}', _JSON))
            return
        self.server.fake.clear()
        self._answer(_Answer(204, b""))

    def _answer(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="dunwell fake-providers",
        description="A fake SendGrid, Twilio and Mollie on loopback.",
    )
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument(
        "--public-url",
        default=None,
        help="dunwell's API (e.g. http://127.0.0.1:8000): report deliveries to its webhooks",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    public = args.public_url.rstrip("/") if args.public_url else None
    with FakeProviders(
        port=args.port,
        events_url=f"{public}/v1/webhooks/sendgrid" if public else None,
        inbound_url=f"{public}/v1/webhooks/twilio/inbound" if public else None,
    ) as fake:
        settings = {
            "DUNWELL_SENDGRID_BASE_URL": fake.base_url,
            "DUNWELL_SENDGRID_API_KEY": fake.sendgrid_api_key,
            "DUNWELL_TWILIO_BASE_URL": fake.base_url,
            "DUNWELL_TWILIO_ACCOUNT_SID": fake.twilio_account_sid,
            "DUNWELL_TWILIO_AUTH_TOKEN": fake.twilio_auth_token,
            "DUNWELL_TWILIO_FROM": "+15005550006",
            "DUNWELL_TWILIO_WHATSAPP_FROM": "+14155238886",
            "DUNWELL_MOLLIE_BASE_URL": fake.base_url,
            "DUNWELL_MOLLIE_API_KEY": fake.mollie.api_key,
        }
        if public:
            settings["DUNWELL_PUBLIC_URL"] = public
            settings["DUNWELL_SENDGRID_WEBHOOK_PUBLIC_KEY"] = fake.sendgrid_webhook_public_key
        print("Fake SendGrid, Twilio and Mollie listening. Start dunwell with:\n")
        print("\n".join(f"export {name}={value}" for name, value in settings.items()))
        print(f"\nWhat arrived: curl {fake.base_url}/_fake/messages", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
