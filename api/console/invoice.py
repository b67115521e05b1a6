"""One invoice in the console: its state, plan, timeline and messages, and every agent action as a
form. Each form goes through the very API handler a `curl` would reach, so the same validation
answers, shown beside the field it concerns."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import journeys
from api.console.view import Format, messages, timeline_entries
from api.console.web import ConsoleUser, User, checked_form, render
from api.deps import SettingsDep, StoreDep, TemporalClient
from api.portal.routes import PortalDep
from api.problems import Problem
from api.routes import actions as api
from api.routes.invoices import _known
from api.schemas import (
    ActionIn,
    ArrangementIn,
    ContactIn,
    DisputeIn,
    OptOutIn,
    PromiseIn,
    ResolutionIn,
)
from db.store import Store
from workflows.common import equal_parts, minor_units, money
from workflows.journey import workflow_id
from workflows.models import JourneyStatus
from workflows.policy import Channel

router = APIRouter(prefix="/console/invoices", include_in_schema=False)

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Action:
    """A form on the invoice page: the API's input model and handler it goes through."""

    model: type[BaseModel]
    handler: Handler


ACTIONS: dict[str, Action] = {
    "dispute": Action(DisputeIn, api.open_dispute),
    "resolve": Action(ResolutionIn, api.resolve_dispute),
    "promise": Action(PromiseIn, api.promise_to_pay),
    "plan": Action(ArrangementIn, api.agree_arrangement),
    "plan_cancel": Action(ActionIn, api.cancel_arrangement),
    "pause": Action(ActionIn, api.pause),
    "resume": Action(ActionIn, api.resume),
    "cancel": Action(ActionIn, api.cancel),
    "write_off": Action(ActionIn, api.write_off),
    "contact": Action(ContactIn, api.change_contact),
    "opt_out": Action(OptOutIn, api.opt_out),
}
STATUS_WAIT_S = 2.0


@dataclass
class Failed:
    """A form that was refused: which, what was typed, and what to correct where."""

    action: str
    values: dict[str, Any]
    fields: dict[str, str]
    detail: str = ""


@router.get("/{invoice_id}", response_class=HTMLResponse)
async def invoice_page(
    invoice_id: str,
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    client: TemporalClient,
    settings: SettingsDep,
    portal: PortalDep,
) -> Response:
    """Stage, outstanding, next action, hold, plan, timeline, messages and the actions."""
    return await _page(request, user, store, client, settings, portal, invoice_id)


async def _page(
    request: Request,
    user: User,
    store: Store,
    client: Client,
    settings: Any,
    portal: Any,
    invoice_id: str,
    failed: Failed | None = None,
    plan_rows: list[tuple[str, str]] | None = None,
) -> Response:
    try:
        row = await _known(store, client, invoice_id)
    except Problem:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    fmt = Format(request)
    events = await run_in_threadpool(store.timeline, invoice_id)
    sent = await run_in_threadpool(store.list_messages, invoice_id, 200)
    tasks = await run_in_threadpool(store.list_tasks, "open", invoice_id, None, 50)
    status = await _status(client, invoice_id) if row.outcome is None else None
    first_due = date.today() + timedelta(days=7)
    plan_open = plan_rows is not None or (failed is not None and failed.action == "plan")
    if plan_rows is None:
        plan_rows = _plan_rows(row, first_due, 30, 3)
    return render(
        request,
        "invoice.html",
        user,
        status_code=422 if failed else 200,
        row=row,
        status=status,
        fmt=fmt,
        timeline=timeline_entries(events, fmt, currency=row.currency),
        messages=messages(sent, fmt),
        tasks=tasks,
        failed=failed,
        plan_rows=plan_rows,
        plan_open=plan_open,
        first_due=first_due.isoformat(),
        outstanding=str(money(row.outstanding, row.currency)),
        precision=minor_units(row.currency),
        channels=[c.value for c in Channel],
        temporal_ui=journeys.ui_link(settings, invoice_id),
        workflow=workflow_id(invoice_id),
        links_on=portal.links is not None,
    )


async def _status(client: Client, invoice_id: str) -> JourneyStatus | None:
    """The journey's own answer (holds, promise, dispute reason); None when no worker answers
    in time: the page still shows what the read model knows."""
    handle = client.get_workflow_handle(workflow_id(invoice_id))
    try:
        async with asyncio.timeout(STATUS_WAIT_S):
            result: JourneyStatus = await handle.query("status", result_type=JourneyStatus)
            return result
    except Exception:
        return None


def _form_to_body(action: str, form: dict[str, Any]) -> dict[str, Any]:
    """The API body a form means: empty fields left out, a plan's lines as instalments."""
    if action == "plan":
        days = form.get("due_on[]", [])
        amounts = form.get("amount[]", [])
        days = [days] if isinstance(days, str) else days
        amounts = [amounts] if isinstance(amounts, str) else amounts
        return {
            "instalments": [
                {"due_on": d or None, "amount": a or None}
                for d, a in zip(days, amounts, strict=False)
            ]
        }
    body = {k: v for k, v in form.items() if k != "csrf" and v not in ("", None)}
    if action == "pause" and body.get("until") and len(body["until"]) == 16:
        body["until"] = body["until"] + ":00+00:00"  # the form's moment is UTC (it says so)
    return body


def _field_errors(exc: ValidationError) -> tuple[dict[str, str], str]:
    fields: dict[str, str] = {}
    general = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if loc[:1] == ["instalments"] and len(loc) >= 3:
            fields[f"{loc[2]}-{loc[1]}"] = message
        elif loc and loc[0] != "instalments":
            fields[loc[0]] = message
        else:
            general.append(message)
    return fields, "; ".join(general)


def _sum_problem(body: dict[str, Any], outstanding: Decimal, currency: str, fmt: Format) -> str:
    try:
        total = sum((Decimal(str(i["amount"])) for i in body["instalments"]), Decimal(0))
    except (ArithmeticError, TypeError, KeyError, ValueError):
        return ""
    if total == outstanding:
        return ""
    return fmt.t(
        "plan_sum_off",
        total=fmt.money(total, currency),
        outstanding=fmt.money(outstanding, currency),
        difference=fmt.money(total - outstanding, currency),
    )


@router.post("/{invoice_id}/act/{action}", response_class=HTMLResponse)
async def act(
    invoice_id: str,
    action: str,
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    client: TemporalClient,
    settings: SettingsDep,
    portal: PortalDep,
) -> Response:
    """Do one agent action through the API's own handler; refused: the page with the reasons."""
    form = await checked_form(request, user)
    page = f"/console/invoices/{invoice_id}"
    try:
        if action == "revoke":
            return await _revoke(store, portal, invoice_id, user, page, client)
        if action == "opt_in":
            channel = str(form.get("channel", ""))
            if channel in {c.value for c in Channel}:
                await api.opt_back_in(invoice_id, Channel(channel), user.actor, store, client)
                return RedirectResponse(f"{page}?done=opt_in", status_code=303)
            failed = Failed(action, form, {"channel": "choose a channel"})
            return await _page(request, user, store, client, settings, portal, invoice_id, failed)
        if action == "plan" and "split" in form:  # the builder without script: split here
            return await _split(request, user, store, client, settings, portal, invoice_id, form)
    except Problem as problem:  # an unknown or closed invoice: the page says so
        failed = Failed(action, form, {}, problem.detail)
        return await _page(request, user, store, client, settings, portal, invoice_id, failed)
    spec = ACTIONS.get(action)
    if spec is None:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    body = _form_to_body(action, form)
    plan_rows = None
    if action == "plan":
        plan_rows = [(i["due_on"] or "", i["amount"] or "") for i in body["instalments"]]
    try:
        model = spec.model.model_validate(body)
        if action == "plan":
            row = await _known(store, client, invoice_id)
            off = _sum_problem(body, row.outstanding, row.currency, Format(request))
            if off:
                raise Problem(422, off)
        await spec.handler(invoice_id, model, user.actor, store, client)
    except ValidationError as exc:
        fields, general = _field_errors(exc)
        failed = Failed(action, form, fields, general)
        return await _page(
            request, user, store, client, settings, portal, invoice_id, failed, plan_rows
        )
    except Problem as problem:
        failed = Failed(action, form, {}, problem.detail)
        return await _page(
            request, user, store, client, settings, portal, invoice_id, failed, plan_rows
        )
    return RedirectResponse(f"{page}?done={action}", status_code=303)


async def _split(
    request: Request,
    user: User,
    store: Store,
    client: Client,
    settings: Any,
    portal: Any,
    invoice_id: str,
    form: dict[str, Any],
) -> Response:
    row = await _known(store, client, invoice_id)
    try:
        count = min(max(int(form.get("count", 3)), 1), 120)
        first = date.fromisoformat(str(form.get("first_due", "")))
        every = min(max(int(form.get("every", 30)), 1), 365)
        rows = _plan_rows(row, first, every, count)
    except (ValueError, TypeError, OverflowError):  # OverflowError: past the year 9999
        failed = Failed("plan", form, {}, "give a date, a count and a number of days")
        return await _page(request, user, store, client, settings, portal, invoice_id, failed)
    return await _page(request, user, store, client, settings, portal, invoice_id, None, rows)


def _plan_rows(row: Any, first: date, every: int, count: int) -> list[tuple[str, str]]:
    """The builder's lines: the outstanding amount in `count` parts, `every` days apart."""
    parts = equal_parts(row.outstanding, count, row.currency)
    return [((first + timedelta(days=every * i)).isoformat(), str(a)) for i, a in enumerate(parts)]


async def _revoke(
    store: Store, portal: Any, invoice_id: str, user: User, page: str, client: Client
) -> Response:
    if portal.links is None:
        return RedirectResponse(f"{page}?done=links_off", status_code=303)
    row = await _known(store, client, invoice_id)
    revoked = await run_in_threadpool(store.revoke_portal_link, row.customer_id, user.actor.name)
    return RedirectResponse(f"{page}?done={'revoked' if revoked else 'revoked_none'}", 303)
