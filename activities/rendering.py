"""Messages to debtors: templates per key, tone and locale, rendered for email, SMS or WhatsApp.

The templates are data (`activities/templates/<locale>.toml`), checked when they are loaded: an
unknown placeholder, a missing default tone or a chasing message that forgets to state the
invoice number, the amount outstanding, the due date, the payment link or the next step is an
error at load, never a crash (or a half-filled message) while sending. Money and dates are
formatted by Babel for the debtor's locale.
"""

from __future__ import annotations

import copy
import html
import re
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import NumberPattern, parse_pattern
from pydantic import BaseModel, ConfigDict, Field

from activities.catalogue import (
    ANY,
    Catalogue,
    Variant,
    parse_catalogue,
)
from settings import Settings
from workflows.common import minor_units
from workflows.models import NextStepNote
from workflows.policy import Channel, Tone

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_LOCALE = "en"
SHORT_LIMIT = 320
"""About two SMS segments; a longer short text falls back to the locale's `short_fallback`."""


class TemplateNotFound(LookupError):
    """No template with this key, in any tone, for this locale (or in English)."""

    def __init__(self, key: str, tone: Tone | str, locale: str, known: set[str]) -> None:
        self.key = key
        self.tone = str(tone)
        self.locale = locale
        super().__init__(
            f"no message template {key!r} (tone {self.tone}, locale {locale!r}); "
            f"known templates: {', '.join(sorted(known)) or 'none'}"
        )


class Creditor(BaseModel):
    """Who is writing: the company's name and contact details (settings), signing every email."""

    name: str = "The accounts team"
    address: str = ""
    email: str = ""
    phone: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Creditor:
        return cls(
            name=settings.company_name,
            address=settings.company_address,
            email=settings.company_email,
            phone=settings.company_phone,
        )

    def contact(self) -> str:
        return " · ".join(part for part in (self.address, self.email, self.phone) if part)


class MessageContext(BaseModel):
    """The facts a message states, as the journey knows them when it sends."""

    customer_name: str
    invoice_id: str
    amount: Decimal
    outstanding: Decimal
    currency: str
    due_on: date
    payment_url: str
    next_step: NextStepNote = Field(default_factory=lambda: NextStepNote(kind="none"))
    timezone: str = "UTC"
    extra: dict[str, str] = Field(default_factory=dict)
    portal_url: str = ""
    """The debtor's personal page; without one, emails leave out the paragraph about it."""
    creditor: Creditor = Field(default_factory=Creditor)


class RenderedMessage(BaseModel):
    """Email has a subject, text and HTML; SMS and WhatsApp a short text only."""

    model_config = ConfigDict(frozen=True)

    subject: str | None = None
    text: str
    html: str | None = None
    reply_to: str | None = None
    """The journey's own reply address (email), so that a reply finds its invoice."""


# ---- the catalogue -----------------------------------------------------------------------------
class TemplateSet:
    """Every locale's templates, loaded and checked once."""

    def __init__(self, catalogues: dict[str, Catalogue]) -> None:
        if DEFAULT_LOCALE not in catalogues:
            raise ValueError(f"templates for the default locale {DEFAULT_LOCALE!r} are missing")
        self._catalogues = catalogues

    @classmethod
    def load(cls, directory: Path = TEMPLATE_DIR) -> TemplateSet:
        """Read `<locale>.toml` files; raises ValueError naming the file and the problem."""
        catalogues = {}
        for path in sorted(directory.glob("*.toml")):
            with path.open("rb") as f:
                try:
                    data = tomllib.load(f)
                except tomllib.TOMLDecodeError as exc:
                    raise ValueError(f"{path.name}: {exc}") from exc
            catalogue = parse_catalogue(path.stem, data, path.name)
            catalogues[catalogue.locale] = catalogue
        return cls(catalogues)

    def available(self) -> dict[str, set[str]]:
        """Locale -> template keys."""
        return {loc: set(c.templates) for loc, c in self._catalogues.items()}

    def locale_for(self, locale: str) -> str:
        """The catalogue for a debtor's locale: "nl", "nl-NL", "nl_BE" -> "nl"; unknown -> "en"."""
        language = locale.strip().replace("-", "_").split("_")[0].lower()
        return language if language in self._catalogues else DEFAULT_LOCALE

    def render(
        self, template: str, tone: Tone, locale: str, channel: Channel, ctx: MessageContext
    ) -> RenderedMessage:
        catalogue = self._catalogues[self.locale_for(locale)]
        found = catalogue.templates.get(template)
        if found is None:
            # A key only some locales have still reaches the debtor, in English.
            catalogue = self._catalogues[DEFAULT_LOCALE]
            found = catalogue.templates.get(template)
        if found is None:
            raise TemplateNotFound(template, tone, locale, set(catalogue.templates))
        variant = found.variant(Tone(tone))
        values = _values(catalogue, _babel_locale(locale, catalogue.locale), variant, ctx)

        if channel == Channel.email:
            paragraphs = _paragraphs(variant.email.format_map(values))
            subject = _one_line(variant.subject.format_map(values))
            return RenderedMessage(
                subject=subject,
                text="\n\n".join(paragraphs) + "\n",
                html=_html(
                    paragraphs, subject, (ctx.payment_url, values["portal_url"]), catalogue.locale
                ),
            )
        fallback = catalogue.phrases["short_fallback"]
        # Longest first: the template's text, then the bare facts with the next step, then the
        # bare facts alone (sent even when a very long payment link makes it exceed the limit).
        # With a personal page, each ends with its link, and the link outranks the template's
        # own wording: every message carries it.
        page = " " + catalogue.phrases["short_portal"] if ctx.portal_url else ""
        # Texts link the page itself (shorter); it lists every open invoice anyway.
        values = _Values({**values, "portal_url": ctx.portal_url.split("?", 1)[0]})
        candidates = [variant.short, fallback + " {next_step}", fallback]
        if page:
            candidates = [c + page for c in candidates] + candidates
        texts = [_one_line(c.format_map(values)) for c in candidates]
        text = next((t for t in texts if len(t) <= SHORT_LIMIT), texts[-1])
        return RenderedMessage(text=text)


@cache
def default_templates() -> TemplateSet:
    """The shipped templates (loaded once per process)."""
    return TemplateSet.load(TEMPLATE_DIR)


def render(
    template: str, tone: Tone, locale: str, channel: Channel, ctx: MessageContext
) -> RenderedMessage:
    """Render a shipped template; unknown key -> TemplateNotFound, missing tone -> default tone."""
    return default_templates().render(template, tone, locale, channel, ctx)


def available_templates() -> dict[str, set[str]]:
    """Locale -> the template keys shipped for it (a policy step's template must exist)."""
    return default_templates().available()


# ---- filling in ----------------------------------------------------------------------------


class _Values(dict[str, str]):
    """Placeholders are checked at load; should one slip through, it stays visible, never raises."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _values(
    catalogue: Catalogue, babel_locale: str, variant: Variant, ctx: MessageContext
) -> _Values:
    values = _Values(
        customer_name=ctx.customer_name,
        invoice_id=ctx.invoice_id,
        amount=_money(ctx.amount, ctx.currency, babel_locale),
        outstanding=_money(ctx.outstanding, ctx.currency, babel_locale),
        due_date=format_date(ctx.due_on, format="long", locale=babel_locale),
        payment_url=ctx.payment_url,
        portal_url=ctx.portal_url,
        company_name=ctx.creditor.name,
        company_contact=ctx.creditor.contact(),
    )
    values["next_step"] = _next_step(catalogue, babel_locale, ctx)
    values["portal_line"] = (
        catalogue.phrases["portal_line"].format_map(values) if ctx.portal_url else ""
    )
    values.update(_plan_values(babel_locale, ctx))
    for name, options in variant.choices.items():
        chosen = options.get(ctx.extra.get(name, ""), options.get(ANY, ""))
        values[name] = chosen.format_map(values)
    return values


def _plan_values(babel_locale: str, ctx: MessageContext) -> dict[str, str]:
    """Promise and plan facts from `extra`, formatted for the debtor's locale."""
    extra = ctx.extra

    def day(value: str) -> str:
        return format_date(date.fromisoformat(value), format="long", locale=babel_locale)

    names = ("instalment_number", "instalment_count", "paid_numbers")
    values = {k: extra[k] for k in names if k in extra}
    if "promised_date" in extra:
        values["promised_date"] = day(extra["promised_date"])
    if "instalment_amount" in extra:
        amount = Decimal(extra["instalment_amount"])
        values["instalment_amount"] = _money(amount, ctx.currency, babel_locale)
    if "instalment_due_on" in extra:
        values["instalment_due_date"] = day(extra["instalment_due_on"])
    if "grace_until" in extra:
        grace = _in_zone(datetime.fromisoformat(extra["grace_until"]), ctx.timezone)
        values["grace_date"] = format_date(grace.date(), format="long", locale=babel_locale)
    if "plan_schedule" in extra:
        lines = []
        for entry in extra["plan_schedule"].split(";"):
            due_on, _, figure = entry.partition("=")
            lines.append(f"- {day(due_on)}: {_money(Decimal(figure), ctx.currency, babel_locale)}")
        values["plan_schedule"] = "\n".join(lines)
        first_on, _, first_amount = extra["plan_schedule"].split(";")[0].partition("=")
        values.setdefault("instalment_due_date", day(first_on))
        values.setdefault(
            "instalment_amount", _money(Decimal(first_amount), ctx.currency, babel_locale)
        )
    return values


def money_text(amount: Decimal, currency: str, babel_locale: str) -> str:
    """`amount` as `babel_locale` writes money, with exactly the currency's decimals from the one
    precision table (`workflows.common.minor_units`). Babel's own table would round RSD 100.50
    to "RSD 100" and disagrees with ISO 4217 on a few more currencies."""
    pattern = _currency_pattern(babel_locale, minor_units(currency))
    return pattern.apply(amount, babel_locale, currency=currency.upper(), currency_digits=False)


@cache
def _currency_pattern(babel_locale: str, digits: int) -> NumberPattern:
    pattern = copy.copy(parse_pattern(Locale.parse(babel_locale).currency_formats["standard"]))
    pattern.frac_prec = (digits, digits)
    return pattern


def _money(amount: Decimal, currency: str, babel_locale: str) -> str:
    # Plain spaces: Babel's no-break spaces would push an SMS out of the GSM alphabet.
    formatted = money_text(amount, currency, babel_locale)
    return formatted.replace("\xa0", " ").replace("\u202f", " ")


def _next_step(catalogue: Catalogue, babel_locale: str, ctx: MessageContext) -> str:
    note = ctx.next_step
    if note.kind == "none":
        return ""
    if note.at is None:
        return catalogue.phrases[f"next_{note.kind}_undated"]
    local_day = _in_zone(note.at, ctx.timezone).date()
    next_date = format_date(local_day, format="long", locale=babel_locale)
    return catalogue.phrases[f"next_{note.kind}"].format_map(_Values(next_date=next_date))


def _in_zone(moment: datetime, timezone: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(UTC)


def _babel_locale(requested: str, language: str) -> str:
    """Format for the debtor's own region ("en_GB": 22 December) when it speaks the language."""
    try:
        parsed = Locale.parse(requested.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return language
    return str(parsed) if parsed.language == language else language


def _paragraphs(body: str) -> list[str]:
    paragraphs = []
    for block in re.split(r"\n\s*\n", body):
        lines = [" ".join(line.split()) for line in block.strip().splitlines()]
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _html(paragraphs: list[str], subject: str, urls: tuple[str, ...], language: str) -> str:
    links = {
        html.escape(url): f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
        for url in dict.fromkeys(urls)
        if url.startswith(("https://", "http://"))
    }
    pattern = re.compile("|".join(re.escape(u) for u in sorted(links, key=len, reverse=True)))
    body = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph)
        if links:
            escaped = pattern.sub(lambda m: links[m.group(0)], escaped)
        body.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(subject)}</title>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
