"""The console's pages for reading and working: sign-in, the work list (take a task, complete it
with a note), the invoice list and the customer card (totals, payment behaviour, notes)."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.view import Format, timeline_entries
from api.console.web import (
    SIGN_IN_COOKIE,
    ConsoleUser,
    User,
    checked_form,
    end_session,
    form_token,
    render,
    start_session,
    token_ok,
)
from api.deps import StoreDep, TemporalClient, identify
from api.portal.security import is_https
from api.problems import Problem
from api.routes import tasks as task_routes
from api.schemas import IDENTIFIER, TaskCompleteIn
from db.keys import Role
from db.store import Store
from workflows.models import Stage

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
NOTE_MAX = 5000


def pages(total: int, page: int) -> dict[str, int]:
    return {"page": page, "pages": max(1, math.ceil(total / PAGE_SIZE)), "total": total}


def _back(request: Request, path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


# ---- signing in and out ------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, expired: bool = False) -> Response:
    """The sign-in form; its token is bound to a cookie only this browser has."""
    cookie = request.cookies.get(SIGN_IN_COOKIE) or _new_secret()
    message = "expired" if expired else None
    return _sign_in(request, cookie, message, 200)


def _new_secret() -> str:
    return secrets.token_urlsafe(24)


def _sign_in(request: Request, cookie: str, message: str | None, status: int) -> Response:
    response = render(
        request,
        "sign_in.html",
        None,
        status_code=status,
        sign_in_token=form_token(cookie, "sign-in"),
        message=message,
        next=request.query_params.get("next", ""),
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        cookie,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Exchange an agent or admin key for a session; an integration key is refused."""
    cookie = request.cookies.get(SIGN_IN_COOKIE)
    if not cookie or not token_ok(form_token(cookie, "sign-in"), csrf):
        return _sign_in(request, cookie or _new_secret(), "form_expired", 403)
    actor = await identify(request, key.strip()) if key.strip() else None
    if actor is None:
        return _sign_in(request, cookie, "bad_key", 401)
    if actor.role == Role.integration:
        return _sign_in(request, cookie, "integration_key", 403)
    target = next if next.startswith("/console") and "//" not in next else "/console"
    response = RedirectResponse(target, status_code=303)
    await start_session(request, actor, response)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, user: ConsoleUser) -> Response:
    await checked_form(request, user)
    response = RedirectResponse("/console/sign-in?signed_out=1", status_code=303)
    await end_session(request, response)
    return response


# ---- the work list -----------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def work_list(
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    kind: str = "",
    mine: bool = False,
    order: str = Query("oldest", pattern="^(oldest|largest)$"),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    """Open tasks, oldest (or largest) first, by kind and "mine"."""
    items, total = await run_in_threadpool(
        store.work_list,
        kind or None,
        user.actor.name if mine else None,
        order,  # type: ignore[arg-type]
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    kinds = await run_in_threadpool(store.task_kinds)
    return render(
        request,
        "work.html",
        user,
        items=items,
        kinds=sorted({*kinds, *([kind] if kind else [])}),
        kind=kind,
        mine=mine,
        order=order,
        fmt=Format(request),
        **pages(total, page),
    )


@router.post("/tasks/{task_id}/take")
async def take_task(task_id: str, request: Request, user: ConsoleUser, store: StoreDep) -> Response:
    await checked_form(request, user)
    task = await run_in_threadpool(store.take_task, task_id, user.actor.name)
    done = "task_taken" if task is not None and task.status == "open" else "task_gone"
    return _back(request, "/console", done)


@router.post("/tasks/{task_id}/complete")
async def complete_task(
    task_id: str, request: Request, user: ConsoleUser, store: StoreDep, client: TemporalClient
) -> Response:
    form = await checked_form(request, user)
    note = str(form.get("note", ""))[:2000]
    existing = await run_in_threadpool(store.get_task, task_id)
    if existing is None or existing.status != "open":
        return _back(request, "/console", "task_gone")
    try:
        await task_routes.complete_task(
            task_id, TaskCompleteIn(note=note), user.actor, store, client
        )
    except Problem:
        return _back(request, "/console", "task_gone")
    return _back(request, "/console", "task_completed")


# ---- invoices ----------------------------------------------------------------------------------


@router.get("/invoices", response_class=HTMLResponse)
async def invoice_list(
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    state: str = Query("open", pattern="^(all|open|overdue|closed)$"),
    stage: str = Query("", max_length=32),
    q: str = Query("", max_length=128),
    customer: str = Query("", max_length=200),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    """Invoices, newest first, by state, stage, customer and the start of the number."""
    # An empty or unknown stage is "every stage" (the filter's first option sends stage=).
    stage = stage if stage in {s.value for s in Stage} else ""
    rows, total = await run_in_threadpool(
        store.page_invoices,
        state,  # type: ignore[arg-type]
        stage or None,
        customer or None,
        q.strip() or None,
        datetime.now(UTC).date(),
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "invoices.html",
        user,
        rows=rows,
        state=state,
        stage=stage,
        stages=[s.value for s in Stage],
        q=q,
        customer=customer,
        fmt=Format(request),
        **pages(total, page),
    )


# ---- customers ---------------------------------------------------------------------------------


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_card(
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    customer_id: str = Path(pattern=IDENTIFIER),
) -> Response:
    """Every invoice of one customer, totals, payment behaviour, notes and their timeline."""
    return await _customer_page(request, user, store, customer_id)


async def _customer_page(
    request: Request, user: User, store: Store, customer_id: str, note_error: str = ""
) -> Response:
    today = datetime.now(UTC).date()
    invoices = await run_in_threadpool(store.customer_invoices, customer_id)
    if not invoices:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    behaviour = await run_in_threadpool(store.behaviour, customer_id, today)
    notes = await run_in_threadpool(store.notes, customer_id)
    events = await run_in_threadpool(store.customer_timeline, customer_id, 500, 0)
    fmt = Format(request)
    return render(
        request,
        "customer.html",
        user,
        status_code=422 if note_error else 200,
        customer_id=customer_id,
        name=invoices[-1].invoice.customer.name,
        invoices=invoices,
        behaviour=behaviour,
        notes=notes,
        note_error=note_error,
        timeline=timeline_entries(
            [e for _, e in events],
            fmt,
            [i for i, _ in events],
            {row.invoice.invoice_id: row.invoice.currency for row in invoices},
        ),
        fmt=fmt,
    )


@router.post("/customers/{customer_id}/notes")
async def add_note(
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    customer_id: str = Path(pattern=IDENTIFIER),
) -> Response:
    """A free-text note on the customer, signed with the key's name."""
    form = await checked_form(request, user)
    body = str(form.get("body", "")).strip()
    if not body or len(body) > NOTE_MAX:
        problem = "note_empty" if not body else "note_long"
        return await _customer_page(request, user, store, customer_id, problem)
    await run_in_threadpool(store.add_note, customer_id, user.actor.name, body)
    return _back(request, f"/console/customers/{customer_id}", "note_added")
