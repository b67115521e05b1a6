"""End to end: the API, a real Temporal dev server, a real worker, SQLite, and the providers' SDKs
talking to the fake SendGrid and Twilio on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from axe_playwright_python.async_playwright import Axe
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from playwright.async_api import Browser, Page, Response, async_playwright
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import fake_mollie
import fake_providers as fake
from activities.channels import build_senders
from api.app import create_app
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from settings import Settings
from worker import build_workers, running
from workflows.policy import SHIPPED_POLICIES

KEYS = {
    "integration": "integration-secret-0123456789",
    "agent": "agent-secret-0123456789abcdef",
    "admin": "admin-secret-0123456789abcdef",
}
CODEC_TOKEN = "test-codec-token"
PORTAL_SECRET = "portal-secret-for-tests-0123456789abcdef"
INBOUND_DOMAIN = "reply.collections.example.com"
INBOUND_SECRET = "inbound-secret-for-tests"
INBOUND_AUTH = "sendgrid:parse-password-for-tests"
PROBLEM = "application/problem+json"
"""The content type of every error answer (RFC 9457)."""
PUBLIC_URL = "https://collections.example.com"
# The key pair SendGrid signs its event webhook with; we are given the public half.
SENDGRID_WEBHOOK_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_WEBHOOK_PUBLIC_KEY = base64.b64encode(
    SENDGRID_WEBHOOK_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@dataclass
class System:
    api: httpx.AsyncClient
    env: WorkflowEnvironment
    store: Store
    providers: FakeProviders
    task_queue: str
    settings: Settings
    app: FastAPI

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS[role]}"}

    async def post(self, path: str, body: dict[str, Any], role: str = "agent") -> httpx.Response:
        return await self.api.post(path, json=body, headers=self.headers(role))

    async def get(self, path: str, role: str = "agent") -> httpx.Response:
        return await self.api.get(path, headers=self.headers(role))

    async def invoice(self, invoice_id: str) -> dict[str, Any]:
        response = await self.get(f"/v1/invoices/{invoice_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def put_policy(self, name: str, steps: list[dict[str, Any]]) -> int:
        """Put a policy made for one test (the `fast` one's settings with `steps`); its version."""
        body = {**FAST_POLICY, "name": name, "steps": steps}
        put = await self.api.put(f"/v1/policies/{name}", json=body, headers=self.headers("admin"))
        assert put.status_code == 200, put.text
        version: int = put.json()["version"]
        return version

    async def until(
        self, invoice_id: str, condition: Callable[[dict[str, Any]], bool], within: float = 30
    ) -> dict[str, Any]:
        """Poll the invoice view (real time passes here) until `condition` holds."""
        deadline = time.monotonic() + within
        while True:
            view = await self.invoice(invoice_id)
            if condition(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the invoice is now {view}")
            await asyncio.sleep(0.2)


def invoice_body(
    invoice_id: str, *, policy: str = "fast", due_in: float = 1, **customer: Any
) -> dict[str, Any]:
    due_at = datetime.now().astimezone() + timedelta(seconds=due_in)
    return {
        "invoice_id": invoice_id,
        "amount": "1250.00",
        "currency": "EUR",
        "issued_on": due_at.date().isoformat(),
        "due_on": due_at.date().isoformat(),
        "due_at": due_at.isoformat(),
        "payment_url": f"https://pay.example.com/{invoice_id}",
        "policy": policy,
        "customer": {
            "id": f"C-{invoice_id}",
            "name": "Bakkerij de Vries",
            "email": "ap@devries.example",
            "phone": "+31612345678",
            "locale": "nl",
            "timezone": "Europe/Amsterdam",
            "country": "NL",
            **customer,
        },
    }


FAST_POLICY = {
    "name": "fast",
    "description": "A ladder in seconds, for tests.",
    "send_window": None,
    "dispute_review_after": "PT1H",
    "steps": [
        {"name": "overdue_1", "offset": "PT0S", "tone": "friendly", "channels": ["email"],
         "template": "overdue_1"},
        {"name": "overdue_2", "offset": "PT2S", "tone": "neutral", "channels": ["email", "sms"],
         "template": "overdue_2"},
        {"name": "final_notice", "offset": "PT1H", "tone": "final", "channels": ["email"],
         "template": "final_notice"},
        {"name": "hand_over", "offset": "PT2H", "action": "hand_over"},
    ],
}  # fmt: skip


def system_settings(tmp_path: Path, fake_providers: FakeProviders, task_queue: str) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'dunwell.db'}",
        api_keys=",".join(f"{role}:{key}" for role, key in KEYS.items()),
        task_queue=task_queue,
        codec_token=SecretStr(CODEC_TOKEN),
        public_url=PUBLIC_URL,
        sendgrid_webhook_public_key=SENDGRID_WEBHOOK_PUBLIC_KEY,
        sendgrid_api_key=SecretStr(fake.SENDGRID_API_KEY),
        sendgrid_base_url=fake_providers.base_url,
        twilio_account_sid=fake.TWILIO_ACCOUNT_SID,
        twilio_auth_token=SecretStr(fake.TWILIO_AUTH_TOKEN),
        twilio_from="+3197010000000",
        twilio_base_url=fake_providers.base_url,
        portal_secret=SecretStr(PORTAL_SECRET),
        mollie_api_key=SecretStr(fake_mollie.MOLLIE_API_KEY),
        inbound_email_domain=INBOUND_DOMAIN,
        inbound_secret=SecretStr(INBOUND_SECRET),
        inbound_basic_auth=SecretStr(INBOUND_AUTH),
        mollie_base_url=fake_providers.base_url,
        company_name="Jansen Groothandel B.V.",
        company_address="Damrak 1, 1012 LG Amsterdam",
        company_email="debiteuren@jansen.example",
        company_phone="+31 20 555 0100",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def system(
    dev_server_env: WorkflowEnvironment,
    fake_providers: FakeProviders,
    task_queue: str,
    tmp_path: Path,
) -> AsyncIterator[System]:
    settings = system_settings(tmp_path, fake_providers, task_queue)
    migrate(settings.database)
    store = Store(make_sessionmaker(make_engine(settings.database)))
    store.ensure_shipped_policies(SHIPPED_POLICIES)
    app = create_app(settings, temporal=dev_server_env.client, store=store)
    with ThreadPoolExecutor(max_workers=8) as executor:
        workers = build_workers(
            dev_server_env.client, store, build_senders(settings), task_queue, executor, settings
        )
        async with running(workers), app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as api:
                system = System(
                    api, dev_server_env, store, fake_providers, task_queue, settings, app
                )
                response = await system.api.put(
                    "/v1/policies/fast", json=FAST_POLICY, headers=system.headers("admin")
                )
                assert response.status_code == 200, response.text
                try:
                    yield system
                finally:
                    await end_journeys(dev_server_env.client, task_queue)


async def end_journeys(client: Client, task_queue: str) -> None:
    """Terminate what a test left running on its queue, so a dev server shared by the whole
    session (and a rerun) does not keep sending its reminders. A plan ends with its journey."""
    query = f'TaskQueue="{task_queue}" AND ExecutionStatus="Running"'
    async for execution in client.list_workflows(query):
        if execution.parent_id is None:
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            with contextlib.suppress(RPCError):  # it closed meanwhile
                await handle.terminate("the test is over")


def new_id() -> str:
    """An invoice id no other test (nor an earlier run on the same server) uses."""
    return f"INV-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def served(system: System) -> AsyncIterator[str]:
    """The system's API on a real loopback port (for a real browser); its base address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(system.app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(200):  # ten seconds at most
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    assert server.started, "the API did not start serving"
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # What providers and browsers are sent to (Mollie's return and webhook addresses) is here.
    public, system.settings.public_url = system.settings.public_url, base
    try:
        yield base
    finally:
        system.settings.public_url = public
        server.should_exit = True
        await task


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright (never downloaded, never skipped)."""
    path = os.environ.get("DUNWELL_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not os.access(path, os.X_OK):
        pytest.fail(
            "the browser tests need Chromium: run `make test` (it installs Debian's chromium) "
            "or `apt-get install chromium`",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def browser_tab(
    chromium: Browser, served: str, width: int, height: int, locale: str
) -> AsyncIterator[Page]:
    """A fresh browser tab (no cookies) of that size and language on the served API. Every file
    a page of ours loads (style, script, icon) must be there: a test whose pages asked for one
    that answered an error fails when its tab closes."""
    context = await chromium.new_context(
        base_url=served, viewport={"width": width, "height": height}, locale=locale
    )
    missing: list[str] = []

    def check(response: Response) -> None:
        # Our files are under /static/; a browser also asks for /favicon.ico on its own.
        path = response.url.removeprefix(served)
        if path.startswith(("/static/", "/favicon.ico")) and response.status >= 400:
            missing.append(f"{response.status} {response.url}")

    context.on("response", check)  # every page of the tab's context, popups too
    try:
        yield await context.new_page()
    finally:
        await context.close()
    assert missing == [], f"the pages asked for files that answered an error: {missing}"


@pytest_asyncio.fixture(loop_scope="session")
async def tab(chromium: Browser, served: str) -> AsyncIterator[Page]:
    """A phone-sized tab, in Dutch."""
    async with browser_tab(chromium, served, 390, 844, "nl-NL") as page:
        yield page


async def screenshot(page: Page, name: str) -> None:
    """Keep a full-page picture when DUNWELL_SCREENSHOTS names a directory (to look at pages)."""
    directory = os.environ.get("DUNWELL_SCREENSHOTS")
    if directory:
        os.makedirs(directory, exist_ok=True)
        await page.screenshot(path=os.path.join(directory, f"{name}.png"), full_page=True)


async def accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    results = await Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
