"""The API's documentation page in a real Chromium with the internet out of reach: Swagger UI
renders every operation from files the API serves itself (no CDN)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect

from tests.api.conftest import browser_tab, screenshot


@pytest_asyncio.fixture(loop_scope="session")
async def offline(chromium: Browser, served: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """A tab that reaches only the API: anything else it asks for is refused, and listed."""
    async with browser_tab(chromium, served, 1280, 900, "en-GB") as page:
        elsewhere: list[str] = []

        async def only_the_api(route: Route) -> None:
            if route.request.url.startswith(served):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_the_api)
        yield page, elsewhere


async def test_the_api_docs_render_without_the_internet(offline: tuple[Page, list[str]]) -> None:
    page, elsewhere = offline
    await page.goto("/docs")
    operations = page.locator(".opblock-summary-path")
    await expect(
        operations.filter(has_text="/v1/invoices/{invoice_id}/disputes").first
    ).to_be_visible(timeout=20_000)
    await screenshot(page, "docs")
    assert elsewhere == []
    assert (await page.request.get("/redoc")).status == 404  # never a page that needs a CDN
