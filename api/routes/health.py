"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: it can do its work)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.deps import SettingsDep, StoreDep, TemporalClient
from api.problems import PROBLEM_JSON, RETRY_AFTER_S

router = APIRouter(tags=["health"])

_TEMPORAL_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "Something it needs is down or misconfigured: see checks"}},
)
async def readyz(settings: SettingsDep, store: StoreDep, client: TemporalClient) -> JSONResponse:
    """Readiness: the database, Temporal, and what the workers last learned of each provider."""
    checks: dict[str, Any] = {}
    problems: list[str] = []
    try:
        await run_in_threadpool(store.ping)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
        problems.append("the database does not answer")
    try:
        serving = await asyncio.wait_for(
            client.service_client.check_health(timeout=_TEMPORAL_TIMEOUT), timeout=3
        )
        checks["temporal"] = "ok" if serving else "not serving"
    except (RPCError, TimeoutError, RuntimeError) as exc:
        checks["temporal"] = f"unavailable ({type(exc).__name__})"
        problems.append(f"Temporal at {settings.temporal_target} does not answer")
    else:
        if not serving:
            problems.append("Temporal is not serving")
    providers: dict[str, Any] = {
        "sendgrid": "configured" if settings.sendgrid_api_key else "outbox (not configured)",
        "twilio": "configured" if settings.twilio_account_sid else "outbox (not configured)",
    }
    if checks["database"] == "ok":
        for state in await run_in_threadpool(store.provider_states):
            if state.state == "misconfigured":
                providers[state.provider] = {
                    "state": "misconfigured",
                    "detail": state.detail,
                    "since": state.since.isoformat(),
                }
                problems.append(f"{state.provider} refuses our messages: {state.detail}")
    checks["providers"] = providers
    if not problems:
        return JSONResponse({"status": "ready", "checks": checks})
    body = {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "detail": "Not ready: " + "; ".join(problems) + ".",
        "checks": checks,
    }
    return JSONResponse(
        body,
        status_code=503,
        media_type=PROBLEM_JSON,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
