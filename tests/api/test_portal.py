"""The debtor's page over HTTP: the personal link every message carries, what the page shows (and
hides), and the same plain answer for every kind of bad link. Browser tests: test_portal_browser."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest

from api.portal.security import HideLinks
from db.models import InvoiceRow
from portal_links import token_hash
from tests.api.conftest import System, invoice_body, new_id

LINK = re.compile(r"https://collections\.example\.com(/p/[A-Za-z0-9_-]{43})\?invoice=([\w-]+)")
ONE_EMAIL: list[dict[str, Any]] = [
    {"name": "overdue_1", "offset": "PT0S", "tone": "friendly", "channels": ["email"],
     "template": "overdue_1"},
    {"name": "final_notice", "offset": "PT1H", "tone": "final", "channels": ["email", "sms"],
     "template": "final_notice"},
    {"name": "hand_over", "offset": "PT2H", "action": "hand_over"},
]  # fmt: skip


def text(response: Any) -> str:
    """The page's HTML with Babel's no-break spaces as plain ones ("€ 1.250,00")."""
    return str(response.text).replace("\xa0", " ").replace("\u202f", " ")


async def first_message(
    system: System, policy: str = "portal", **customer: Any
) -> tuple[str, dict[str, Any]]:
    """Start a journey (on a one-email ladder unless told); its first message's personal link
    (path) and its view."""
    if policy == "portal":
        await system.put_policy("portal", ONE_EMAIL)
    invoice_id = new_id()
    body = invoice_body(invoice_id, policy=policy, **customer)
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    view = await system.until(
        invoice_id, lambda v: any(e["kind"] == "message" for e in v["timeline"])
    )
    [message] = system.store.list_messages(invoice_id)
    assert message.body is not None
    found = LINK.search(message.body)
    assert found, f"no personal link in the message: {message.body}"
    assert found.group(2) == invoice_id
    return found.group(0).removeprefix("https://collections.example.com"), view


async def test_every_message_links_the_debtor_page_signed_by_the_company(system: System) -> None:
    link, view = await first_message(system)
    [message] = system.store.list_messages(view["invoice_id"])
    assert message.body is not None
    assert "Jansen Groothandel B.V." in message.body
    assert "Damrak 1, 1012 LG Amsterdam · debiteuren@jansen.example" in message.body
    # Only the token's hash is stored; the page opens with the token itself.
    assert link.split("/p/")[1].split("?")[0] not in str(system.store.customer_invoices)
    page = await system.api.get(link)
    assert page.status_code == 200, page.text
    html = text(page)
    assert f"Factuur {view['invoice_id']}" in html
    assert "€ 1.250,00" in html  # Dutch money format: the customer's locale is nl
    assert "Jansen Groothandel B.V." in html
    # What happens next, in words: the final notice an hour after the due moment.
    assert "een herinnering per e-mail en sms" in html
    # The message sent, with its text.
    assert message.subject is not None and message.subject in html
    # Nothing internal: no actors, no agent tasks, no API names.
    for internal in ("integration", "agent_task", "journey_started", "actor"):
        assert internal not in html


async def test_the_page_shows_payments_and_switches_language(system: System) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    paid = await system.post(
        f"/v1/invoices/{invoice_id}/payments",
        {"amount": "250.00", "reference": f"bank-{invoice_id}"},
        role="integration",
    )
    assert paid.status_code == 200, paid.text
    html = text(await system.api.get(link))
    assert "€ 250,00" in html and "€ 1.000,00" in html  # received, and still outstanding
    english = await system.api.get(link + "&lang=en")
    assert f"Invoice {invoice_id}" in english.text and "€1,000.00" in text(english)
    # The choice is remembered for the next visit.
    assert "dunwell_lang=en" in english.headers["set-cookie"]
    again = await system.api.get(link)  # the client sends the cookie back
    assert f"Invoice {invoice_id}" in again.text


async def test_wrong_revoked_and_expired_links_get_the_same_plain_page(system: System) -> None:
    link, view = await first_message(system)
    wrong = await system.api.get(f"/p/{secrets.token_urlsafe(32)}")
    garbage = await system.api.get("/p/not-a-token")
    assert wrong.status_code == garbage.status_code == 404
    assert "Deze link is niet meer geldig" in wrong.text or "no longer valid" in wrong.text

    customer_id = view["customer_id"]
    revoke = await system.post(f"/v1/customers/{customer_id}/portal-link/revoke", {})
    assert revoke.status_code == 200 and revoke.json()["revoked"] is True
    revoked = await system.api.get(link)
    assert revoked.status_code == 404
    assert revoked.text == wrong.text  # no way to tell a revoked link from a wrong one

    # The next link differs and works.
    fresh = await system.get(f"/v1/customers/{customer_id}/portal-link")
    assert fresh.status_code == 200, fresh.text
    path = fresh.json()["url"].removeprefix("https://collections.example.com")
    assert path.split("?")[0] != link.split("?")[0]
    assert (await system.api.get(path)).status_code == 200

    # Closed long ago (past the policy's portal_link_valid_for): the link has expired.
    cancel = await system.post(f"/v1/invoices/{view['invoice_id']}/cancel", {"reason": "error"})
    assert cancel.status_code == 200, cancel.text
    await system.until(view["invoice_id"], lambda v: v["outcome"] == "cancelled")
    assert (await system.api.get(path)).status_code == 200  # closed just now: still readable
    with system.store.sessions.begin() as session:
        row = session.get(InvoiceRow, view["invoice_id"])
        assert row is not None
        row.updated_at -= timedelta(days=91)
    expired = await system.api.get(path)
    assert expired.status_code == 404 and expired.text == wrong.text


async def test_page_headers_cookie_and_logs_keep_the_link_safe(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    link, _ = await first_message(system)
    page = await system.api.get(link, headers={"X-Forwarded-Proto": "https"})
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    # An access log line names the page, never the token.
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s" %d',
        ("127.0.0.1", "GET", link, 200), None,
    )  # fmt: skip
    HideLinks().filter(record)
    token = link.split("/p/")[1].split("?")[0]
    assert token not in record.getMessage() and "/p/…" in record.getMessage()
    assert token_hash(token) != token


async def test_too_many_requests_on_one_link_are_refused(system: System) -> None:
    link, _ = await first_message(system)
    limit = system.settings.portal_requests_per_minute
    answers = [(await system.api.get(link)).status_code for _ in range(limit + 1)]
    assert answers[:limit] == [200] * limit
    assert answers[-1] == 429


async def test_a_forged_or_missing_form_token_changes_nothing(system: System) -> None:
    link, view = await first_message(system)
    await system.api.get(link)  # a session cookie
    action = link.split("?")[0] + "/dispute"
    for token in ("", "0" * 32, "é" * 32):  # none, wrong, and not even ASCII
        form = {"csrf": token, "invoice": view["invoice_id"], "reason": "other"}
        answer = await system.api.post(action, data=form)
        assert answer.status_code == 403, answer.text
    assert (await system.invoice(view["invoice_id"]))["stage"] != "disputed"
