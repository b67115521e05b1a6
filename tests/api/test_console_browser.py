"""The console in a real Chromium, as a credit controller uses it: sign in, work a dispute-review
task from the list to its resolution, record a promise, build a plan (a sum that does not add up is
refused inline), write a note, import a CSV with one bad row, and edit a policy into a new version.
axe-core checks every page on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from playwright.async_api import Browser, Page, expect

from tests.api.conftest import (
    FAST_POLICY,
    KEYS,
    System,
    accessibility_problems,
    browser_tab,
    new_id,
    screenshot,
)
from tests.api.test_console import started, write_csv

REVIEW_POLICY = {
    **FAST_POLICY,
    "name": "console_review",
    "dispute_review_after": "PT1S",
    # The ladder stays out of the way: nothing is sent while the test works the invoice.
    "steps": [
        {"name": "overdue_1", "offset": "PT1H", "tone": "friendly", "channels": ["email"],
         "template": "overdue_1"},
        {"name": "hand_over", "offset": "PT2H", "action": "hand_over"},
    ],
}  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")
async def desk(chromium: Browser, served: str) -> AsyncIterator[Page]:
    """A laptop-sized tab, in English."""
    async with browser_tab(chromium, served, 1280, 900, "en-GB") as page:
        yield page


async def sign_in(page: Page, role: str) -> None:
    await page.goto("/console/sign-in")
    assert await accessibility_problems(page) == []
    await page.get_by_label("API key").fill(KEYS[role])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text(f"({role})")).to_be_visible()


async def checked(page: Page, name: str) -> None:
    """A picture of the page (with DUNWELL_SCREENSHOTS) and no serious axe violation on it."""
    await screenshot(page, f"console-{name}")
    assert await accessibility_problems(page) == [], name


async def go(page: Page, name: str) -> None:
    """Follow a link in the console's navigation."""
    await page.get_by_role("navigation", name="Console").get_by_role("link", name=name).click()


async def open_action(page: Page, title: str) -> None:
    await page.locator("details.action summary").filter(has_text=title).click()


async def until(condition: Any, within: float = 30) -> None:
    for _ in range(int(within * 10)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_an_agent_works_a_dispute_from_the_list_to_resolution(
    system: System, desk: Page
) -> None:
    put = await system.api.put(
        "/v1/policies/console_review", json=REVIEW_POLICY, headers=system.headers("admin")
    )
    assert put.status_code == 200, put.text
    invoice_id, _ = await started(system, policy="console_review")
    dispute = await system.post(f"/v1/invoices/{invoice_id}/disputes", {"reason": "Wrong VAT"})
    assert dispute.status_code == 200, dispute.text

    def review_task() -> list[Any]:
        return [
            t for t in system.store.list_tasks("open", invoice_id) if t.kind == "review_dispute"
        ]

    async def has_task() -> bool:
        return bool(review_task())

    await until(has_task)
    await sign_in(desk, "agent")
    await desk.get_by_label("Kind").select_option("review_dispute")
    card = desk.locator("li.task").filter(has_text=invoice_id)
    await expect(card).to_have_count(1)
    await checked(desk, "work-list")
    await card.get_by_role("button", name="Take").click()
    await expect(desk.get_by_role("status")).to_have_text("The task is on your list now.")
    card = desk.locator("li.task").filter(has_text=invoice_id)
    await expect(card.locator(".taken")).to_have_text("agent-key-2")
    await desk.get_by_label("Only mine").check()
    await expect(desk.locator("li.task")).to_have_count(1)

    # To the invoice, and resolve the dispute (rejected: the reminders resume).
    await card.get_by_role("link", name=invoice_id, exact=True).click()
    await expect(desk.get_by_role("heading", level=1)).to_have_text(f"Invoice {invoice_id}")
    await expect(desk.locator(".hold")).to_contain_text("Wrong VAT")
    await checked(desk, "invoice-disputed")
    await open_action(desk, "Resolve the dispute")
    await desk.get_by_label("Note").fill("VAT checked: correct")
    await desk.get_by_role("button", name="Resolve the dispute").click()
    await expect(desk.get_by_role("status")).to_have_text("Done.")
    await system.until(invoice_id, lambda view: view["stage"] != "disputed")

    # Back to the list: complete the task with a note, which lands on the timeline.
    await go(desk, "Work list")
    await desk.get_by_label("Kind").select_option("review_dispute")
    card = desk.locator("li.task").filter(has_text=invoice_id)
    await card.get_by_label("Note").fill("Customer agreed on the phone")
    await card.get_by_role("button", name="Complete").click()
    await expect(desk.get_by_role("status")).to_contain_text("Task completed")
    await expect(desk.locator("li.task").filter(has_text=invoice_id)).to_have_count(0)
    [done] = [t for t in system.store.list_tasks("done", invoice_id)]
    assert (done.completed_by, done.note) == ("agent-key-2", "Customer agreed on the phone")
    await system.until(
        invoice_id,
        lambda view: any(
            e["kind"] == "task_completed"
            and e["detail"].get("note") == "Customer agreed on the phone"
            for e in view["timeline"]
        ),
    )
    await desk.goto(f"/console/invoices/{invoice_id}")
    await expect(desk.locator("ol.timeline")).to_contain_text("Customer agreed on the phone")

    # A promise to pay, in ten days.
    await open_action(desk, "Record a promise to pay")
    promised = (date.today() + timedelta(days=10)).isoformat()
    await desk.get_by_label("Promised date").fill(promised)
    await desk.get_by_role("button", name="Record a promise to pay").click()
    await expect(desk.get_by_role("status")).to_have_text("Done.")
    await system.until(invoice_id, lambda view: view["stage"] == "promised")


async def test_the_plan_builder_refuses_a_sum_that_does_not_add_up(
    system: System, desk: Page
) -> None:
    invoice_id, _ = await started(system)
    await sign_in(desk, "agent")
    await desk.goto(f"/console/invoices/{invoice_id}")
    await open_action(desk, "Agree an instalment plan")
    # As it opens: three lines of the outstanding amount, to the cent, that add up.
    amounts = desk.locator("input[name='amount[]']")
    await expect(amounts).to_have_count(3)
    for i, amount in enumerate(["416.66", "416.66", "416.68"]):
        await expect(amounts.nth(i)).to_have_value(amount)
    await expect(desk.locator("[data-sum]")).to_have_text(
        "The instalments add up to the outstanding amount."
    )
    await desk.get_by_label("Number of instalments").fill("4")
    await desk.get_by_label("Number of instalments").press("Tab")
    lines = desk.locator("tbody[data-lines] tr")
    await expect(lines).to_have_count(4)
    await expect(amounts.nth(0)).to_have_value("312.50")
    await expect(desk.locator("[data-sum]")).to_have_text(
        "The instalments add up to the outstanding amount."
    )
    await checked(desk, "plan-builder")
    # One line changed: the sum check says so as you type...
    await amounts.nth(3).fill("300.00")
    await expect(desk.locator("[data-sum]")).to_contain_text("the difference is -€12.50")
    # ...and the journey refuses it too, inline, with nothing agreed.
    await desk.get_by_role("button", name="Agree an instalment plan").click()
    await expect(desk.locator("#act-plan .problem")).to_contain_text("the difference is")
    assert (await system.invoice(invoice_id))["plan"] is None
    await checked(desk, "plan-refused")
    await desk.locator("input[name='amount[]']").nth(3).fill("312.50")
    await desk.get_by_role("button", name="Agree an instalment plan").click()
    await expect(desk.get_by_role("status")).to_have_text("Done.")
    view = await system.until(invoice_id, lambda view: view["plan"] is not None)
    assert [i["amount"] for i in view["plan"]["instalments"]] == ["312.50"] * 4

    # A note on the customer's card, signed with the key's name.
    await desk.get_by_role("link", name="Bakkerij de Vries").click()
    await expect(desk.get_by_role("heading", name="Payment behaviour")).to_be_visible()
    await desk.get_by_role("button", name="Add a note").click()
    await expect(desk.locator("#note-error")).to_have_text(
        "Write something first: the note is empty."
    )
    await desk.get_by_label("Add a note").fill("Prefers a call after 14:00.")
    await desk.get_by_role("button", name="Add a note").click()
    await expect(desk.locator("ol.note-list li").first).to_contain_text("agent-key-2")
    await expect(desk.locator("ol.note-list li").first).to_contain_text("Prefers a call")
    await checked(desk, "customer")


async def test_an_admin_imports_a_csv_with_one_bad_row(
    system: System, desk: Page, tmp_path: Path
) -> None:
    ids = [new_id() for _ in range(3)]
    csv = tmp_path / "invoices.csv"
    write_csv(csv, ids, "BAD-ROW")
    await sign_in(desk, "admin")
    await go(desk, "Import")
    await checked(desk, "import")
    await desk.get_by_label("CSV file").set_input_files(csv)
    await desk.get_by_role("button", name="Import").click()
    await expect(desk.locator(".import-state")).to_have_text("Import finished.", timeout=60_000)
    await expect(desk.locator("dd.started")).to_have_text("3")
    await expect(desk.locator("ul.bad-rows")).to_have_text(
        "Line 3: amount: input should be a valid decimal"
    )
    await checked(desk, "import-done")
    for invoice_id in ids:
        assert (await system.invoice(invoice_id))["customer_id"] == f"C-{invoice_id}"
    # The same file again starts nothing new.
    await go(desk, "Import")
    await desk.get_by_label("CSV file").set_input_files(csv)
    await desk.get_by_role("button", name="Import").click()
    await expect(desk.locator(".import-state")).to_have_text("Import finished.", timeout=60_000)
    await expect(desk.locator("dd.started")).to_have_text("0")
    await expect(desk.locator("dd.existing")).to_have_text("3")


async def test_an_admin_edits_a_policy_into_a_new_version(system: System, desk: Page) -> None:
    steps: list[dict[str, Any]] = FAST_POLICY["steps"]  # type: ignore[assignment]
    version = await system.put_policy("console_edit", steps)
    await sign_in(desk, "admin")
    await desk.goto("/console/policies")
    await checked(desk, "policies")
    await desk.get_by_role("link", name="console_edit").click()
    await expect(desk.locator("table.ladder tbody tr")).to_have_count(4)
    await checked(desk, "policy")
    await desk.get_by_role("link", name="Edit into a new version").click()
    offset = desk.get_by_label("Step 2: When", exact=True)
    await offset.fill("three days")
    await desk.get_by_role("button", name="Save as a new version").click()
    await expect(desk.locator(".problem")).to_contain_text("step 2 (overdue_2) offset")
    # The wrong field is marked, and only that one.
    await expect(desk.get_by_label("Step 2: When", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(desk.locator("[aria-invalid=true]")).to_have_count(1)
    await checked(desk, "policy-edit-refused")
    await desk.get_by_label("Step 2: When", exact=True).fill("PT30M")
    await desk.get_by_role("button", name="Save as a new version").click()
    await expect(desk.get_by_role("status")).to_contain_text(f"Saved as version {version + 1}")
    assert (await system.get("/v1/policies/console_edit")).json()["steps"][1]["offset"] == "PT30M"
    await desk.get_by_role("button", name="Compare versions").click()
    change = desk.locator("table.diff tbody tr")
    await expect(change).to_have_count(1)
    await expect(change).to_contain_text("steps[2: overdue_2].offset")
    await expect(change.locator(".after")).to_have_text("PT30M")
    await checked(desk, "policy-diff")
