"""The debtor's page in a real Chromium: opened from the link in a message in the outbox, read on
a phone-sized screen, switched to English, and checked by axe-core on every tab."""

from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta
from typing import Any

from playwright.async_api import Page, expect

from tests.api.conftest import System, accessibility_problems, screenshot
from tests.api.test_portal import first_message
from tests.api.test_portal_payments import payments_of


async def requested_task(system: System, invoice_id: str) -> dict[str, Any]:
    """The one open task the debtor's request to a person made."""

    def requested(view: dict[str, Any]) -> bool:
        return any(e["kind"] == "agent_request" for e in view["timeline"])

    await system.until(invoice_id, requested)
    tasks = (await system.get("/v1/tasks?status=open")).json()
    [task] = [t for t in tasks if t["invoice_id"] == invoice_id]
    return dict(task)


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


async def test_a_revoked_link_shows_the_plain_page(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    await tab.goto(link)
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Uw facturen")
    revoke = await system.post(f"/v1/customers/{view['customer_id']}/portal-link/revoke", {})
    assert revoke.status_code == 200
    await tab.reload()
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Deze link is niet meer geldig")
    await expect(tab.locator("section.invoice")).to_have_count(0)


async def test_a_bad_link_shows_the_plain_page(system: System, tab: Page) -> None:
    await tab.goto(f"/p/{secrets.token_urlsafe(32)}")
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Deze link is niet meer geldig")
    await expect(tab.locator("footer")).to_contain_text(system.settings.company_phone)
    await screenshot(tab, "portal-invalid")
    assert await accessibility_problems(tab) == []


async def test_a_debtor_disputes_and_the_reminders_stop(system: System, tab: Page) -> None:
    await system.put_policy(
        "portal_soon",
        [
            {"name": "overdue_1", "offset": "PT0S", "tone": "friendly", "channels": ["email"],
             "template": "overdue_1"},
            {"name": "overdue_2", "offset": "PT8S", "tone": "neutral", "channels": ["email"],
             "template": "overdue_2"},
        ],
    )  # fmt: skip
    link, view = await first_message(system, policy="portal_soon")
    invoice_id = view["invoice_id"]
    await tab.goto(link)
    await tab.get_by_text("Er klopt iets niet aan deze factuur").click()
    await tab.get_by_label("Wat klopt er niet?").select_option("already_paid")
    await tab.get_by_label("Vertel ons meer").fill("Betaald op 1 december, kenmerk 42.")
    await tab.get_by_role("button", name="Versturen en herinneringen stoppen").click()
    await expect(tab.locator("#notice")).to_contain_text(
        "herinneringen voor deze factuur stopgezet"
    )
    await screenshot(tab, "portal-disputed")
    assert await accessibility_problems(tab) == []

    disputed = await system.invoice(invoice_id)
    assert disputed["stage"] == "disputed"
    [opened] = [e for e in disputed["timeline"] if e["kind"] == "dispute_opened"]
    assert opened["actor"] == "debtor"
    assert opened["detail"]["reason"] == "already_paid: Betaald op 1 december, kenmerk 42."
    # A confirmation in writing, at once; overdue_2 fell due 8 s after the first: held back.
    await asyncio.sleep(10)
    sent = sorted(m.template for m in system.store.list_messages(invoice_id))
    assert sent == ["dispute_received", "overdue_1"]


async def test_a_promise_inside_the_limits_is_agreed_at_once(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    await tab.goto(link)
    await tab.get_by_text("Ik betaal later, op een datum die ik kies").click()
    day = date.today() + timedelta(days=10)
    await tab.get_by_label("Ik betaal uiterlijk op").fill(day.isoformat())
    await tab.get_by_role("button", name="Deze datum toezeggen").click()
    await expect(tab.locator("#notice")).to_contain_text("tot dan sturen we geen herinneringen")
    promised = await system.invoice(view["invoice_id"])
    assert promised["stage"] == "promised"
    [made] = [e for e in promised["timeline"] if e["kind"] == "promise"]
    assert made["actor"] == "debtor" and made["detail"]["promised_on"] == day.isoformat()


async def test_a_promise_beyond_the_limits_goes_to_a_person(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    await tab.goto(link)
    await tab.get_by_text("Ik betaal later, op een datum die ik kies").click()
    day = date.today() + timedelta(days=60)  # the policy agrees 30 days by itself
    await tab.get_by_label("Ik betaal uiterlijk op").fill(day.isoformat())
    await tab.get_by_role("button", name="Deze datum toezeggen").click()
    await expect(tab.locator("#notice")).to_contain_text("U kunt uw verzoek wel naar ons team")
    await screenshot(tab, "portal-promise-refused")
    assert await accessibility_problems(tab) == []
    assert (await system.invoice(invoice_id))["stage"] != "promised"

    await tab.get_by_label("Een bericht voor ons team").fill("Ik krijg eind januari mijn loon.")
    await tab.get_by_role("button", name="Mijn verzoek naar uw team sturen").click()
    await expect(tab.locator("#notice")).to_contain_text("Uw verzoek is naar ons team gestuurd")

    task = await requested_task(system, invoice_id)
    assert task["kind"] == "promise_request"
    assert task["detail"]["promised_on"] == day.isoformat()
    assert task["detail"]["message"] == "Ik krijg eind januari mijn loon."


async def test_a_debtor_changes_how_we_reach_them(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    await tab.goto(link)
    await tab.get_by_label("Sms", exact=True).check()
    await tab.get_by_label("E-mailadres").fill("boekhouding@devries.example")
    await tab.get_by_label("Geen WhatsApp-berichten meer").check()
    await tab.get_by_role("button", name="Opslaan").click()
    await expect(tab.locator("#notice")).to_contain_text("nieuwe contactvoorkeuren")

    def changed(view: dict[str, Any]) -> bool:
        kinds = [e["kind"] for e in view["timeline"]]
        return "contact_changed" in kinds and "opted_out" in kinds

    after = await system.until(invoice_id, changed)
    [change] = [e for e in after["timeline"] if e["kind"] == "contact_changed"]
    [opted] = [e for e in after["timeline"] if e["kind"] == "opted_out"]
    assert change["actor"] == opted["actor"] == "debtor"
    assert set(change["detail"]["fields"]) == {"email", "preferred_channel"}
    assert opted["detail"]["channel"] == "whatsapp"


async def test_a_form_without_its_csrf_token_is_refused(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    await tab.goto(link)  # a session cookie, but the form token is left out
    answer = await tab.request.post(
        link.split("?")[0] + "/dispute",
        form={"invoice": view["invoice_id"], "reason": "other"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "Dit formulier is verlopen" in await answer.text()
    assert (await system.invoice(view["invoice_id"]))["stage"] != "disputed"


async def test_a_debtor_pays_by_ideal_through_mollie(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    await tab.goto(link)
    await tab.get_by_role("button", name="Betaal € 1.250,00").click()
    await expect(tab.get_by_role("heading", name="Fake Mollie checkout")).to_be_visible()
    await tab.get_by_role("button", name="Paid").click()
    # Back from Mollie: processing at first, then paid once Mollie's webhook was applied.
    await expect(tab.get_by_role("heading", level=1)).to_have_text(
        "Dank u wel, uw betaling van € 1.250,00 is ontvangen", timeout=15_000
    )
    await screenshot(tab, "portal-paid")
    assert await accessibility_problems(tab) == []
    closed = await system.until(invoice_id, lambda v: v["outcome"] == "paid")
    [payment] = [e for e in closed["timeline"] if e["kind"] == "payment"]
    [made] = payments_of(system, view["customer_id"])
    assert payment["actor"] == "debtor"
    assert payment["detail"]["reference"] == f"mollie:{made['id']}"
    assert made["metadata"]["invoices"] == {invoice_id: "1250.00"}


async def test_a_failed_mollie_payment_changes_nothing(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    await tab.goto(link)
    await tab.get_by_role("button", name="Betaal € 1.250,00").click()
    await tab.get_by_role("button", name="Failed").click()
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Uw betaling is niet gelukt")
    await screenshot(tab, "portal-payment-failed")
    assert await accessibility_problems(tab) == []
    after = await system.invoice(view["invoice_id"])
    assert after["outcome"] is None and after["outstanding"] == "1250.00"


async def propose(tab: Page, link: str, count: int, first: date) -> None:
    await tab.goto(link)
    await tab.get_by_text("Ik wil in termijnen betalen").click()
    await tab.get_by_label("Aantal maandelijkse termijnen").select_option(str(count))
    await tab.get_by_label("Eerste termijn op").fill(first.isoformat())
    await tab.get_by_role("button", name="Deze regeling voorstellen").click()


async def test_a_plan_inside_the_limits_starts_at_once(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    first = date.today() + timedelta(days=7)
    await propose(tab, link, 3, first)
    await expect(tab.locator("#notice")).to_contain_text("3 maandelijkse termijnen")
    planned = await system.until(invoice_id, lambda v: v["plan"] is not None)
    assert planned["stage"] == "arrangement"
    assert [i["amount"] for i in planned["plan"]["instalments"]] == ["416.66", "416.66", "416.68"]
    assert planned["plan"]["instalments"][0]["due_on"] == first.isoformat()
    [agreed] = [e for e in planned["timeline"] if e["kind"] == "arrangement"]
    assert agreed["actor"] == "debtor"
    await tab.reload()
    await expect(tab.locator("table.plan tbody tr")).to_have_count(3)
    await screenshot(tab, "portal-plan")
    assert await accessibility_problems(tab) == []


async def test_a_plan_beyond_the_limits_goes_to_a_person(system: System, tab: Page) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    await propose(tab, link, 12, date.today() + timedelta(days=7))  # the policy agrees 6
    await expect(tab.locator("#notice")).to_contain_text("hoogstens 6 termijnen")
    assert (await system.invoice(invoice_id))["stage"] != "arrangement"
    await tab.get_by_role("button", name="Mijn verzoek naar uw team sturen").click()
    await expect(tab.locator("#notice")).to_contain_text("Uw verzoek is naar ons team gestuurd")

    task = await requested_task(system, invoice_id)
    assert task["kind"] == "plan_request" and task["detail"]["instalments"] == "12"
