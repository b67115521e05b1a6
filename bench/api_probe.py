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


def install() -> None:
    import api.app
    import api.journeys
    import api.routes.invoices as invoices
    import db.store
    from api.schemas import InvoiceIn

    store = db.store.Store
    store.get_policy = _sync("store.get_policy", store.get_policy)  # type: ignore[method-assign]
    store.ensure_invoice = _sync("store.ensure_invoice", store.ensure_invoice)  # type: ignore[method-assign]
    store.get_invoice = _sync("store.get_invoice", store.get_invoice)  # type: ignore[method-assign]
    InvoiceIn.to_invoice = _sync("InvoiceIn.to_invoice", InvoiceIn.to_invoice)  # type: ignore[method-assign]
    api.journeys.fingerprint = _sync("fingerprint", api.journeys.fingerprint)
    api.journeys.start_journey = _async(
        "start_journey (Temporal start_workflow)", api.journeys.start_journey
    )
    api.journeys.update = _async("journeys.update (Temporal execute_update)", api.journeys.update)
    invoices.invoice_out = _sync("invoice_out", invoices.invoice_out)
    invoices.run_in_threadpool = _threadpool(invoices.run_in_threadpool)  # type: ignore[assignment]

    create_app = api.app.create_app

    @functools.wraps(create_app)
    def timed_create_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        app.add_middleware(_RequestTimer)
        return app

    api.app.create_app = timed_create_app  # type: ignore[assignment]
    atexit.register(_dump)


if __name__ == "__main__":
    install()
    from cli import main

    main(["api"])
