"""Property-based: schemathesis drives every operation of our own OpenAPI document.

The API runs as in production (uvicorn on a port, its own Temporal client with the codec) against
a real dev server, worker and SQLite. Generated requests must never get a 5xx, nor a response the
document does not describe (status, content type, body schema).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
import uvicorn
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.api.conftest import KEYS, System, invoice_body, new_id
from tests.keys import TEST_KEYS

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = 12
"""Per operation: enough to walk every route's branches, small enough for about a minute here."""

# What "no server error and no response that breaks the documented schema" means. Left out on
# purpose: schemathesis's positive-data-acceptance check. The document states the JSON shapes, but
# not every business rule (a currency's decimals, a customer with an email or a phone, an amount
# that adds up), so a schema-valid request may rightly get its documented 422 problem.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Api:
    """The API in a thread of its own, with its own event loop and Temporal client."""

    def __init__(self, system: System) -> None:
        port = _free_port()
        settings = system.settings.model_copy(
            update={
                "temporal_address": system.env.client.service_client.config.target_host,
                "encryption_keys": SecretStr(TEST_KEYS),
            }
        )
        self.app = create_app(settings)
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Api:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


ROLES = ("admin", "agent", "integration", None)
"""Each request as one of these (None: no key at all), so the 401 and 403 answers are fuzzed too."""


def _fuzz(api: _Api, invoices: list[str]) -> list[str]:
    schema = schemathesis.openapi.from_dict(api.app.openapi())
    failures: list[str] = []

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result}"
        operation = result.ok()

        @hypothesis.settings(
            max_examples=EXAMPLES,
            derandomize=True,  # the same requests on every run: CI is repeatable
            deadline=None,
            database=None,
            # A real API on a real worker answers in milliseconds, not microseconds.
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
        )
        @hypothesis.given(
            case=operation.as_strategy(),
            role=st.sampled_from(ROLES),
            existing=st.sampled_from([None, *invoices]),
        )
        def check(case: schemathesis.Case, role: str | None, existing: str | None) -> None:
            # Half the time an invoice that exists, so requests reach its journey.
            if existing is not None and "invoice_id" in (case.path_parameters or {}):
                case.path_parameters = {**(case.path_parameters or {}), "invoice_id": existing}
            headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
            case.call_and_validate(base_url=api.url, headers=headers, checks=CHECKS)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # try every operation, report them all
            failures.append(f"{operation.label}: {exc}")
    return failures


async def test_generated_requests_get_no_server_error_and_only_documented_answers(
    system: System,
) -> None:
    invoices = [new_id(), new_id()]
    for invoice_id in invoices:
        started = await system.post("/v1/invoices", invoice_body(invoice_id), "integration")
        assert started.status_code == 201, started.text

    def run() -> list[str]:
        with _Api(system) as api:
            return _fuzz(api, invoices)

    failures = await asyncio.to_thread(run)
    assert failures == [], "\n\n".join(failures)
