"""Liveness and readiness, and the API's answer when the database or Temporal is down."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from temporalio.client import Client

from api.app import create_app
from db.session import make_engine, make_sessionmaker
from db.store import Store
from settings import Settings
from tests.api.conftest import PROBLEM, System, invoice_body
from tests.keys import TEST_CONVERTER

pytestmark = pytest.mark.asyncio(loop_scope="session")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def api(settings: Settings, client: Client, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, temporal=client, store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as http:
            yield http


async def test_a_running_system_is_ready_and_says_what_it_checked(system: System) -> None:
    answer = await system.api.get("/readyz")

    assert answer.status_code == 200, answer.text
    checks = answer.json()["checks"]
    assert (checks["database"], checks["temporal"]) == ("ok", "ok")
    assert checks["providers"] == {"sendgrid": "configured", "twilio": "configured"}


async def test_a_misconfigured_provider_makes_the_system_not_ready(system: System) -> None:
    system.store.provider_misconfigured(
        "sendgrid", "SendGrid rejected the API key (401): check DUNWELL_SENDGRID_API_KEY", "X", "C"
    )
    try:
        answer = await system.api.get("/readyz")
        assert answer.status_code == 503 and answer.headers["content-type"] == PROBLEM
        assert "DUNWELL_SENDGRID_API_KEY" in answer.json()["detail"]
        assert answer.json()["checks"]["providers"]["sendgrid"]["state"] == "misconfigured"
        assert (await system.api.get("/healthz")).status_code == 200  # alive all the same
    finally:
        system.store.provider_ok("sendgrid")


async def test_with_the_database_down_every_route_answers_503_problem_json(
    system: System,
) -> None:
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    down = Store(make_sessionmaker(make_engine(nowhere)))
    async with api(system.settings, system.env.client, down) as http:
        for method, path, role in (
            ("GET", "/v1/invoices/INV-1", "agent"),
            ("GET", "/v1/invoices", "agent"),
            ("POST", "/v1/invoices", "integration"),
            ("GET", "/v1/tasks", "agent"),
        ):
            body = invoice_body("INV-DOWN") if method == "POST" else None
            answer = await http.request(method, path, json=body, headers=system.headers(role))
            assert answer.status_code == 503, (path, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.headers["retry-after"] == "5"
            assert "database" in answer.json()["detail"]
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and "database" in ready.json()["detail"]
        alive = await http.get("/healthz")  # liveness: the process answers, whatever is down
        assert alive.status_code == 200 and alive.json() == {"status": "ok"}


async def test_with_temporal_down_the_api_answers_503_problem_json(system: System) -> None:
    nowhere = await Client.connect(
        f"127.0.0.1:{free_port()}", data_converter=TEST_CONVERTER, lazy=True
    )
    async with api(system.settings, nowhere, system.store) as http:
        started = await http.post(
            "/v1/invoices",
            json=invoice_body("INV-NO-TEMPORAL"),
            headers=system.headers("integration"),
        )
        assert started.status_code == 503, started.text
        assert started.headers["content-type"] == PROBLEM and started.headers["retry-after"]
        assert "Temporal" in started.json()["detail"]
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and "Temporal" in ready.json()["detail"]
    assert system.store.get_invoice("INV-NO-TEMPORAL") is None
