"""What the console shows, in words: money and moments in the agent's language, the timeline as
sentences (who did what, and what else the event holds), and each message with its text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request

from activities.rendering import money_text
from api.console.web import IN_WORDS, Words, language
from db.store import MessageView
from workflows.models import TimelineEvent

# Detail fields a sentence already says, or that are only plumbing.
_SAID = {"amount", "number", "outcome", "title", "channel", "tone", "status", "plan", "task_id"}
# Detail fields that hold an amount of the invoice's currency (`amount` is said in the sentence).
_MONEY = {"outstanding", "previous_outstanding", "paid", "surplus"}
# Detail fields the system may have written itself (else a person did, and it shows as written).
_PHRASED = {"reason", "note"}
# Detail fields that hold a day, or a moment, as the workflows write them (ISO 8601).
_DAYS = {"due_on", "promised_on", "first_on", "instalment_due_on"}
_MOMENTS = {"due_at", "promised_at", "grace_until", "until", "paid_at"}


class Format:
    """Money, days and moments for the page's language (moments in UTC, and said so)."""

    def __init__(self, request: Request) -> None:
        self.lang = language(request)
        self.t = Words(self.lang)

    def money(self, amount: Decimal | str | None, currency: str | None) -> str:
        if amount is None or currency is None:
            return "–"
        return money_text(Decimal(str(amount)), currency, self.lang)

    def day(self, value: date | datetime | None) -> str:
        if value is None:
            return "–"
        if isinstance(value, datetime):
            value = value.date()
        return format_date(value, format="d MMM y", locale=self.lang)

    def moment(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        # Said in UTC: a moment written with another offset is turned to UTC (a naive one is UTC).
        return format_datetime(value, format="d MMM y HH:mm", tzinfo=UTC, locale=self.lang) + (
            " UTC"
        )

    def number(self, value: float, decimals: int = 1) -> str:
        """A figure with the page's decimal sign (`2.5` in English, `2,5` in Dutch)."""
        return format_decimal(value, format=f"#,##0.{'0' * decimals}", locale=self.lang)

    def totals(self, totals: dict[str, Decimal]) -> str:
        if not totals:
            return self.money(Decimal(0), "EUR")
        return ", ".join(self.money(v, c) for c, v in sorted(totals.items()))


@dataclass
class Entry:
    """One line of a timeline."""

    at: str
    sentence: str
    actor: str
    invoice_id: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)


def timeline_entries(
    events: list[TimelineEvent],
    fmt: Format,
    invoices: list[str] | None = None,
    currency: str | Mapping[str, str] | None = None,
) -> list[Entry]:
    """The timeline in words, newest first. `invoices`: each event's invoice, where the timeline
    spans several; `currency`: the invoice's (or each invoice's, by id), so amounts read as money
    in the page's language."""
    entries = []
    for index, event in enumerate(events):
        detail = {k: v for k, v in event.detail.items() if v not in (None, "", [], {})}
        values: dict[str, object] = {"actor": event.actor, **detail}
        if isinstance(currency, Mapping):
            money = currency.get(invoices[index]) if invoices else None
        else:
            money = currency
        if "amount" in detail and "currency" not in detail:
            values["amount"] = _money(detail["amount"], fmt, money)
        if event.kind == "task_completed" and detail.get("note"):
            sentence = fmt.t.event("task_completed", **values) + f" “{detail['note']}”"
        else:
            sentence = fmt.t.event(event.kind, **values)
        shown = [
            (fmt.t.label(key), _detail(key, value, event.kind, fmt, money))
            for key, value in detail.items()
            if key not in _SAID and not (event.kind == "task_completed" and key == "note")
        ]
        entries.append(
            Entry(
                at=fmt.moment(event.at),
                sentence=sentence,
                actor=event.actor,
                invoice_id=invoices[index] if invoices else "",
                details=shown,
            )
        )
    entries.reverse()
    return entries


def _detail(key: str, value: object, kind: str, fmt: Format, currency: str | None) -> str:
    """One field of an event as text: money as money, a day or a moment the page's way, the
    system's reasons and notes in words."""
    if key in _MONEY:
        return _money(value, fmt, currency)
    if isinstance(value, str):
        if key in _PHRASED:
            return fmt.t.phrase(value, kind)
        if key in _DAYS:
            return _day(value, fmt)
        if key in _MOMENTS:
            return _moment(value, fmt)
    return _plain(value, fmt, key in IN_WORDS, currency)


def _day(value: str, fmt: Format) -> str:
    """A day the page's way; as written if it is not one."""
    try:
        return fmt.day(date.fromisoformat(value))
    except ValueError:
        return value


def _moment(value: str, fmt: Format) -> str:
    """A moment the page's way, in UTC; as written if it is not one."""
    try:
        return fmt.moment(datetime.fromisoformat(value))
    except ValueError:
        return value


def _money(value: object, fmt: Format, currency: str | None) -> str:
    """An amount as money in the page's language; as written where the currency is unknown."""
    if currency is None:
        return str(value)
    try:
        return fmt.money(str(value), currency)
    except InvalidOperation:
        return str(value)


def _plain(value: object, fmt: Format, words: bool = False, currency: str | None = None) -> str:
    """A field's value as text; `words`: a tone, channel or status the page says in words;
    `currency`: the invoice's, for the amounts of its instalments."""
    if isinstance(value, list):
        return "; ".join(_plain(v, fmt, words, currency) for v in value)
    if isinstance(value, dict):
        if "amount" in value and value.get("due_on"):  # an instalment, due on a day
            amount = _money(value["amount"], fmt, currency)
            return f"{_day(str(value['due_on']), fmt)}: {amount}"
        if "amount" in value and value.get("due_at"):  # or at a moment
            amount = _money(value["amount"], fmt, currency)
            return f"{_moment(str(value['due_at']), fmt)}: {amount}"
        return ", ".join(
            f"{fmt.t.label(k)}: {_plain(v, fmt, k in IN_WORDS, currency)}"
            for k, v in value.items()
            if v is not None
        )
    if isinstance(value, bool):
        return fmt.t.value(str(value))  # yes / no
    return fmt.t.value(value) if words else str(value)


@dataclass
class Message:
    at: str
    channel: str
    recipient: str
    subject: str
    body: str
    status: str
    delivery: str


def messages(rows: list[MessageView], fmt: Format) -> list[Message]:
    """Each message, newest first, with its text and what the provider last said of it."""
    return [
        Message(
            at=fmt.moment(m.sent_at or m.created_at),
            channel=fmt.t.value(m.channel),
            recipient=m.recipient,
            subject=m.subject or "",
            body=m.body or "",
            status=fmt.t.value(m.status),
            delivery=fmt.t.value(m.delivery_status) if m.delivery_status else "–",
        )
        for m in rows
    ]
