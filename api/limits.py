"""A cap on request bodies, enforced while they stream in (a chunked upload too), never after
reading an unbounded body into memory. Too large: 413 problem+json, and the handler never runs."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTP errors on to the problem handler."""


class BodySizeLimit:
    """`max_bytes` for every route, except the paths given their own limit in `per_path`."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, tuple[int, str]] | None = None
    ) -> None:
        self._app = app
        self._default = (max_bytes, "DUNWELL_API_MAX_BODY_BYTES")
        self._per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        # A path ending in "/" covers everything below it (a secret segment follows).
        prefix = next((p for p in self._per_path if p.endswith("/") and path.startswith(p)), path)
        limit, setting = self._per_path.get(prefix, self._default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(limit, setting, scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(413, _detail(limit, setting))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(limit, setting, scope, receive, send)


def _detail(limit: int, setting: str) -> str:
    return f"The request body is larger than {limit} bytes ({setting}); send less."


async def _refuse(limit: int, setting: str, scope: Scope, receive: Receive, send: Send) -> None:
    await problem_response(413, _detail(limit, setting))(scope, receive, send)
