"""What keeps the debtor's page safe: a session cookie, CSRF tokens on every form, rate limits
per link and per address, strict security headers, and personal links kept out of the logs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "dunwell_portal"
LANGUAGE_COOKIE = "dunwell_lang"
SESSION_MAX_AGE_S = 8 * 3600
_LINK = re.compile(r"/p/[A-Za-z0-9_-]+")


class Sessions:
    """A signed, random session id in an HttpOnly cookie; form tokens are bound to it."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"portal-session\x00" + secret.encode()).digest()

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def session_id(self, request: Request) -> str | None:
        cookie = request.cookies.get(SESSION_COOKIE, "")
        sid, _, signature = cookie.partition(".")
        if sid and hmac.compare_digest(self._sign("sid:" + sid).encode(), signature.encode()):
            return sid
        return None

    def begin(self, request: Request) -> tuple[str, bool]:
        """The request's session id, or a new one (True: set its cookie with `remember`)."""
        sid = self.session_id(request)
        return (sid, False) if sid else (secrets.token_urlsafe(18), True)

    def remember(self, request: Request, response: Response, sid: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            f"{sid}.{self._sign('sid:' + sid)}",
            max_age=SESSION_MAX_AGE_S,
            path="/p/",
            httponly=True,
            samesite="lax",
            secure=is_https(request),
        )

    def csrf(self, sid: str, token: str) -> str:
        """The form token of one session on one personal link."""
        return self._sign(f"csrf:{sid}:{token}")

    def csrf_ok(self, request: Request, token: str, presented: str) -> bool:
        sid = self.session_id(request)
        return sid is not None and hmac.compare_digest(
            self.csrf(sid, token).encode(), (presented or "").encode()
        )


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


class RateLimit:
    """At most `per_minute` requests per key in any sliding minute (per process)."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen.clear()  # a flood of distinct keys: start over rather than grow
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= self._per_minute:
                return False
            seen.append(now)
            return True


class PortalHeaders:
    """Security headers on the debtor's pages and the console: no inline script, no framing, no
    referrer (the address holds the personal link), nothing cached. A plain ASGI middleware:
    every other path (the API's hot ones) passes straight through."""

    def __init__(self, app: ASGIApp, form_targets: tuple[str, ...] = ()) -> None:
        self._app = app
        targets = " ".join(("'self'", *form_targets))
        csp = (
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
            "img-src 'self' data:; "
            f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
        )
        self._headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(("/p/", "/static/", "/console")):
            await self._app(scope, receive, send)
            return
        extra = self._headers + (
            [(b"cache-control", b"no-store")] if path.startswith(("/p/", "/console")) else []
        )

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self._app(scope, receive, with_headers)


class HideLinks(logging.Filter):
    """Access logs show `/p/…` instead of a debtor's personal link."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _LINK.sub("/p/…", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _LINK.sub("/p/…", record.msg)
        return True


def hide_links_in_logs() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "dunwell"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideLinks) for f in logger.filters):
            logger.addFilter(HideLinks())
