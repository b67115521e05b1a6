"""What the console shows, in words: money and moments in the agent's language, the timeline as
sentences (who did what, and what else the event holds), and each message with its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date, format_datetime
from fastapi import Request

from activities.rendering import money_text
from api.console.web import IN_WORDS, Words, language
from db.store import MessageView
from workflows.models import TimelineEvent

# Detail fields a sentence already says, or that are only plumbing.
_SAID = {"amount", "outcome", "title", "channel", "tone", "status", "plan", "task_id"}


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
        return format_datetime(value, format="d MMM y HH:mm", tzinfo=None, locale=self.lang) + (
            " UTC"
        )

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
    events: list[TimelineEvent], fmt: Format, invoices: list[str] | None = None
) -> list[Entry]:
    """The timeline in words, newest first."""
    entries = []
    for index, event in enumerate(events):
        detail = {k: v for k, v in event.detail.items() if v not in (None, "", [], {})}
        values: dict[str, object] = {"actor": event.actor, **detail}
        if "amount" in detail and "currency" not in detail:
            values["amount"] = str(detail["amount"])
        if event.kind == "task_completed" and detail.get("note"):
            sentence = fmt.t.event("task_completed", **values) + f" “{detail['note']}”"
        else:
            sentence = fmt.t.event(event.kind, **values)
        shown = [
            (fmt.t.label(key), _plain(value, fmt, key in IN_WORDS))
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


def _plain(value: object, fmt: Format, words: bool = False) -> str:
    """A field's value as text; `words`: a tone, channel or status the page says in words."""
    if isinstance(value, list):
        return "; ".join(_plain(v, fmt, words) for v in value)
    if isinstance(value, dict):
        if "amount" in value and value.get("due_on"):  # an instalment, due on a day
            return f"{fmt.day(date.fromisoformat(value['due_on']))}: {value['amount']}"
        if "amount" in value and value.get("due_at"):  # or at a moment
            return f"{fmt.moment(datetime.fromisoformat(value['due_at']))}: {value['amount']}"
        return ", ".join(
            f"{fmt.t.label(k)}: {_plain(v, fmt, k in IN_WORDS)}"
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
