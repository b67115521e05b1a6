"""One exception family for the API, rendered as `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from db.session import is_retryable_db_error

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 5
"""Seconds a client is asked to wait when the database or Temporal is down."""
_INTERNAL = "Something went wrong on our side and was logged; nothing was changed. Try again."
_TEMPORAL_DOWN = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
}
log = logging.getLogger("dunwell.api")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `detail` says what to do.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}


def problem_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for errors, each documented as `application/problem+json`."""
    return {
        status: {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        for status, description in descriptions.items()
    }


COMMON_PROBLEMS = problem_responses(
    {
        401: "No, bad or revoked API key",
        403: "The key's role may not do this",
        404: "Unknown resource",
        413: "Request body larger than DUNWELL_API_MAX_BODY_BYTES",
        422: "Invalid input: every problem named",
        503: "The database or Temporal is down: nothing was changed; retry after Retry-After",
    }
)
"""Every route may answer these (authentication, the body cap, validation)."""


class Problem(Exception):
    """An error a client can act on; `detail` says what to do."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    return problem_response(exc.status, exc.detail, headers=headers, **exc.extra)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(422, f"Fix these fields and send again: {detail}", errors=errors)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"There is no {request.url.path}; the API is described at /docs."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see /docs."
    return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


def database_unavailable(exc: SQLAlchemyError) -> bool:
    """An error that trying again can cure: the database is down, busy or unreachable."""
    # A lost or refused connection is an OperationalError whatever the driver says: retryable.
    return is_retryable_db_error(exc) or isinstance(exc, OperationalError | InterfaceError)


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SQLAlchemyError)
    if database_unavailable(exc):
        log.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
        return _unavailable("The database is not answering; nothing was changed. Try again.")
    log.error("database error on %s", request.url.path, exc_info=exc)
    return problem_response(500, _INTERNAL)


async def _on_temporal(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if exc.status in _TEMPORAL_DOWN:
        log.warning("Temporal unavailable on %s: %s", request.url.path, exc.status)
        return _unavailable("Temporal is not answering; nothing was changed. Try again.")
    log.error("Temporal error on %s", request.url.path, exc_info=exc)
    return problem_response(500, _INTERNAL)


async def _on_runtime(request: Request, exc: Exception) -> JSONResponse:
    if "Failed client connect" in str(exc):
        # The Temporal client could not (re)connect: the server is down or restarting.
        log.warning("Temporal unreachable on %s", request.url.path)
        return _unavailable("Temporal is not answering; nothing was changed. Try again.")
    return await _on_anything(request, exc)


async def _on_anything(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s", request.url.path, exc_info=exc)
    return problem_response(500, _INTERNAL)


def _unavailable(detail: str) -> JSONResponse:
    return problem_response(503, detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(SQLAlchemyError, _on_database)
    app.add_exception_handler(RPCError, _on_temporal)
    app.add_exception_handler(RuntimeError, _on_runtime)
    app.add_exception_handler(Exception, _on_anything)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
