"""The console over HTTP: who may sign in, what a session cookie is like, forms refused without
their token, every page answering for a signed-in agent, and `dunwell import` against the API."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from api.console.texts import EVENTS, LABELS, PHRASES, TEXTS, VALUES
from api.console.view import Format, timeline_entries
from invoice_import import read_rows
from tests.api.conftest import KEYS, System, invoice_body, new_id
from workflows.models import TimelineEvent

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HERE = Path(__file__).parent


@asynccontextmanager
async def browser(system: System) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, like a fresh browser, on the system's API."""
    transport = httpx.ASGITransport(app=system.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dunwell") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get("/console/sign-in")
    token = CSRF.search(page.text)
    assert token, page.text
    return await client.post("/console/sign-in", data={"key": key, "csrf": token.group(1)})


async def started(
    system: System, due_in: float = 3600, policy: str = "fast"
) -> tuple[str, dict[str, Any]]:
    """A journey started through the API and recorded by its worker: (invoice id, its body)."""
    invoice_id = new_id()
    body = invoice_body(invoice_id, due_in=due_in, policy=policy)
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    for _ in range(300):
        if system.store.get_invoice(invoice_id) is not None:
            return invoice_id, body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker never recorded {invoice_id}")


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def test_both_languages_say_everything() -> None:
    assert set(TEXTS["en"]) == set(TEXTS["nl"])
    assert set(EVENTS["en"]) == set(EVENTS["nl"])
    assert set(VALUES["en"]) == set(VALUES["nl"])
    assert set(LABELS["en"]) == set(LABELS["nl"])
    assert set(PHRASES["en"]) == set(PHRASES["nl"])


def test_every_phrase_is_one_the_system_writes() -> None:
    """A phrase the workflows or activities no longer write would never be translated again:
    each is in their source as written, a `{name}` part as an f-string's field (one is a reason
    with " before the plan started")."""
    root = Path(__file__).parent.parent.parent
    source = "".join(
        path.read_text()
        for folder in ("workflows", "activities")
        for path in (root / folder).rglob("*.py")
    )
    for phrase in PHRASES["en"]:
        written = re.escape(phrase.removesuffix(" before the plan started"))
        # A `{name}` part is an f-string's field there, whatever its name.
        written = re.sub(r"\\\{\w+\\\}", r"\{[^}]+\}", written)
        assert re.search(f'f?"{written}"', source), phrase
    assert 'f"{reason} before the plan started"' in source


def test_timeline_sentences_say_words_and_leave_names_and_free_text_alone() -> None:
    """Tones, channels, statuses and "the debtor" in the page's language; a key's name, a reason
    and a note as they were written; a plan agreed to a moment (no day) still shows."""
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

    def event(kind: str, actor: str, **detail: Any) -> TimelineEvent:
        return TimelineEvent(key=f"k:{kind}", at=at, kind=kind, actor=actor, detail=detail)

    events = [
        event("payment", "agent-key-2", amount="10.00", reference="B-1"),
        event("dispute_opened", "debtor", reason="late"),
        event("delivery", "provider", channel="sms", status="delivered", template="overdue_1"),
        event(
            "arrangement",
            "agent-key-2",
            instalments=[{"due_on": None, "due_at": "2027-01-05T10:00:00+00:00", "amount": "50"}],
            replaces_earlier=True,
        ),
    ]
    request = Request({"type": "http", "query_string": b"lang=nl", "headers": []})
    entries = {e.sentence: dict(e.details) for e in timeline_entries(events, Format(request))}
    assert entries["agent-key-2 registreerde een betaling van 10.00."] == {"referentie": "B-1"}
    assert entries["De debiteur opende een betwisting."] == {"reden": "late"}
    assert "De provider meldde over het bericht per sms: bezorgd." in entries
    assert entries["agent-key-2 sprak een betalingsregeling af."] == {
        "termijnen": "5 jan 2027 10:00 UTC: 50",
        "vervangt een eerdere": "ja",
    }


NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "nl",
            {
                f"agent-key-2 registreerde een betaling van €{NBSP}400,00.": [],
                "agent-key-2 handelde de betwisting af: aangepast.": [
                    ("openstaand", f"€{NBSP}850,00"),
                    ("eerder openstaand", f"€{NBSP}1.250,00"),
                ],
                "agent-key-2 sprak een betalingsregeling af.": [
                    ("termijnen", f"5 jan 2027: €{NBSP}1.050,50")
                ],
                f"agent-key-2 registreerde een betaling van £{NBSP}10,00.": [],
            },
        ),
        (
            "en",
            {
                "agent-key-2 recorded a payment of €400.00.": [],
                "agent-key-2 resolved the dispute: adjusted.": [
                    ("outstanding", "€850.00"),
                    ("previous outstanding", "€1,250.00"),
                ],
                "agent-key-2 agreed an instalment plan.": [
                    ("instalments", "5 Jan 2027: €1,050.50")
                ],
                "agent-key-2 recorded a payment of £10.00.": [],
            },
        ),
    ],
)
def test_timeline_amounts_read_as_money_in_the_pages_language(
    lang: str, expected: dict[str, list[tuple[str, str]]]
) -> None:
    """A payment, a changed amount and a plan's instalments in the invoice's currency, written
    the page's way; on a customer's timeline each event in its own invoice's currency."""
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

    def event(kind: str, **detail: Any) -> TimelineEvent:
        return TimelineEvent(key=f"k:{kind}", at=at, kind=kind, actor="agent-key-2", detail=detail)

    events = [
        event("payment", amount="400.00"),
        event(
            "dispute_resolved",
            outcome="adjusted",
            outstanding="850.00",
            previous_outstanding="1250.00",
        ),
        event("arrangement", instalments=[{"due_on": "2027-01-05", "amount": "1050.50"}]),
        event("payment", amount="10.00"),
    ]
    request = Request({"type": "http", "query_string": f"lang={lang}".encode(), "headers": []})
    entries = timeline_entries(
        events, Format(request), ["A-1", "A-1", "A-1", "B-1"], {"A-1": "EUR", "B-1": "GBP"}
    )
    assert {e.sentence: e.details for e in entries} == expected


def test_timeline_says_the_systems_reasons_in_words_and_days_the_pages_way() -> None:
    """On a Dutch page, the reasons and notes the system wrote are Dutch (a message withdrawn
    says the stage it met, or the plan's outcome), what a person wrote stays as written (a
    reference that looks like an impossible day too), days and moments read the page's way,
    moments in UTC, a task's kind is said in words, and a missed instalment says which and how
    much."""
    at = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)

    def event(kind: str, actor: str = "system", **detail: Any) -> TimelineEvent:
        return TimelineEvent(key=f"k:{kind}", at=at, kind=kind, actor=actor, detail=detail)

    events = [
        event("journey_started", "admin-key-1", currency="EUR", due_on="2026-12-07"),
        event("closed", outcome="paid", reason="paid in full"),
        event("message", template="thank_you", note="local outbox: not delivered to anyone"),
        event("message_withdrawn", template="overdue_1", reason="disputed"),
        event("promise", "agent-key-2", promised_at="2026-12-20T10:00:00+01:00"),
        event("dispute_opened", "debtor", reason="paid in full, see the bank"),
        event("agent_task", task="review_dispute", title="Review the dispute"),
        event("instalment_missed", number=2, amount="400.00"),
        event("arrangement_ended", outcome="defaulted", reason="instalment 2 missed"),
        event("message_withdrawn", template="instalment_reminder", reason="superseded"),
        event("payment", "agent-key-2", amount="10.00", reference="2026-02-30"),
    ]
    request = Request({"type": "http", "query_string": b"lang=nl", "headers": []})
    entries = timeline_entries(events, Format(request), currency="EUR")
    details = [dict(e.details) for e in reversed(entries)]
    assert details == [
        {"valuta": "EUR", "vervaldatum": "7 dec 2026"},
        {"reden": "volledig betaald"},
        {"sjabloon": "thank_you", "notitie": "lokale outbox: aan niemand bezorgd"},
        {"sjabloon": "overdue_1", "reden": "betwist"},
        {"beloofd op": "20 dec 2026 09:00 UTC"},
        {"reden": "paid in full, see the bank"},
        {"taak": "betwisting beoordelen"},
        {},
        {"reden": "termijn 2 is gemist"},
        {"sjabloon": "instalment_reminder", "reden": "vervangen"},
        {"referentie": "2026-02-30"},  # a reference, whatever it looks like
    ]
    sentences = [e.sentence for e in reversed(entries)]
    assert sentences[7] == f"Termijn 2 is gemist (€{NBSP}400,00 onbetaald)."


@pytest.mark.parametrize(("lang", "said"), [("nl", "1.234,5"), ("en", "1,234.5")])
def test_figures_have_the_pages_decimal_sign(lang: str, said: str) -> None:
    """A customer's average days late, as a Dutch or an English reader writes a number."""
    request = Request({"type": "http", "query_string": f"lang={lang}".encode(), "headers": []})
    assert Format(request).number(1234.5) == said


async def test_the_console_has_its_icon_and_the_debtors_page_asks_for_none(system: System) -> None:
    """The console names its own icon, which is there; the debtor's page (the creditor's, not
    ours) names an empty one, so no browser asks for a /favicon.ico that is not there."""
    page = (await system.api.get("/console/sign-in")).text
    found = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert found, page
    icon = await system.api.get(found.group(1))
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    portal = (await system.api.get("/p/not-a-link")).text
    assert '<link rel="icon" href="data:,">' in portal


async def test_an_agent_signs_in_with_a_strict_cookie_and_out_again(system: System) -> None:
    async with browser(system) as client:
        assert (await client.get("/console")).headers["location"].startswith("/console/sign-in")
        answer = await sign_in(client, KEYS["agent"])
        assert answer.status_code == 303 and answer.headers["location"] == "/console"
        cookie = answer.headers["set-cookie"]
        assert "dunwell_console=" in cookie and "HttpOnly" in cookie
        assert "SameSite=strict" in cookie and "Path=/console" in cookie
        work = await client.get("/console")
        assert work.status_code == 200
        assert "Signed in as agent-key-2 (agent)" in work.text
        assert work.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in work.headers["content-security-policy"]
        out = await client.post("/console/sign-out", data={"csrf": csrf_of(work)})
        assert out.headers["location"] == "/console/sign-in?signed_out=1"
        again = await client.get("/console")
        assert again.status_code == 303, "the session ended with the sign-out"


async def test_an_integration_key_cannot_sign_in(system: System) -> None:
    async with browser(system) as client:
        answer = await sign_in(client, KEYS["integration"])
        assert answer.status_code == 403
        assert "integration key is for billing systems" in answer.text
        assert "dunwell_console=" not in answer.headers.get("set-cookie", "")
        assert (await client.get("/console")).status_code == 303


async def test_a_wrong_key_or_a_sign_in_without_its_token_is_refused(system: System) -> None:
    async with browser(system) as client:
        wrong = await sign_in(client, "not-a-key-0123456789abcdef")
        assert wrong.status_code == 401
        assert "That key is not valid or has been revoked" in wrong.text
        assert "dunwell_console=" not in wrong.headers.get("set-cookie", "")
        forged = await client.post("/console/sign-in", data={"key": KEYS["agent"]})
        assert forged.status_code == 403 and "dunwell_console=" not in str(forged.headers)
        assert "This form had expired" in forged.text
        assert (await client.get("/console")).status_code == 303  # still signed out


async def test_a_form_without_its_token_changes_nothing(system: System) -> None:
    invoice_id, body = await started(system)
    customer = body["customer"]["id"]
    async with browser(system) as client:
        await sign_in(client, KEYS["agent"])
        card = await client.get(f"/console/customers/{customer}")
        assert card.status_code == 200
        for token in ({}, {"csrf": "forged"}):
            refused = await client.post(
                f"/console/customers/{customer}/notes", data={"body": "sneaky", **token}
            )
            assert refused.status_code == 403
            assert "This form had expired" in refused.text
            refused = await client.post(
                f"/console/invoices/{invoice_id}/act/dispute", data={"reason": "x", **token}
            )
            assert refused.status_code == 403
        assert system.store.notes(customer) == []
        assert (await system.invoice(invoice_id))["stage"] == "scheduled"
        # With its token, the same note is kept, signed with the key's name.
        kept = await client.post(
            f"/console/customers/{customer}/notes", data={"body": "fine", "csrf": csrf_of(card)}
        )
        assert kept.status_code == 303
        assert [(n.author, n.body) for n in system.store.notes(customer)] == [
            ("agent-key-2", "fine")
        ]


async def test_every_page_answers_for_an_agent_and_import_needs_an_admin(system: System) -> None:
    invoice_id, body = await started(system)
    async with browser(system) as client:
        await sign_in(client, KEYS["agent"])
        for path, expected in (
            ("/console", "Work list"),
            ("/console/invoices?state=all", invoice_id),
            (f"/console/invoices/{invoice_id}", "The journey started"),
            (f"/console/customers/{body['customer']['id']}", "Payment behaviour"),
            ("/console/policies", "standard"),
            ("/console/policies/standard", "Ladder"),
            ("/console/invoices?lang=nl", "Facturen"),
        ):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert expected in page.text, path
        assert (await client.get("/console/invoices/NO-SUCH")).status_code == 404
        assert (await client.get("/console/import")).status_code == 403
        assert (await client.get("/console/policies/standard/edit")).status_code == 403


async def test_the_timeline_and_the_plan_are_told_in_the_pages_language(system: System) -> None:
    """Tones, channels, statuses, who acted and an event's fields in words, not as identifiers."""
    invoice_id, _ = await started(system)
    days = [date.today() + timedelta(days=n) for n in (20, 50)]
    body = {"instalments": [{"due_on": d.isoformat(), "amount": "625.00"} for d in days]}
    agreed = await system.post(f"/v1/invoices/{invoice_id}/arrangements", body)
    assert agreed.status_code == 200, agreed.text
    await system.until(
        invoice_id,
        lambda v: any(e["detail"].get("template") == "arrangement_agreed" for e in v["timeline"]),
    )
    async with browser(system) as client:
        await sign_in(client, KEYS["agent"])
        dutch = html.unescape((await client.get(f"/console/invoices/{invoice_id}?lang=nl")).text)
        english = html.unescape((await client.get(f"/console/invoices/{invoice_id}?lang=en")).text)
    assert "Een vriendelijk bericht ging uit per e-mail: verstuurd." in dutch
    assert "A friendly message went out by email: sent." in english
    assert "Regeling 1: loopt" in dutch and "Plan 1: running" in english
    # The plan's instalments as days and amounts; nothing left empty ("None") on the line.
    assert f"termijnen: {days[0].day} " in dutch and f"instalments: {days[0].day} " in english
    assert "sjabloon: arrangement_agreed" in dutch
    assert "None" not in dutch and "due_at" not in dutch
    assert "toon friendly" not in dutch


async def test_the_import_page_takes_a_file_larger_than_an_api_request(system: System) -> None:
    """Thousands of rows are more than DUNWELL_API_MAX_BODY_BYTES; the page still reads them all
    (every row here is bad, so nothing starts) and names each bad line."""
    header = "invoice_id,amount,currency,issued_on,due_on,payment_url,customer_id,customer_name"
    rows = [
        f"BIG-{n:05d},lots,EUR,2030-12-15,2031-01-15,https://pay.example.com/{'x' * 60},C-{n},"
        f"Customer {n}"
        for n in range(3000)
    ]
    data = "\n".join([header, *rows]).encode()
    assert len(data) > system.settings.api_max_body_bytes
    async with browser(system) as client:
        await sign_in(client, KEYS["admin"])
        form = await client.get("/console/import")
        sent = await client.post(
            "/console/import",
            data={"csrf": csrf_of(form)},
            files={"file": ("big.csv", data, "text/csv")},
        )
        assert sent.status_code == 303, sent.text[:500]
        for _ in range(100):
            page = await client.get(sent.headers["location"])
            if "Import finished." in page.text:
                break
            await asyncio.sleep(0.1)
        assert "3000 of 3000 rows" in page.text
        assert "Line 2: amount: input should be a valid decimal" in page.text
        # The first 500 bad lines are listed, and the page says how many more there are.
        assert "Line 501: amount" in page.text and "Line 502:" not in page.text
        assert "and 2500 more bad lines" in page.text


async def test_odd_input_gets_the_console_page_not_an_error(system: System) -> None:
    """What a filter, a pager or a hand-edited form can send is answered with a page."""
    invoice_id, _ = await started(system)
    async with browser(system) as client:
        await sign_in(client, KEYS["agent"])
        # The stage filter's "All" and the pager's links send stage= (empty).
        listed = await client.get("/console/invoices?state=all&stage=&q=&customer=&page=1")
        assert listed.status_code == 200 and invoice_id in listed.text, listed.text[:300]
        unknown = await client.get("/console/invoices?state=all&stage=nonsense")
        assert unknown.status_code == 200
        # A hand-edited page number: a page that says what it could not read (the API's own
        # routes keep answering problem+json).
        edited = await client.get("/console/invoices?page=abc")
        assert edited.status_code == 422
        assert "not one the console knows how to read (page:" in edited.text, edited.text[:400]
        api = await system.api.get("/v1/tasks?limit=abc", headers=system.headers("agent"))
        assert api.status_code == 422
        assert api.headers["content-type"] == "application/problem+json"
        page = await client.get(f"/console/invoices/{invoice_id}")
        token = csrf_of(page)
        # The plan builder's split, asked for dates past the year 9999 or with two counts.
        for odd in (
            {"count": "120", "every": "99999999", "first_due": "9990-01-01"},
            {"count": ["2", "3"], "every": "30", "first_due": "2031-01-01"},
        ):
            split = await client.post(
                f"/console/invoices/{invoice_id}/act/plan",
                data={"csrf": token, "split": "1", **odd},
            )
            assert split.status_code == 422, split.text[:300]
            assert split.headers["content-type"].startswith("text/html")
            assert "give a date, a count and a number of days" in split.text
            assert 'id="act-plan" open' in split.text  # the builder stays open with its refusal
        # Another action refused (a dispute without its reason): its form opens, not the builder.
        refused = await client.post(
            f"/console/invoices/{invoice_id}/act/dispute", data={"csrf": token, "reason": ""}
        )
        assert refused.status_code == 422, refused.text[:300]
        assert 'id="act-dispute" open' in refused.text
        assert 'id="act-plan" open' not in refused.text
        # Revoking the link of an invoice that does not exist: the console's notice page.
        gone = await client.post("/console/invoices/NO-SUCH-1/act/revoke", data={"csrf": token})
        assert gone.status_code == 404
        assert gone.headers["content-type"].startswith("text/html")
        # An import's progress is an admin's page, as its upload is.
        job = await client.get("/console/import/some-job")
        assert job.status_code == 403 and "needs an admin key" in job.text


def write_csv(path: Path, ids: list[str], bad_line_id: str) -> None:
    """Good rows for `ids`, and one bad row (an amount that is not money) between them."""
    due = "2031-01-15"
    lines = [
        "invoice_id,amount,currency,issued_on,due_on,payment_url,policy,customer_id,"
        "customer_name,email,phone,locale,timezone,country,kind,preferred_channel"
    ]
    for number, invoice_id in enumerate(ids):
        if number == 1:
            lines.append(
                f"{bad_line_id},twelve,EUR,2030-12-15,{due},https://pay.example.com/x,fast,"
                f"C-{bad_line_id},Bad Row BV,bad@example.com,,en,UTC,NL,business,"
            )
        lines.append(
            f"{invoice_id},125.50,EUR,2030-12-15,{due},https://pay.example.com/{invoice_id},"
            f"fast,C-{invoice_id},Import BV,ap@import.example,+31612345678,nl,"
            "Europe/Amsterdam,NL,business,email"
        )
    path.write_text("\n".join(lines) + "\n")


def test_the_example_file_reads_without_a_bad_row() -> None:
    example = HERE.parents[1] / "api" / "console" / "static" / "example-invoices.csv"
    rows = read_rows(example.read_bytes())
    assert len(rows) == 3 and all(r.error is None for r in rows), rows


def test_a_bad_row_is_named_by_its_line() -> None:
    rows = read_rows(
        "invoice_id,amount,currency,issued_on,due_on,payment_url,customer_id,customer_name,email\n"
        "A-1,10.00,EUR,2030-01-01,2030-02-01,https://p.example/a,C-1,A,a@example.com\n"
        "A-2,10.001,EUR,2030-01-01,2030-02-01,https://p.example/a,C-1,A,a@example.com\n"
        "A-3,10.00,EUR,2030-01-01,2030-02-01,https://p.example/a,C-1,A,\n"
    )
    assert [r.line for r in rows] == [2, 3, 4]
    assert rows[0].error is None
    assert rows[1].error is not None
    assert "more decimals than EUR allows" in rows[1].error, rows[1].error
    assert rows[2].error is not None and "email or a phone" in rows[2].error, rows[2].error


async def test_dunwell_import_starts_good_rows_once_and_names_the_bad_one(
    system: System, served: str, tmp_path: Path
) -> None:
    ids = [new_id() for _ in range(3)]
    csv = tmp_path / "invoices.csv"
    write_csv(csv, ids, "BAD-ROW")
    env = {
        "DUNWELL_API_URL": served,
        "DUNWELL_API_KEY": KEYS["integration"],
        "DUNWELL_HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", "import", str(csv)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=HERE.parents[1],
        )

    first = await asyncio.to_thread(run)
    assert first.returncode == 1, first.stderr
    assert "line 3: amount" in first.stdout, first.stdout
    assert "3 started, 0 already started, 1 bad, of 4 rows" in first.stdout
    assert "4/4 rows" in first.stderr, "the progress bar reached the end"
    for invoice_id in ids:
        assert (await system.invoice(invoice_id))["policy"] == "fast"

    second = await asyncio.to_thread(run)
    assert second.returncode == 1
    assert "0 started, 3 already started, 1 bad, of 4 rows" in second.stdout

    csv.write_text("\n".join(csv.read_text().splitlines()[:2]) + "\n")  # the good first row only
    good = await asyncio.to_thread(run)
    assert good.returncode == 0, good.stdout
