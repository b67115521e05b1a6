"""Fixtures for activity tests: a fake SendGrid and Twilio on loopback, shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_providers import FakeProviders


@pytest.fixture(scope="session")
def fake_providers_server() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def fake_providers(fake_providers_server: FakeProviders) -> FakeProviders:
    """The running fake, with nothing received and no failures queued."""
    fake_providers_server.clear()
    return fake_providers_server
