"""A cap on request bodies, enforced while they stream in (a chunked upload too), never after
reading an unbounded body into memory. Too large: 413 problem+json, and the handler never runs."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class _TooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTP errors on to the problem handler."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._max:
                    raise _TooLarge(413, self._detail())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    def _detail(self) -> str:
        return (
            f"The request body is larger than {self._max} bytes "
            "(DUNWELL_API_MAX_BODY_BYTES); send less."
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(413, self._detail())(scope, receive, send)
