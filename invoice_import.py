"""Invoices from a CSV file: read and checked row by row (a bad row is named by its line and
reason, and never stops the good ones), then started through the API, so the same file twice
starts nothing new. The console's import page and `dunwell import` both use it."""

from __future__ import annotations

import asyncio
import bisect
import csv
import io
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from api.schemas import InvoiceIn

log = logging.getLogger(__name__)

COLUMNS = (
    "invoice_id",
    "amount",
    "currency",
    "issued_on",
    "due_on",
    "payment_url",
    "policy",
    "customer_id",
    "customer_name",
    "email",
    "phone",
    "locale",
    "timezone",
    "country",
    "kind",
    "preferred_channel",
)
REQUIRED = ("invoice_id", "amount", "currency", "issued_on", "due_on", "payment_url",
            "customer_id", "customer_name")  # fmt: skip
_CUSTOMER = {
    "customer_id": "id",
    "customer_name": "name",
    "email": "email",
    "phone": "phone",
    "locale": "locale",
    "timezone": "timezone",
    "country": "country",
    "kind": "kind",
    "preferred_channel": "preferred_channel",
}
MAX_ROWS = 100_000

Result = Literal["started", "existing", "bad"]


class FileProblem(ValueError):
    """The file as a whole cannot be read (no header, columns missing, not text)."""


@dataclass
class Row:
    line: int
    invoice: InvoiceIn | None = None
    error: str | None = None


@dataclass
class Progress:
    """What an import has done so far; `bad` holds (line, reason) in line order."""

    total: int
    started: int = 0
    existing: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.started + self.existing + len(self.bad)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def add(self, line: int, result: Result, reason: str = "") -> None:
        if result == "started":
            self.started += 1
        elif result == "existing":
            self.existing += 1
        else:
            bisect.insort(self.bad, (line, reason))


def read_rows(data: bytes | str) -> list[Row]:
    """Each data row with its line number (the header is line 1), checked as the API would."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FileProblem("the file is not UTF-8 text; save it as CSV (UTF-8)") from None
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise FileProblem(f"the file has no header row; the columns are {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FileProblem(f"the header lacks {', '.join(missing)}; the columns are "
                          f"{', '.join(COLUMNS)}")  # fmt: skip
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise FileProblem(f"unknown column {', '.join(unknown)}; the columns are "
                          f"{', '.join(COLUMNS)}")  # fmt: skip
    reader.fieldnames = header
    rows: list[Row] = []
    for record in reader:
        line = reader.line_num
        if len(rows) >= MAX_ROWS:
            raise FileProblem(f"more than {MAX_ROWS} rows; split the file")
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue  # an empty line
        if None in record:
            rows.append(Row(line, error=f"more cells than the {len(header)} columns"))
            continue
        rows.append(_row(line, record))
    return rows


def _row(line: int, record: dict[str, Any]) -> Row:
    values = {k: (v or "").strip() for k, v in record.items()}
    customer = {name: values[column] for column, name in _CUSTOMER.items() if values.get(column)}
    body: dict[str, Any] = {
        k: values[k]
        for k in ("invoice_id", "amount", "currency", "issued_on", "due_on", "payment_url")
        if values.get(k)
    }
    if values.get("policy"):
        body["policy"] = values["policy"]
    body["customer"] = customer
    try:
        return Row(line, invoice=InvoiceIn.model_validate(body))
    except ValidationError as exc:
        return Row(line, error=reasons(exc))


def reasons(exc: ValidationError) -> str:
    """A validation failure in the CSV's own column names."""
    columns = {v: k for k, v in _CUSTOMER.items()}
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if loc[:1] == ["customer"]:
            loc = [columns.get(loc[1], loc[1])] if len(loc) > 1 else []
        name = loc[0] if loc else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            parts.append(f"{name} is empty" if name else message)
        else:
            message = message[:1].lower() + message[1:]
            parts.append(f"{name}: {message}" if name else message)
    return "; ".join(parts)


Starter = Callable[[InvoiceIn], Awaitable[tuple[Result, str]]]


async def start_rows(
    rows: list[Row], start: Starter, progress: Progress, concurrency: int = 8
) -> Progress:
    """Start every good row (at most `concurrency` at once), noting each result in `progress`."""
    for row in rows:
        if row.error is not None:
            progress.add(row.line, "bad", row.error)
    queue: asyncio.Queue[Row] = asyncio.Queue()
    for row in rows:
        if row.invoice is not None:
            queue.put_nowait(row)

    async def work() -> None:
        while not queue.empty():
            row = queue.get_nowait()
            assert row.invoice is not None
            try:
                result, reason = await start(row.invoice)
            except Exception as exc:  # one row's surprise must not stop the others
                log.exception("import: line %s could not be started", row.line)
                result, reason = "bad", f"it could not be started ({exc.__class__.__name__}: {exc})"
            progress.add(row.line, result, reason)

    await asyncio.gather(*(work() for _ in range(max(1, concurrency))))
    return progress


def over_http(client: httpx.AsyncClient, attempts: int = 5) -> Starter:
    """Start a row with POST /v1/invoices; a busy or restarting API is tried again."""

    async def start(invoice: InvoiceIn) -> tuple[Result, str]:
        body = invoice.model_dump(mode="json", exclude_none=True)
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post("/v1/invoices", json=body)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    return "bad", f"the API could not be reached ({exc.__class__.__name__})"
                await asyncio.sleep(0.5 * attempt)
                continue
            if response.status_code == 201:
                return "started", ""
            if response.status_code == 200:
                return "existing", ""
            if response.status_code >= 500 and attempt < attempts:
                await asyncio.sleep(0.5 * attempt)
                continue
            return "bad", _detail(response)
        return "bad", "the API did not answer"

    return start


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    return f"the API answered {response.status_code}"


class Bar:
    """A progress bar on the terminal (one line, redrawn), or a line every 10% elsewhere."""

    WIDTH = 30

    def __init__(self, progress: Progress, stream: Any = None) -> None:
        self._progress = progress
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._shown = -1

    def show(self, final: bool = False) -> None:
        p = self._progress
        share = p.done / p.total if p.total else 1.0
        tenth = int(share * 10)
        if not self._tty and not final and tenth == self._shown:
            return
        self._shown = tenth
        filled = int(share * self.WIDTH)
        text = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {p.done}/{p.total} rows  "
            f"started {p.started}  already started {p.existing}  bad {len(p.bad)}"
        )
        end = "\n" if final or not self._tty else ""
        self._stream.write(("\r" if self._tty else "") + text + end)
        self._stream.flush()


async def import_file(
    path: str, api_url: str, api_key: str, concurrency: int = 8, out: Any = None
) -> int:
    """`dunwell import`: 0 when every row was good, 1 when some were bad (each named)."""
    out = out or sys.stdout
    try:
        rows = read_rows(await asyncio.to_thread(Path(path).read_bytes))
    except (OSError, FileProblem) as exc:
        print(f"dunwell import: {path}: {exc}", file=sys.stderr)
        return 1
    progress = Progress(total=len(rows))
    bar = Bar(progress)
    headers = {"Authorization": f"Bearer {api_key}"}
    timeout = httpx.Timeout(60.0, connect=5.0)

    async def tick() -> None:
        while not progress.finished:
            bar.show()
            await asyncio.sleep(0.2)

    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=timeout) as client:
        ticker = asyncio.create_task(tick())
        await start_rows(rows, over_http(client), progress, concurrency)
        ticker.cancel()
    bar.show(final=True)
    for line, reason in progress.bad:
        print(f"line {line}: {reason}", file=out)
    print(
        f"{progress.started} started, {progress.existing} already started, "
        f"{len(progress.bad)} bad, of {progress.total} rows",
        file=out,
    )
    return 1 if progress.bad else 0
