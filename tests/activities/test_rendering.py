"""Message templates: what a debtor reads, in English and Dutch, by email and by SMS."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from activities.rendering import (
    SHORT_LIMIT,
    TEMPLATE_DIR,
    Creditor,
    MessageContext,
    TemplateNotFound,
    TemplateSet,
    available_templates,
    render,
)
from workflows.models import NextStepNote
from workflows.policy import STANDARD_POLICY, Channel, Tone

SHIPPED = {
    "reminder_before_due": Tone.friendly,
    "overdue_1": Tone.friendly,
    "overdue_2": Tone.neutral,
    "overdue_3": Tone.firm,
    "final_notice": Tone.final,
    "thank_you": Tone.friendly,
    "dispute_review": Tone.neutral,
    "dispute_received": Tone.friendly,
    "promise_kept": Tone.friendly,
    "promise_broken": Tone.neutral,
    "arrangement_agreed": Tone.friendly,
    "instalment_reminder": Tone.friendly,
    "instalment_paid": Tone.friendly,
    "instalment_missed": Tone.neutral,
    "arrangement_lapsed": Tone.neutral,
}
NOT_CHASING = {
    "thank_you",
    "dispute_received",
    "arrangement_agreed",
    "instalment_reminder",
    "instalment_paid",
    "instalment_missed",
}
CHASING = [key for key in SHIPPED if key not in NOT_CHASING]
PAY = "https://pay.example.com/INV-2026-0042"
# 23:30 UTC on 4 January is already 5 January in Amsterdam: the debtor's own date is shown.
NEXT_AT = datetime(2027, 1, 4, 23, 30, tzinfo=UTC)

FACTS = {
    "en": {"outstanding": "€1,250.00", "due": "December 22, 2026", "next": "January 5, 2027"},
    "nl": {"outstanding": "€ 1.250,00", "due": "22 december 2026", "next": "5 januari 2027"},
}
NEXT_STEP = {
    "en": {
        "reminder": "we will send you another reminder on January 5, 2027.",
        "agent_call": "a member of our team will call you from January 5, 2027.",
        "hand_over": "we will pass it to a collection agency on January 5, 2027.",
    },
    "nl": {
        "reminder": "dan sturen we u op 5 januari 2027 een nieuwe herinnering.",
        "agent_call": "dan belt een van onze medewerkers u vanaf 5 januari 2027.",
        "hand_over": "dan dragen we de vordering op 5 januari 2027 over aan een incassobureau.",
    },
}


def context(**changes: Any) -> MessageContext:
    data: dict[str, Any] = {
        "customer_name": "Bakkerij de Vries",
        "invoice_id": "INV-2026-0042",
        "amount": Decimal("1500.00"),
        "outstanding": Decimal("1250.00"),
        "currency": "EUR",
        "due_on": date(2026, 12, 22),
        "payment_url": PAY,
        "next_step": NextStepNote(kind="reminder", at=NEXT_AT),
        "timezone": "Europe/Amsterdam",
        # What the journey and the instalment plan put in `extra` for their messages.
        "extra": {
            "outcome": "rejected",
            "promised_date": "2026-12-30",
            "instalment_number": "2",
            "instalment_count": "3",
            "instalment_amount": "400.00",
            "instalment_due_on": "2027-01-22",
            "grace_until": "2027-01-27T08:00:00+00:00",
            "paid_numbers": "1",
            "plan_schedule": "2026-12-22=400.00;2027-01-22=400.00;2027-02-22=450.00",
        },
    }
    data.update(changes)
    return MessageContext(**data)


def test_a_plan_confirmation_lists_every_instalment_in_the_debtors_language() -> None:
    email = render("arrangement_agreed", Tone.friendly, "nl", Channel.email, context())
    assert "- 22 december 2026: € 400,00\n- 22 januari 2027: € 400,00\n" in email.text
    assert "- 22 februari 2027: € 450,00" in email.text and PAY in email.text
    missed = render("instalment_missed", Tone.neutral, "en", Channel.sms, context())
    assert "Instalment 2" in missed.text and "January 27, 2027" in missed.text


def test_every_template_the_standard_policy_uses_is_shipped_in_english_and_dutch() -> None:
    templates = available_templates()
    used = {step.template for step in STANDARD_POLICY.steps if step.template}
    assert set(templates) >= {"en", "nl"}
    for locale in ("en", "nl"):
        assert templates[locale] >= used | set(SHIPPED)


@pytest.mark.parametrize("locale", ["en", "nl"])
@pytest.mark.parametrize("key", list(SHIPPED))
def test_every_template_renders_as_email_and_as_a_short_text(locale: str, key: str) -> None:
    email = render(key, SHIPPED[key], locale, Channel.email, context())
    assert email.subject and "INV-2026-0042" in email.subject
    assert email.text.startswith(("Dear ", "Beste ", "Geachte "))
    assert "Bakkerij de Vries" in email.text.splitlines()[0]
    assert email.html is not None and "<p>" in email.html
    assert "{" not in email.text + email.subject, "a placeholder was left unfilled"

    for channel in (Channel.sms, Channel.whatsapp):
        short = render(key, SHIPPED[key], locale, channel, context())
        assert short.subject is None and short.html is None
        assert len(short.text) <= SHORT_LIMIT
        assert "\n" not in short.text and "{" not in short.text
        assert "INV-2026-0042" in short.text


PORTAL = "https://collections.example.com/p/" + "t" * 43 + "?invoice=INV-2026-0042"
JANSEN = Creditor(name="Jansen B.V.", address="Damrak 1, Amsterdam", email="ar@jansen.example")


@pytest.mark.parametrize("locale", ["en", "nl"])
@pytest.mark.parametrize("key", list(SHIPPED))
def test_every_email_links_the_debtors_page_and_is_signed_by_the_company(
    locale: str, key: str
) -> None:
    email = render(
        key, SHIPPED[key], locale, Channel.email, context(portal_url=PORTAL, creditor=JANSEN)
    )
    assert PORTAL in email.text
    assert email.html is not None and f'<a href="{PORTAL}">' in email.html
    assert email.text.rstrip().endswith("Jansen B.V.\nDamrak 1, Amsterdam · ar@jansen.example")
    assert "accounts team" not in email.text and "debiteurenadministratie" not in email.text
    # Without a portal (no DUNWELL_PORTAL_SECRET) the paragraph is left out, nothing half-filled.
    bare = render(key, SHIPPED[key], locale, Channel.email, context(creditor=JANSEN))
    assert "/p/" not in bare.text and "online" not in bare.text.split("Jansen B.V.")[0][-200:]
    sms = render(key, SHIPPED[key], locale, Channel.sms, context(portal_url=PORTAL))
    assert len(sms.text) <= SHORT_LIMIT and sms.text.endswith(PORTAL.split("?")[0])
    assert "INV-2026-0042" in sms.text and (PAY in sms.text or key in NOT_CHASING)


@pytest.mark.parametrize("locale", ["en", "nl"])
@pytest.mark.parametrize("key", CHASING)
def test_a_chasing_message_states_invoice_amount_due_date_link_and_next_step(
    locale: str, key: str
) -> None:
    facts = FACTS[locale]
    email = render(key, SHIPPED[key], locale, Channel.email, context())
    for fact in ("INV-2026-0042", facts["outstanding"], facts["due"], PAY):
        assert fact in email.text
    assert NEXT_STEP[locale]["reminder"] in email.text
    assert email.html is not None and f'<a href="{PAY}">{PAY}</a>' in email.html
    plan = "payment plan" if locale == "en" else "betalingsregeling"
    assert plan in email.text, "every chasing email offers a payment plan"

    sms = render(key, SHIPPED[key], locale, Channel.sms, context())
    for fact in ("INV-2026-0042", facts["outstanding"], facts["due"], PAY):
        assert fact in sms.text
    assert f"{PAY}." not in sms.text, "a full stop glued to the link breaks it in some apps"


def test_dutch_messages_use_dutch_money_and_dates() -> None:
    message = render("overdue_1", Tone.friendly, "nl", Channel.email, context())
    assert "€ 1.250,00" in message.text
    assert "22 december 2026" in message.text
    assert message.subject == "Factuur INV-2026-0042: we hebben uw betaling nog niet ontvangen"
    assert "Dear" not in message.text and "€1,250.00" not in message.text


@pytest.mark.parametrize(
    ("currency", "outstanding", "written"),
    [
        ("RSD", "100.50", "RSD 100,50"),
        ("JPY", "12000", "JP¥ 12.000"),
        ("KWD", "10.125", "KWD 10,125"),
    ],
)
def test_a_message_states_the_amount_with_the_currencys_own_decimals(
    currency: str, outstanding: str, written: str
) -> None:
    """ISO 4217's decimals, as the API checks amounts: Babel alone wrote RSD 100.50 as RSD 100."""
    ctx = context(currency=currency, outstanding=Decimal(outstanding), amount=Decimal(outstanding))
    message = render("overdue_1", Tone.friendly, "nl", Channel.email, ctx)
    assert written in message.text
    assert f"{written}0" not in message.text and f"{written}," not in message.text


@pytest.mark.parametrize("locale", ["en", "nl"])
@pytest.mark.parametrize("kind", ["reminder", "agent_call", "hand_over"])
def test_the_next_step_is_named_with_its_date_in_the_debtors_time_zone(
    locale: str, kind: str
) -> None:
    note = NextStepNote(kind=kind, at=NEXT_AT)
    message = render("overdue_2", Tone.neutral, locale, Channel.email, context(next_step=note))
    assert NEXT_STEP[locale][kind] in message.text


def test_no_next_step_means_no_promise_about_one() -> None:
    message = render(
        "final_notice",
        Tone.final,
        "en",
        Channel.email,
        context(next_step=NextStepNote(kind="none")),
    )
    assert "reminder on" not in message.text
    assert "collection agency" not in message.text
    assert "will call you" not in message.text
    assert "This is our final notice" in message.text


def test_a_next_step_without_a_moment_is_still_named() -> None:
    note = NextStepNote(kind="hand_over", at=None)
    message = render("final_notice", Tone.final, "en", Channel.email, context(next_step=note))
    assert "we will pass it to a collection agency." in message.text


def test_the_tone_escalates_along_the_ladder() -> None:
    texts = {
        key: render(key, SHIPPED[key], "en", Channel.email, context())
        for key in ("overdue_1", "overdue_2", "overdue_3", "final_notice")
    }
    assert len({m.text for m in texts.values()}) == 4
    assert "slipped through" in texts["overdue_1"].text
    assert "without further delay" in texts["overdue_3"].text
    assert texts["final_notice"].subject == "Final notice: invoice INV-2026-0042"
    assert "final notice" in texts["final_notice"].text
    assert "slipped through" not in texts["final_notice"].text

    short_friendly = render("overdue_1", Tone.friendly, "nl", Channel.sms, context())
    short_final = render("final_notice", Tone.final, "nl", Channel.sms, context())
    assert short_final.text.startswith("LAATSTE AANMANING")
    assert short_friendly.text != short_final.text


def test_a_tone_a_template_is_not_written_in_falls_back_to_its_default_tone() -> None:
    asked = render("overdue_1", Tone.final, "en", Channel.email, context())
    default = render("overdue_1", Tone.friendly, "en", Channel.email, context())
    assert asked == default


@pytest.mark.parametrize(
    ("locale", "greeting"),
    [
        ("en", "Dear"),
        ("fr", "Dear"),
        ("de-DE", "Dear"),
        ("", "Dear"),
        ("nl", "Beste"),
        ("nl-NL", "Beste"),
        ("nl_BE", "Beste"),
        ("NL", "Beste"),
    ],
)
def test_the_locale_picks_the_language_and_unknown_ones_get_english(
    locale: str, greeting: str
) -> None:
    message = render("overdue_1", Tone.friendly, locale, Channel.email, context())
    assert message.text.startswith(greeting)


def test_a_regional_english_locale_formats_dates_its_own_way() -> None:
    message = render("overdue_1", Tone.friendly, "en-GB", Channel.email, context())
    assert "22 December 2026" in message.text
    assert "Dear" in message.text


def test_an_unknown_template_key_names_key_tone_and_locale() -> None:
    with pytest.raises(TemplateNotFound) as raised:
        render("overdue_9", Tone.firm, "nl-NL", Channel.email, context())
    assert isinstance(raised.value, LookupError)
    message = str(raised.value)
    assert "overdue_9" in message and "firm" in message and "nl-NL" in message
    assert "overdue_1" in message, "the error lists the templates that do exist"


@pytest.mark.parametrize(
    ("locale", "outcome", "says"),
    [
        ("en", "rejected", "The invoice is correct, so it stands and our reminders resume."),
        ("en", "adjusted", "We have corrected the amount."),
        ("nl", "rejected", "De factuur klopt en blijft staan; onze herinneringen worden hervat."),
        ("nl", "adjusted", "We hebben het bedrag gecorrigeerd."),
        ("en", "something-else", "Thank you for your patience."),
    ],
)
def test_a_dispute_review_says_what_was_decided(locale: str, outcome: str, says: str) -> None:
    ctx = context(extra={"outcome": outcome}, outstanding=Decimal("980.00"))
    email = render("dispute_review", Tone.neutral, locale, Channel.email, ctx)
    sms = render("dispute_review", Tone.neutral, locale, Channel.sms, ctx)
    assert says in email.text and says in sms.text
    amount = "€980.00" if locale == "en" else "€ 980,00"
    assert amount in email.text and amount in sms.text


def test_the_thank_you_asks_for_nothing() -> None:
    message = render("thank_you", Tone.friendly, "en", Channel.email, context())
    assert "Thank you" in message.text
    assert PAY not in message.text
    assert "reminder on" not in message.text


def test_debtor_data_is_escaped_in_html_and_never_expanded() -> None:
    ctx = context(customer_name="<b>Evil</b> & {invoice_id}")
    message = render("overdue_1", Tone.friendly, "en", Channel.email, ctx)
    assert message.html is not None
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; {invoice_id}" in message.html
    assert "<b>" not in message.html
    assert "Dear <b>Evil</b> & {invoice_id}," in message.text


def test_a_payment_link_that_is_not_http_is_shown_but_not_linked() -> None:
    ctx = context(payment_url="javascript:alert(1)")
    message = render("overdue_1", Tone.friendly, "en", Channel.email, ctx)
    assert message.html is not None
    assert "javascript:alert(1)" in message.html and "<a " not in message.html


def test_a_short_text_that_would_be_too_long_keeps_the_facts_and_the_link() -> None:
    long_link = "https://pay.example.com/" + "x" * 180
    sms = render("overdue_2", Tone.neutral, "nl", Channel.sms, context(payment_url=long_link))
    assert len(sms.text) <= SHORT_LIMIT
    for fact in ("INV-2026-0042", "€ 1.250,00", long_link):
        assert fact in sms.text


def test_other_currencies_are_formatted_too() -> None:
    ctx = context(currency="USD", outstanding=Decimal("99.5"))
    assert "$99.50" in render("overdue_1", Tone.friendly, "en", Channel.sms, ctx).text
    assert "US$ 99,50" in render("overdue_1", Tone.friendly, "nl", Channel.sms, ctx).text


# ---- the template files are checked when loaded --------------------------------------------


def _templates_with(tmp_path: Path, old: str, new: str) -> Path:
    source = (TEMPLATE_DIR / "en.toml").read_text(encoding="utf-8")
    assert old in source
    (tmp_path / "en.toml").write_text(source.replace(old, new, 1), encoding="utf-8")
    return tmp_path


def test_the_shipped_templates_load_cleanly() -> None:
    loaded = TemplateSet.load(TEMPLATE_DIR)
    assert loaded.available()["nl"] == set(SHIPPED)


def test_an_unknown_placeholder_is_refused_at_load(tmp_path: Path) -> None:
    directory = _templates_with(tmp_path, "Dear {customer_name},", "Dear {customer},")
    with pytest.raises(ValueError, match=r"unknown placeholder \{customer\}"):
        TemplateSet.load(directory)


def test_a_chasing_message_without_the_payment_link_is_refused_at_load(tmp_path: Path) -> None:
    directory = _templates_with(
        tmp_path, "You can pay online here: {payment_url}", "You can pay online."
    )
    with pytest.raises(ValueError, match=r"reminder_before_due.*must state \{payment_url\}"):
        TemplateSet.load(directory)


def test_a_template_without_its_default_tone_is_refused_at_load(tmp_path: Path) -> None:
    directory = _templates_with(tmp_path, 'default_tone = "firm"', 'default_tone = "final"')
    with pytest.raises(ValueError, match=r"overdue_3.*default tone final"):
        TemplateSet.load(directory)


def test_a_template_in_a_second_tone_is_used_for_that_tone(tmp_path: Path) -> None:
    source = (TEMPLATE_DIR / "en.toml").read_text(encoding="utf-8")
    source += (
        "\n[templates.overdue_1.firm]\n"
        'subject = "Pay invoice {invoice_id} now"\n'
        'email = "Invoice {invoice_id}, due {due_date}: pay {outstanding} at {payment_url}'
        '\\n\\n{next_step}\\n\\n{portal_line}\\n\\n{company_name}"\n'
        'short = "Pay {outstanding} for {invoice_id} at {payment_url}"\n'
    )
    (tmp_path / "en.toml").write_text(source, encoding="utf-8")
    templates = TemplateSet.load(tmp_path)
    firm = templates.render("overdue_1", Tone.firm, "en", Channel.email, context())
    friendly = templates.render("overdue_1", Tone.friendly, "en", Channel.email, context())
    assert firm.subject == "Pay invoice INV-2026-0042 now"
    assert friendly.subject == "Invoice INV-2026-0042: we have not received your payment yet"
