"""`python -m bench.api_probe`: the API exactly as `python -m cli api` runs it, plus timers.

For `python -m bench --probe-api`: the phases of the request paths the bench drives are timed
(wall clock, in the thread or task that runs them), and so is each whole request inside the
server (ASGI in to last byte out) and the time a call waits for a free thread. At exit the
summary is written as JSON to $DUNWELL_BENCH_PROBE_OUT with the process's CPU seconds. Nothing in
the application is changed; its functions are wrapped before uvicorn imports the app.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

_samples: dict[str, list[float]] = defaultdict(list)
_lock = threading.Lock()
_began = time.perf_counter()
_tried: list[str] = []


def _add(name: str, seconds: float) -> None:
    with _lock:
        _samples[name].append(seconds)


def _sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - began)

    return wrapper


def _async(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - began)

    return wrapper


def _threadpool(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`run_in_threadpool` that also records how long the call waited for a thread."""

    async def wrapper(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        called = time.perf_counter()

        def run() -> Any:
            _add(f"thread wait ({getattr(func, '__name__', 'call')})", time.perf_counter() - called)
            return func(*args, **kwargs)

        result = await fn(run)
        name = getattr(func, "__name__", "call")
        _add(f"threadpool round trip ({name})", time.perf_counter() - called)
        return result

    return wrapper


class _RequestTimer:
    """ASGI middleware: each request from its first byte in to its last byte out."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        route = _route_name(scope["method"], scope["path"])

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                _add(f"request in server: {route}", time.perf_counter() - began)

        await self.app(scope, receive, timed_send)


def _route_name(method: str, path: str) -> str:
    if path.endswith("/disputes"):
        return f"{method} /v1/invoices/{{id}}/disputes"
    return f"{method} {path}"


def _summary() -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    phases = {}
    for name, values in sorted(_samples.items()):
        ordered = sorted(values)
        n = len(ordered)
        phases[name] = {
            "count": n,
            "mean_ms": 1000 * sum(ordered) / n,
            "p50_ms": 1000 * ordered[(n - 1) // 2],
            "p99_ms": 1000 * ordered[max(0, -(-99 * n // 100) - 1)],
            "total_s": sum(ordered),
        }
    return {
        "experiments": _tried,
        "cpu_user_s": usage.ru_utime,
        "cpu_system_s": usage.ru_stime,
        "wall_s": time.perf_counter() - _began,
        "phases": phases,
    }


def _dump() -> None:
    path = os.environ.get("DUNWELL_BENCH_PROBE_OUT")
    if path:
        with open(path, "w") as out:
            json.dump(_summary(), out, indent=1)


# ---- what-if experiments: $DUNWELL_BENCH_PROBE_TRY, comma-separated ---------------------------
# Each stands for a change to the application, tried here by patching the running process only.
EXPERIMENTS = {
    "async_deps": "the small dependencies (store, client, settings, API-key check) as `async def`, "
    "so FastAPI calls them inline instead of in its thread pool",
    "policy_cache": "policies cached in memory (the policy lookup skips SQLite and validation)",
    "no_invoice_write": "no SQLite write in the start request (the answer is built from the "
    "invoice; the worker's first recording creates the row)",
}


def _async_deps() -> None:
    """Rebind the `Depends` of api.deps to async wrappers, before any route is declared."""
    import typing

    from fastapi import params

    import api.deps

    aliases = ("StoreDep", "TemporalClient", "SettingsDep", "AnyRole", "Integration", "Agent")
    for alias in aliases:
        for meta in typing.get_args(getattr(api.deps, alias))[1:]:
            if isinstance(meta, params.Depends) and meta.dependency is not None:
                sync = meta.dependency

                @functools.wraps(sync)
                async def inline(*args: Any, __sync: Any = sync, **kwargs: Any) -> Any:
                    return __sync(*args, **kwargs)

                object.__setattr__(meta, "dependency", inline)


def _policy_cache() -> None:
    import db.store

    original = db.store.Store.get_policy
    cache: dict[str, Any] = {}

    def get_policy(self: Any, name: str) -> Any:
        if name not in cache:
            cache[name] = original(self, name)
        return cache[name]

    db.store.Store.get_policy = get_policy  # type: ignore[method-assign]


def _no_invoice_write() -> None:
    from datetime import UTC, datetime

    import db.store
    from workflows.models import Stage

    def ensure_invoice(
        self: Any, invoice: Any, fingerprint: str, policy_name: str, policy_version: int
    ) -> Any:
        now = datetime.now(UTC)
        view = db.store.InvoiceView(
            invoice_id=invoice.invoice_id,
            customer_id=invoice.customer.id,
            stage=Stage.scheduled,
            outcome=None,
            amount=invoice.amount,
            outstanding=invoice.amount,
            currency=invoice.currency,
            due_on=invoice.due_on,
            next_action=None,
            policy_name=policy_name,
            policy_version=policy_version,
            fingerprint=fingerprint,
            invoice=invoice,
            created_at=now,
            updated_at=now,
        )
        return view, True

    db.store.Store.ensure_invoice = ensure_invoice  # type: ignore[method-assign]


def _experiments() -> list[str]:
    tried = [t for t in os.environ.get("DUNWELL_BENCH_PROBE_TRY", "").split(",") if t]
    unknown = set(tried) - set(EXPERIMENTS)
    if unknown:
        raise SystemExit(f"unknown experiments {sorted(unknown)}; known: {sorted(EXPERIMENTS)}")
    patches = {
        "async_deps": _async_deps,
        "policy_cache": _policy_cache,
        "no_invoice_write": _no_invoice_write,
    }
    for name in tried:
        patches[name]()
    return tried


def install() -> None:
    tried = _experiments()  # first: the dependencies must be patched before routes exist
    import api.app
    import api.journeys
    import api.routes.invoices as invoices
    import db.store
    from api.schemas import InvoiceIn

    timers: list[tuple[Any, str, str, Callable[..., Any]]] = [
        (db.store.Store, "get_policy", "store.get_policy", _sync),
        (db.store.Store, "ensure_invoice", "store.ensure_invoice", _sync),
        (db.store.Store, "get_invoice", "store.get_invoice", _sync),
        (InvoiceIn, "to_invoice", "InvoiceIn.to_invoice", _sync),
        (api.journeys, "fingerprint", "fingerprint", _sync),
        (api.journeys, "start_journey", "start_journey (Temporal start_workflow)", _async),
        (api.journeys, "update", "journeys.update (Temporal execute_update)", _async),
        (invoices, "invoice_out", "invoice_out", _sync),
    ]
    for owner, attribute, label, timer in timers:
        setattr(owner, attribute, timer(label, getattr(owner, attribute)))
    pool = "run_in_threadpool"
    setattr(invoices, pool, _threadpool(getattr(invoices, pool)))

    create_app = api.app.create_app

    @functools.wraps(create_app)
    def timed_create_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.add_middleware(_RequestTimer)
        return app

    factory = "create_app"
    setattr(api.app, factory, timed_create_app)
    _tried.extend(tried)
    atexit.register(_dump)


if __name__ == "__main__":
    install()
    from cli import main

    main(["api"])
