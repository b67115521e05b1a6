"""The debtor's page in a real Chromium: opened from the link in a message in the outbox, read on
a phone-sized screen, switched to English, and checked by axe-core on every tab."""

from __future__ import annotations

import secrets

from playwright.async_api import Page, expect

from tests.api.conftest import System, accessibility_problems, screenshot
from tests.api.test_portal import first_message


async def test_a_debtor_reads_their_page_from_the_link_in_a_message(
    system: System, tab: Page
) -> None:
    link, view = await first_message(system)
    await tab.goto(link)
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Uw facturen")
    invoice = tab.locator("section.invoice").first
    await expect(invoice.get_by_role("heading", level=2)).to_have_text(
        f"Factuur {view['invoice_id']}"
    )
    outstanding = invoice.locator("dl.facts div").filter(has_text="Openstaand")
    await expect(outstanding.locator("dd")).to_have_text("€\xa01.250,00")
    await expect(invoice.locator("p.next")).to_contain_text("per e-mail en sms")
    # The message sent opens to its full text.
    message = tab.locator("section.messages details").first
    await message.locator("summary").click()
    await expect(message.locator(".text")).to_contain_text(view["invoice_id"])
    await screenshot(tab, "portal-nl")
    assert await accessibility_problems(tab) == []

    await tab.get_by_role("link", name="English").click()
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Your invoices")
    outstanding = invoice.locator("dl.facts div").filter(has_text="Outstanding")
    await expect(outstanding.locator("dd")).to_have_text("€1,250.00")
    await screenshot(tab, "portal-en")
    assert await accessibility_problems(tab) == []


async def test_a_bad_link_shows_the_plain_page(system: System, tab: Page) -> None:
    await tab.goto(f"/p/{secrets.token_urlsafe(32)}")
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Deze link is niet meer geldig")
    await expect(tab.locator("footer")).to_contain_text(system.settings.company_phone)
    await screenshot(tab, "portal-invalid")
    assert await accessibility_problems(tab) == []
