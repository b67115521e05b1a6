"""What the debtor's page shows, built from the read model: each invoice with its payments, plan
and what happens next in words, and the messages sent. Nothing internal (notes, tasks, actors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime

from activities.rendering import money_text
from api.portal.texts import TEXTS
from db.store import InvoiceView, MessageView
from workflows.models import Stage, TimelineEvent
from workflows.policy import SelfServicePlan


@dataclass
class Line:
    label: str
    value: str


@dataclass
class Instalment:
    number: int
    due: str
    amount: str
    status: str


@dataclass
class Card:
    """One invoice as the debtor sees it."""

    invoice_id: str
    title: str
    open: bool
    facts: list[Line]
    next: str
    outstanding: Decimal
    pay_label: str
    payment_url: str
    payments: list[Line] = field(default_factory=list)
    plan: list[Instalment] = field(default_factory=list)


@dataclass
class Sent:
    at: str
    channel: str
    subject: str
    text: str


class Words:
    """Texts, money and dates in the debtor's language."""

    def __init__(self, language: str, timezone: str) -> None:
        self.language = language
        self._texts = TEXTS[language]
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self._zone = ZoneInfo("UTC")

    def __call__(self, key: str, **values: str) -> str:
        return self._texts[key].format(**values) if values else self._texts[key]

    def money(self, amount: Decimal, currency: str) -> str:
        return money_text(amount, currency, self.language)

    def day(self, value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(self._zone).date()
        return format_date(value, format="long", locale=self.language)

    def moment(self, value: datetime) -> str:
        local = value.astimezone(self._zone)
        return format_datetime(local, format="medium", locale=self.language)

    def channels(self, channels: list[str]) -> str:
        names = [self(f"channel_{c}").lower() if c != "whatsapp" else "WhatsApp" for c in channels]
        if len(names) < 2:
            return "".join(names)
        return ", ".join(names[:-1]) + f" {self('and')} " + names[-1]


def due_now(invoice: InvoiceView) -> Decimal:
    """What "Pay" asks for: the next instalment during a plan, else all that is outstanding."""
    plan = invoice.plan
    if invoice.stage == "arrangement" and plan is not None and plan.status == "running":
        for instalment in plan.instalments:
            if instalment.status in ("open", "late"):
                return min(instalment.amount - instalment.paid, invoice.outstanding)
    return invoice.outstanding


def card(invoice: InvoiceView, payments: list[TimelineEvent], words: Words) -> Card:
    currency = invoice.currency
    received = [
        Line(words.day(event.at), words.money(Decimal(str(event.detail["amount"])), currency))
        for event in payments
        if "amount" in event.detail
    ]
    paid = sum((Decimal(str(e.detail.get("amount", "0"))) for e in payments), Decimal(0))
    facts = [
        Line(words("issued_on"), words.day(invoice.invoice.issued_on)),
        Line(words("due_on"), words.day(invoice.due_on)),
        Line(words("amount"), words.money(invoice.amount, currency)),
        Line(words("paid"), words.money(paid, currency)),
        Line(words("outstanding"), words.money(invoice.outstanding, currency)),
    ]
    plan = []
    if invoice.plan is not None and invoice.plan.status == "running":
        plan = [
            Instalment(
                number=i.number,
                due=words.day(i.due_on),
                amount=words.money(i.amount, currency),
                status=words(f"status_{i.status.value}"),
            )
            for i in invoice.plan.instalments
        ]
    return Card(
        invoice_id=invoice.invoice_id,
        title=words("invoice", invoice_id=invoice.invoice_id),
        open=invoice.outcome is None,
        facts=facts,
        next=next_in_words(invoice, words),
        outstanding=invoice.outstanding,
        pay_label=words("pay", amount=words.money(due_now(invoice), currency)),
        payment_url=invoice.invoice.payment_url,
        payments=received,
        plan=plan,
    )


def next_in_words(invoice: InvoiceView, words: Words) -> str:
    """What happens next if nothing happens, as the debtor should read it."""
    if invoice.outcome is not None:
        return words(f"closed_{invoice.outcome.value}")
    held = {
        Stage.disputed: "next_disputed",
        Stage.arrangement: "next_arrangement",
        Stage.paused: "next_paused",
        Stage.agent: "next_agent",
    }
    if invoice.stage in held:
        return words(held[invoice.stage])
    action = invoice.next_action
    if invoice.stage == Stage.promised:
        return words("next_promised", date=words.day(action.at)) if action else words("next_none")
    if action is None:
        return words("next_none")
    when = words.day(action.at)
    if action.action in ("agent_task", "hand_over"):
        return words(f"next_{action.action}", date=when)
    channels = [c.value for c in action.channels or []]
    return words("next_reminder", date=when, channels=words.channels(channels))


def sent(message: MessageView, words: Words) -> Sent:
    return Sent(
        at=words.moment(message.sent_at or message.created_at),
        channel=words(f"channel_{message.channel}"),
        subject=message.subject or "",
        text=message.body or "",
    )


NOTICES = {
    "done": ("dispute", "promise", "request", "contact", "plan"),
    "problem": (
        "closed",
        "dispute_reason",
        "dispute_open",
        "promise_date",
        "promise_limit",
        "promise_count",
        "promise_now",
        "contact_invalid",
        "pay_unavailable",
        "plan_not_self_service",
        "plan_too_many",
        "plan_too_small",
        "plan_first_late",
        "plan_refused",
        "part_invalid",
        "part_range",
    ),
}


@dataclass
class Notice:
    text: str
    problem: bool


@dataclass
class Limits:
    """What the page can agree by itself for one invoice (its policy's limits)."""

    plan: SelfServicePlan | None
    values: dict[str, str]
    """The limits in words, for notices and hints."""


def notice(
    words: Words,
    done: str | None,
    problem: str | None,
    asked: dict[str, str | None],
    limits: dict[str, str],
) -> Notice | None:
    """The sentence an action's redirect asked for (only known ones; nothing is echoed but a
    date and a number, both checked)."""
    kind, key = ("problem", problem) if problem else ("done", done)
    if key not in NOTICES[kind]:
        return None
    asked_day = asked.get("date") or ""
    try:
        day = words.day(date.fromisoformat(asked_day)) if asked_day else ""
    except ValueError:
        day = ""
    count = asked.get("count") or ""
    values = {"date": day, "count": count if count.isdigit() else "", **limits}
    values.setdefault("latest", "")
    for name in ("plan_max", "plan_min", "plan_latest", "part_min"):
        values.setdefault(name, "")
    return Notice(text=words(f"notice_{kind}_{key}", **values), problem=kind == "problem")
