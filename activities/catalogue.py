"""The template catalogue: its data, and how a locale's file is loaded and checked.

Every check happens here, at load: an unknown placeholder, a missing default tone or a chasing
message that forgets to state the invoice number, the amount outstanding, the due date, the payment
link or the next step is an error when the worker starts, never while sending.
"""

from __future__ import annotations

import re
import string
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from workflows.policy import Tone

FACTS = frozenset(
    {"customer_name", "invoice_id", "amount", "outstanding", "due_date", "payment_url"}
)
# Who writes (the creditor's settings) and the debtor's personal page: every email carries both.
_SENDER = frozenset({"portal_line", "company_name", "company_contact"})
# Facts of promises and instalment plans, filled from the message's `extra` when it has them.
_PLANFACTS = frozenset(
    {
        "promised_date",
        "instalment_number",
        "instalment_count",
        "instalment_amount",
        "instalment_due_date",
        "plan_schedule",
        "paid_numbers",
        "grace_date",
    }
)
PLACEHOLDERS = FACTS | _PLANFACTS | _SENDER | {"next_step"}
EVERY_EMAIL = ("portal_line", "company_name")
CHASING_EMAIL = ("invoice_id", "outstanding", "due_date", "payment_url", "next_step")
CHASING_SHORT = ("invoice_id", "outstanding", "payment_url")
NEXT_STEP_PHRASES = {
    f"next_{kind}{suffix}": ({"next_date"} if not suffix else set())
    for kind in ("reminder", "agent_call", "hand_over")
    for suffix in ("", "_undated")
}
ANY = "*"


@dataclass(frozen=True)
class Variant:
    subject: str
    email: str
    short: str
    choices: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Template:
    key: str
    default_tone: Tone
    variants: dict[Tone, Variant]

    def variant(self, tone: Tone) -> Variant:
        return self.variants.get(tone) or self.variants[self.default_tone]


@dataclass(frozen=True)
class Catalogue:
    locale: str
    phrases: dict[str, str]
    templates: dict[str, Template]


def parse_catalogue(locale: str, data: dict[str, Any], where: str) -> Catalogue:
    declared = data.get("locale", locale)
    if declared != locale:
        raise ValueError(f"{where}: declares locale {declared!r}, but the file is for {locale!r}")
    phrases = data.get("phrases", {})
    required_phrases = {
        **NEXT_STEP_PHRASES,
        "short_fallback": FACTS,
        "short_portal": {"portal_url"},
        "portal_line": {"portal_url"},
    }
    for name, allowed in required_phrases.items():
        text = phrases.get(name)
        if not isinstance(text, str):
            raise ValueError(f"{where}: [phrases] needs a text {name!r}")
        _check_placeholders(text, allowed, f"{where}: phrases.{name}")
    templates = {}
    for key, raw in data.get("templates", {}).items():
        templates[key] = _parse_template(key, raw, f"{where}: templates.{key}")
    if not templates:
        raise ValueError(f"{where}: no [templates.<key>] tables")
    return Catalogue(locale=locale, phrases=dict(phrases), templates=templates)


def _parse_template(key: str, raw: dict[str, Any], where: str) -> Template:
    if not re.fullmatch(r"[a-z0-9_]+", key):
        raise ValueError(f"{where}: template keys are lowercase letters, digits and _")
    try:
        default_tone = Tone(raw.get("default_tone", ""))
    except ValueError:
        raise ValueError(f"{where}: default_tone must be one of {_tones()}") from None
    chasing = raw.get("chasing", True)
    variants = {}
    for name, table in raw.items():
        if name in ("default_tone", "chasing"):
            continue
        if name not in Tone.__members__ or not isinstance(table, dict):
            raise ValueError(f"{where}: {name!r} is not a tone ({_tones()})")
        variants[Tone(name)] = _parse_variant(table, chasing, f"{where}.{name}")
    if default_tone not in variants:
        raise ValueError(f"{where}: there is no text for its default tone {default_tone.value}")
    return Template(key=key, default_tone=default_tone, variants=variants)


def _parse_variant(table: dict[str, Any], chasing: bool, where: str) -> Variant:
    choices: dict[str, dict[str, str]] = {}
    for name, options in table.get("choices", {}).items():
        if name in PLACEHOLDERS or not isinstance(options, dict) or ANY not in options:
            raise ValueError(f"{where}.choices.{name}: needs a table with a '*' entry")
        for value, text in options.items():
            _check_placeholders(text, PLACEHOLDERS, f"{where}.choices.{name}.{value}")
        choices[name] = dict(options)
    allowed = PLACEHOLDERS | set(choices)
    texts = {}
    for part in ("subject", "email", "short"):
        text = table.get(part)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: needs a text {part!r}")
        texts[part] = text
        used = _check_placeholders(text, allowed, f"{where}.{part}")
        required = {"email": CHASING_EMAIL, "short": CHASING_SHORT}.get(part, ())
        missing = [name for name in required if chasing and name not in used]
        if missing:
            raise ValueError(
                f"{where}.{part}: a chasing message must state "
                + ", ".join("{" + name + "}" for name in missing)
            )
        unsigned = [name for name in EVERY_EMAIL if part == "email" and name not in used]
        if unsigned:
            raise ValueError(
                f"{where}.email: every email carries "
                + ", ".join("{" + name + "}" for name in unsigned)
            )
    return Variant(choices=choices, **texts)


def _check_placeholders(text: Any, allowed: AbstractSet[str], where: str) -> set[str]:
    """The placeholders in `text`; only plain names from `allowed` (no {0}, {x.y}, {x:>10})."""
    if not isinstance(text, str):
        raise ValueError(f"{where}: must be text")
    used = set()
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (write {{{{ and }}}} for literal braces)") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise ValueError(
                f"{where}: unknown placeholder {{{name}}}; use {', '.join(sorted(allowed))}"
            )
        used.add(name)
    return used


def _tones() -> str:
    return ", ".join(t.value for t in Tone)
