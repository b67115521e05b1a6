"""Invoice import on a page: upload a CSV, watch its progress, read which lines were bad and why.

The rows start in this API process, as `POST /v1/invoices` would start them (the same idempotent
start), so importing the same file twice starts nothing new. An import's progress lives in this
process only: after a restart the page says so, and uploading again is safe.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from temporalio.client import Client
from temporalio.service import RPCError

from api import journeys
from api.console.web import HERE, ConsoleUser, User, checked_form, render
from api.deps import Policies, SettingsDep, StoreDep, TemporalClient
from api.policy_cache import PolicyCache
from api.problems import Problem
from api.schemas import InvoiceIn
from db.store import Store
from invoice_import import (
    COLUMNS,
    FileProblem,
    Progress,
    Result,
    Starter,
    read_rows,
    start_rows,
)

router = APIRouter(prefix="/console/import", include_in_schema=False)
EXAMPLE = HERE / "static" / "example-invoices.csv"
MAX_UPLOAD = 32 * 1024 * 1024
BODY_LIMIT = MAX_UPLOAD + 1024 * 1024
"""The request's own limit: the file and the form around it (the page refuses a larger file)."""
KEPT_JOBS = 50


@dataclass
class Job:
    id: str
    name: str
    actor: str
    progress: Progress
    task: asyncio.Task[Progress] | None = None


def _jobs(request: Request) -> dict[str, Job]:
    state = request.app.state
    if not hasattr(state, "imports"):
        state.imports = {}
    jobs: dict[str, Job] = state.imports
    return jobs


def _admin_only(request: Request, user: User) -> Response | None:
    if user.is_admin:
        return None
    role = user.actor.role.value
    return render(request, "notice.html", user, status_code=403, message="needs_admin", role=role)


@router.get("", response_class=HTMLResponse)
async def import_page(request: Request, user: ConsoleUser) -> Response:
    """The upload form, with the columns a file needs."""
    refused = _admin_only(request, user)
    return refused or render(request, "import.html", user, columns=COLUMNS, job=None, error="")


@router.get("/example.csv")
async def example(user: ConsoleUser) -> FileResponse:
    return FileResponse(EXAMPLE, media_type="text/csv", filename="invoices.csv")


def _starter(
    client: Client, store: Store, task_queue: str, policies: PolicyCache, actor: str
) -> Starter:
    async def start(invoice: InvoiceIn) -> tuple[Result, str]:
        policy = await policies.get(invoice.policy)
        if policy is None:
            return "bad", f"there is no policy {invoice.policy!r}"
        try:
            started = await journeys.start_journey(
                client, store, task_queue, invoice.to_invoice(), policy, actor
            )
        except Problem as problem:
            return "bad", problem.detail
        except RPCError as err:
            return "bad", f"Temporal did not take it ({err.message}); import the file again"
        return ("started" if started.created else "existing"), ""

    return start


@router.post("", response_class=HTMLResponse)
async def upload(
    request: Request,
    user: ConsoleUser,
    client: TemporalClient,
    store: StoreDep,
    policies: Policies,
    settings: SettingsDep,
) -> Response:
    """Read the file, then start its good rows in the background; the page follows progress."""
    refused = _admin_only(request, user)
    if refused:
        return refused
    form = await checked_form(request, user)
    upload = form.get("file")
    data: bytes = await upload.read(MAX_UPLOAD + 1) if isinstance(upload, UploadFile) else b""
    try:
        if not data:
            raise FileProblem("choose a CSV file first")
        if len(data) > MAX_UPLOAD:
            raise FileProblem(f"the file is larger than {MAX_UPLOAD // 1024 // 1024} MB; split it")
        rows = await run_in_threadpool(read_rows, data)
        if not rows:
            raise FileProblem("the file holds no rows")
    except FileProblem as exc:
        return render(
            request, "import.html", user, status_code=422, columns=COLUMNS, job=None, error=str(exc)
        )
    jobs = _jobs(request)
    while len(jobs) >= KEPT_JOBS:
        jobs.pop(next(iter(jobs)))
    job = Job(
        secrets.token_urlsafe(12),
        getattr(upload, "filename", "") or "upload.csv",
        user.actor.name,
        Progress(total=len(rows)),
    )
    start = _starter(client, store, settings.task_queue, policies, user.actor.name)
    job.task = asyncio.create_task(start_rows(rows, start, job.progress, concurrency=8))
    jobs[job.id] = job
    return RedirectResponse(f"/console/import/{job.id}", status_code=303)


@router.get("/{job_id}", response_class=HTMLResponse)
async def job_page(job_id: str, request: Request, user: ConsoleUser) -> Response:
    """One import's progress; the page refreshes itself until it has finished."""
    refused = _admin_only(request, user)
    if refused:
        return refused
    job = _jobs(request).get(job_id)
    if job is None:
        return render(request, "notice.html", user, status_code=404, message="import_unknown")
    return render(request, "import.html", user, columns=COLUMNS, job=job, error="")
