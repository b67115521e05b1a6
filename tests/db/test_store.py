"""The read model as activities and the API use it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from db.session import make_engine, make_sessionmaker
from db.store import Claim, OptOut, Store
from workflows.models import (
    Customer,
    InstalmentView,
    Invoice,
    NextAction,
    Outcome,
    PlanOutcome,
    PlanView,
    RecordRequest,
    Snapshot,
    Stage,
    TaskRequest,
    TimelineEvent,
)
from workflows.policy import DEMO_POLICY, STANDARD_POLICY, Channel

T0 = datetime(2026, 12, 23, 8, 0, tzinfo=UTC)


def invoice(
    invoice_id: str = "INV-1", customer_id: str = "C-17", amount: str = "1250.10"
) -> Invoice:
    return Invoice(
        invoice_id=invoice_id,
        amount=Decimal(amount),
        currency="EUR",
        issued_on=date(2026, 11, 22),
        due_on=date(2026, 12, 22),
        payment_url=f"https://pay.example.com/{invoice_id}",
        customer=Customer(id=customer_id, name="Bakkerij de Vries", email="ap@devries.example"),
    )


def snapshot(
    invoice_id: str = "INV-1",
    customer_id: str = "C-17",
    stage: Stage = Stage.reminding,
    outstanding: str = "1250.10",
    outcome: Outcome | None = None,
    next_action: NextAction | None = None,
) -> Snapshot:
    return Snapshot(
        invoice_id=invoice_id,
        customer_id=customer_id,
        stage=stage,
        outcome=outcome,
        outstanding=Decimal(outstanding),
        next_action=next_action,
    )


def event(key: str, at: datetime = T0, kind: str = "message", **detail: Any) -> TimelineEvent:
    return TimelineEvent(key=key, at=at, kind=kind, actor="system", detail=detail)


def start(store: Store, invoice_id: str = "INV-1", customer_id: str = "C-17") -> None:
    store.ensure_invoice(invoice(invoice_id, customer_id), "fp", "standard", 1)


def run_concurrently(calls: int, fn: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=calls) as pool:
        return [f.result() for f in [pool.submit(fn) for _ in range(calls)]]


# ---- money and time ----------------------------------------------------------------------------


def test_money_round_trips_exactly(store: Store) -> None:
    store.ensure_invoice(invoice(amount="1250.10"), "fp", "standard", 1)
    store.record(RecordRequest(snapshot=snapshot(outstanding="0.30"), events=[event("e1")]))

    row = store.get_invoice("INV-1")
    assert row is not None
    assert isinstance(row.amount, Decimal)
    assert row.amount == Decimal("1250.10")
    assert row.outstanding == Decimal("0.1") + Decimal("0.2")  # 0.30000000000000004 as floats
    assert row.invoice.amount == Decimal("1250.10")


def test_large_amounts_keep_every_digit(store: Store) -> None:
    store.ensure_invoice(invoice(amount="9999999999999999.9999"), "fp", "standard", 1)
    row = store.get_invoice("INV-1")
    assert row is not None
    assert str(row.amount) == "9999999999999999.9999"


def test_money_is_never_rounded_silently(store: Store) -> None:
    with pytest.raises(sa.exc.StatementError, match="more than 4 decimals"):
        store.ensure_invoice(invoice(amount="10.00001"), "fp", "standard", 1)
    assert store.get_invoice("INV-1") is None


def test_datetimes_come_back_aware_in_utc(store: Store) -> None:
    amsterdam_morning = datetime(2026, 12, 23, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    start(store)
    store.record(RecordRequest(snapshot=snapshot(), events=[event("e1", at=amsterdam_morning)]))

    [stored] = store.timeline("INV-1")
    assert stored.at == amsterdam_morning
    assert stored.at.tzinfo is UTC
    assert stored.at.hour == 8
    row = store.get_invoice("INV-1")
    assert row is not None
    assert row.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    start(store)
    naive = event("e1", at=datetime(2026, 12, 23, 9, 0))
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        store.record(RecordRequest(snapshot=snapshot(), events=[naive]))
    assert store.timeline("INV-1") == []


# ---- invoices ----------------------------------------------------------------------------------


def test_ensure_invoice_creates_once_and_keeps_the_first(store: Store) -> None:
    first, created = store.ensure_invoice(invoice(amount="100.00"), "fp-1", "standard", 3)
    again, created_again = store.ensure_invoice(invoice(amount="999.00"), "fp-2", "demo", 1)

    assert created is True
    assert created_again is False
    assert first.stage == Stage.scheduled
    assert first.outstanding == first.amount == Decimal("100.00")
    assert (first.policy_name, first.policy_version, first.fingerprint) == ("standard", 3, "fp-1")
    assert again == first


def test_concurrent_ensure_invoice_creates_one_row(store: Store) -> None:
    results = run_concurrently(8, lambda: store.ensure_invoice(invoice(), "fp", "standard", 1))
    assert sum(created for _, created in results) == 1
    assert {row.invoice_id for row, _ in results} == {"INV-1"}


def test_list_invoices_filters_and_pages_newest_first(store: Store) -> None:
    start(store, "INV-1", "C-17")
    start(store, "INV-2", "C-99")
    start(store, "INV-3", "C-17")
    store.record(RecordRequest(snapshot=snapshot("INV-3", "C-17", stage=Stage.disputed)))

    assert [r.invoice_id for r in store.list_invoices()] == ["INV-3", "INV-2", "INV-1"]
    assert [r.invoice_id for r in store.list_invoices(customer_id="C-17")] == ["INV-3", "INV-1"]
    assert [r.invoice_id for r in store.list_invoices(stage="disputed")] == ["INV-3"]
    assert [r.invoice_id for r in store.list_invoices(customer_id="C-99", stage="disputed")] == []
    assert [r.invoice_id for r in store.list_invoices(limit=1, offset=1)] == ["INV-2"]


# ---- recording a journey -----------------------------------------------------------------------


def test_record_updates_the_snapshot(store: Store) -> None:
    start(store)
    step = NextAction(at=T0 + timedelta(days=6), step="overdue_2", channels=[Channel.email])
    store.record(
        RecordRequest(
            snapshot=snapshot(outstanding="1000.00", next_action=step),
            events=[event("e1", kind="payment", amount="250.10")],
        )
    )

    row = store.get_invoice("INV-1")
    assert row is not None
    assert row.stage == Stage.reminding
    assert row.outstanding == Decimal("1000.00")
    assert row.next_action == step
    assert row.updated_at > row.created_at


def test_record_creates_the_invoice_when_the_api_did_not(store: Store) -> None:
    request = RecordRequest(
        snapshot=snapshot(stage=Stage.scheduled),
        events=[event("journey_started", kind="journey_started")],
        invoice=invoice(),
        policy_name="demo",
        policy_version=2,
        fingerprint="fp",
    )
    store.record(request)
    store.record(request)

    row = store.get_invoice("INV-1")
    assert row is not None
    assert (row.policy_name, row.policy_version, row.amount) == ("demo", 2, Decimal("1250.10"))
    assert [e.kind for e in store.timeline("INV-1")] == ["journey_started"]


def test_recording_twice_stores_each_event_and_task_once(store: Store) -> None:
    start(store)
    request = RecordRequest(
        snapshot=snapshot(stage=Stage.agent),
        events=[event("e1"), event("e2", at=T0 + timedelta(minutes=1))],
        tasks=[TaskRequest(key="INV-1:call", kind="call_debtor", title="Call Bakkerij de Vries")],
    )
    store.record(request)
    store.record(request)
    # A later record that repeats one event and one task beside a new event.
    store.record(request.model_copy(update={"events": [event("e2"), event("e3")]}))

    assert [e.key for e in store.timeline("INV-1")] == ["e1", "e3", "e2"]
    assert [t.task_key for t in store.list_tasks(invoice_id="INV-1")] == ["INV-1:call"]


def test_concurrent_records_store_each_event_once(store: Store) -> None:
    start(store)
    request = RecordRequest(
        snapshot=snapshot(),
        events=[event(f"e{i}", at=T0 + timedelta(seconds=i)) for i in range(5)],
        tasks=[TaskRequest(key="INV-1:review", kind="review_dispute", title="Review dispute")],
    )
    run_concurrently(8, lambda: store.record(request))

    assert [e.key for e in store.timeline("INV-1")] == ["e0", "e1", "e2", "e3", "e4"]
    assert len(store.list_tasks()) == 1


def test_an_older_snapshot_arriving_late_does_not_overwrite(store: Store) -> None:
    start(store)
    paid = snapshot(stage=Stage.paid, outcome=Outcome.paid, outstanding="0")
    store.record(RecordRequest(snapshot=paid, events=[event("paid", at=T0 + timedelta(hours=1))]))
    # A message activity that was retried for an hour finally records, with its older snapshot.
    store.record(RecordRequest(snapshot=snapshot(), events=[event("reminder", at=T0)]))
    store.record(RecordRequest(snapshot=snapshot()))

    row = store.get_invoice("INV-1")
    assert row is not None
    assert (row.stage, row.outcome, row.outstanding) == (Stage.paid, Outcome.paid, Decimal(0))
    assert [e.key for e in store.timeline("INV-1")] == ["reminder", "paid"]


def test_an_older_snapshot_does_not_overwrite_a_newer_one_of_an_open_journey(store: Store) -> None:
    start(store)
    disputed = snapshot(stage=Stage.disputed, outstanding="1000.00")
    later = T0 + timedelta(hours=1)
    store.record(RecordRequest(snapshot=disputed, events=[event("dispute", at=later)]))
    # A reminder retried for an hour finally records, with the snapshot of its own moment.
    store.record(RecordRequest(snapshot=snapshot(), events=[event("reminder", at=T0)]))

    row = store.get_invoice("INV-1")
    assert row is not None
    assert (row.stage, row.outstanding) == (Stage.disputed, Decimal("1000.00"))
    assert [e.key for e in store.timeline("INV-1")] == ["reminder", "dispute"]


def test_events_of_an_unknown_invoice_are_refused(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        store.record(RecordRequest(snapshot=snapshot("INV-404"), events=[event("e1")]))


def test_timelines_are_oldest_first(store: Store) -> None:
    start(store, "INV-1", "C-17")
    start(store, "INV-2", "C-17")
    start(store, "INV-3", "C-99")
    store.record(
        RecordRequest(snapshot=snapshot("INV-1"), events=[event("b", at=T0 + timedelta(2))])
    )
    store.record(
        RecordRequest(snapshot=snapshot("INV-2"), events=[event("c", at=T0 + timedelta(1))])
    )
    store.record(RecordRequest(snapshot=snapshot("INV-1"), events=[event("a", at=T0)]))
    store.record(RecordRequest(snapshot=snapshot("INV-3", "C-99"), events=[event("x", at=T0)]))
    # Two events at the same moment keep the order they were recorded in.
    store.record(
        RecordRequest(
            snapshot=snapshot("INV-1"),
            events=[event("d1", at=T0 + timedelta(3)), event("d2", at=T0 + timedelta(3))],
        )
    )

    assert [e.key for e in store.timeline("INV-1")] == ["a", "b", "d1", "d2"]
    debtor = store.customer_timeline("C-17")
    assert [(invoice_id, e.key) for invoice_id, e in debtor] == [
        ("INV-1", "a"),
        ("INV-2", "c"),
        ("INV-1", "b"),
        ("INV-1", "d1"),
        ("INV-1", "d2"),
    ]
    assert [e.key for _, e in store.customer_timeline("C-17", limit=2, offset=1)] == ["c", "b"]
    assert store.timeline("INV-404") == []


# ---- policies ----------------------------------------------------------------------------------


def test_shipped_policies_are_added_once_and_edits_survive(store: Store) -> None:
    store.ensure_shipped_policies([STANDARD_POLICY, DEMO_POLICY])
    assert [p.name for p in store.list_policies()] == ["demo", "standard"]
    assert store.get_policy("standard") == STANDARD_POLICY

    edited = STANDARD_POLICY.model_copy(update={"description": "Gentler, for our bakery clients."})
    stored = store.put_policy(edited, actor="admin-ann")
    store.ensure_shipped_policies([STANDARD_POLICY, DEMO_POLICY])

    assert stored.version == 2
    assert store.get_policy("standard") == stored
    assert stored.description == "Gentler, for our bakery clients."
    assert store.get_policy("nope") is None


def test_put_policy_bumps_the_version(store: Store) -> None:
    custom = STANDARD_POLICY.model_copy(update={"name": "key-accounts", "version": 7})
    assert store.put_policy(custom, actor="admin").version == 1
    assert store.put_policy(custom, actor="admin").version == 2
    versions = run_concurrently(4, lambda: store.put_policy(custom, actor="admin").version)

    assert sorted(versions) == [3, 4, 5, 6]
    policy = store.get_policy("key-accounts")
    assert policy is not None
    assert policy.version == 6


# ---- messages ----------------------------------------------------------------------------------


def claim(
    store: Store,
    key: str = "invoice-INV-1:overdue_1:email",
    invoice_id: str = "INV-1",
    holder: str = "attempt-1",
) -> Claim:
    return store.claim_message(
        key, invoice_id, "email", "overdue_1", "friendly", "nl", "ap@devries.example", holder
    )


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def timed(store: Store) -> tuple[Store, Clock]:
    """The same tables, read through a clock the test moves."""
    clock = Clock()
    return Store(store.sessions, clock=clock), clock


def test_a_message_is_claimed_once(store: Store) -> None:
    first = claim(store)
    again = claim(store, holder="attempt-2")

    assert (first.state, again.state) == ("new", "busy")
    assert first.message.status == again.message.status == "claimed"
    assert again.message.claimed_by == "attempt-1"
    states = run_concurrently(8, lambda: claim(store, holder="attempt-3").state)
    assert states == ["busy"] * 8


def test_concurrent_claims_let_one_caller_send(store: Store) -> None:
    holders = iter(range(8))
    states = run_concurrently(8, lambda: claim(store, holder=f"a-{next(holders)}").state)
    assert sorted(states) == ["busy"] * 7 + ["new"]


def test_a_dead_attempts_claim_is_taken_over_once_its_lease_runs_out(
    timed: tuple[Store, Clock],
) -> None:
    store, clock = timed
    first = claim(store, holder="dead")
    clock.now += timedelta(seconds=10)
    assert claim(store, holder="early").state == "busy"  # the lease (15 s) still runs
    clock.now += timedelta(seconds=6)
    holders = iter(range(6))
    claims = run_concurrently(6, lambda: claim(store, holder=f"next-{next(holders)}"))

    [taker] = [c for c in claims if c.state == "taken_over"]
    assert sorted(c.state for c in claims) == ["busy"] * 5 + ["taken_over"]
    assert taker.previous_at == first.message.claimed_at == T0
    assert taker.message.claimed_at == T0
    # The taker dies too: the next one is still told about the first claim, so it asks the
    # provider about everything since then (and a provider's feed that runs behind is waited
    # out from the first claim, not from each taker's).
    clock.now += timedelta(seconds=16)
    again = claim(store, holder="third")
    assert again.state == "taken_over" and again.previous_at == T0
    assert again.message.claimed_by == "third"
    # A release means nothing went out: the next claim starts afresh.
    store.release_claim(again.message.key, "third")
    fresh = claim(store, holder="fourth")
    assert fresh.state == "new" and fresh.message.claimed_at == clock.now


def test_a_renewed_lease_keeps_other_attempts_waiting(timed: tuple[Store, Clock]) -> None:
    store, clock = timed
    claim(store, holder="slow")
    for _ in range(4):  # a slow provider: the holder renews while it waits
        clock.now += timedelta(seconds=10)
        assert store.renew_claim("invoice-INV-1:overdue_1:email", "slow", timedelta(seconds=15))
        assert claim(store, holder="retry").state == "busy"
    assert not store.renew_claim("invoice-INV-1:overdue_1:email", "retry", timedelta(seconds=15))


def test_a_released_claim_is_sent_afresh(store: Store) -> None:
    claim(store, holder="refused")  # the provider answered 503: it surely has nothing
    store.release_claim("invoice-INV-1:overdue_1:email", "refused")
    assert claim(store, holder="next").state == "new"


def test_finished_message_shows_what_the_provider_said(store: Store) -> None:
    key = "invoice-INV-1:overdue_1:email"
    claim(store, key)
    store.finish_message(key, "outbox", "outbox", None, "Herinnering", "Beste klant, ...")
    again = claim(store, key, holder="later")

    message = store.get_message(key)
    assert message is not None
    assert again.state == "done"
    assert again.message == message
    assert (message.status, message.subject, message.error) == ("outbox", "Herinnering", None)
    assert message.sent_at is not None and message.sent_at.tzinfo is UTC
    assert store.get_message("invoice-INV-1:overdue_2:email") is None


def test_finishing_twice_keeps_the_moment_it_was_first_handed_over(store: Store) -> None:
    key = "invoice-INV-1:overdue_1:email"
    claim(store, key)
    store.finish_message(key, "sent", "sendgrid", "m-1", "Herinnering", "Beste klant")
    first = store.get_message(key)
    # A retry whose first mark was committed, but whose answer was lost, marks it again.
    store.finish_message(key, "sent", "sendgrid", "m-1", "Herinnering", "Beste klant")
    again = store.get_message(key)

    assert first is not None and again is not None
    assert first.sent_at is not None
    assert again.sent_at == first.sent_at


def test_finishing_an_unclaimed_message_is_an_error(store: Store) -> None:
    with pytest.raises(LookupError):
        store.finish_message("never-claimed", "sent", "sendgrid", "m-1", "s", "b")
    claim(store, "k")
    with pytest.raises(ValueError):
        store.finish_message("k", "delivered", "sendgrid", "m-1", "s", "b")


def test_failed_message_keeps_its_reason(store: Store) -> None:
    claim(store, "k")
    store.finish_message("k", "failed", "twilio", None, None, "body", error="invalid number")
    message = store.get_message("k")
    assert message is not None
    assert (message.status, message.error, message.sent_at) == ("failed", "invalid number", None)


def test_list_messages_newest_first(store: Store) -> None:
    claim(store, "invoice-INV-1:before_due:email")
    claim(store, "invoice-INV-2:before_due:email", invoice_id="INV-2")
    claim(store, "invoice-INV-1:overdue_1:email")

    assert [m.key for m in store.list_messages(invoice_id="INV-1")] == [
        "invoice-INV-1:overdue_1:email",
        "invoice-INV-1:before_due:email",
    ]
    assert len(store.list_messages()) == 3
    assert len(store.list_messages(limit=2)) == 2


# ---- what providers report afterwards -----------------------------------------------------------


def sent(store: Store, key: str = "invoice-INV-1:overdue_1:sms", sid: str = "SM1") -> str:
    start(store)
    claim(store, key)
    store.finish_message(key, "sent", "twilio", sid, None, "Beste klant")
    return key


def test_a_receipt_is_applied_once_with_its_event(store: Store) -> None:
    key = sent(store)
    assert store.apply_receipt("twilio:SM1:delivered", key, "delivered")
    assert not store.apply_receipt("twilio:SM1:delivered", key, "delivered")

    assert store.handled("twilio:SM1:delivered")
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "delivered"
    assert [e.kind for e in store.timeline("INV-1")] == ["delivery"]


def test_a_delivery_status_never_moves_backwards_even_when_receipts_race(store: Store) -> None:
    key = sent(store)
    store.apply_receipt("e-delivered", key, "delivered")
    store.apply_receipt("e-sent", key, "sent")  # late and out of order
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "delivered"

    statuses = iter(["sent", "delivered", "read", "sent", "delivered", "sent"] * 2)
    names = iter(range(12))
    run_concurrently(12, lambda: store.apply_receipt(f"race-{next(names)}", key, next(statuses)))
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "read"
    store.apply_receipt("e-undelivered", key, "undelivered")
    store.apply_receipt("e-late-read", key, "read")
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "undelivered"  # final


def test_a_receipt_before_our_mark_waits_for_it(store: Store) -> None:
    start(store)
    key = "invoice-INV-1:overdue_1:sms"
    claim(store, key)
    assert store.hold_receipt("twilio:SM9:sent", "SM9", "sent", "", False) == []
    assert store.hold_receipt("twilio:SM9:undelivered", "SM9", "undelivered", "30005", True) == []

    applied = store.finish_message(key, "sent", "twilio", "SM9", None, "Beste klant")

    assert [(r.status, r.bounce) for r in applied] == [("sent", False), ("undelivered", True)]
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "undelivered"
    assert store.apply_early_receipts("SM9") == []  # applied once


def test_a_receipt_held_after_the_mark_is_applied_at_once(store: Store) -> None:
    key = sent(store, sid="SM5")
    [receipt] = store.hold_receipt("twilio:SM5:delivered", "SM5", "delivered", "", False)
    assert receipt.status == "delivered"
    message = store.get_message(key)
    assert message is not None and message.delivery_status == "delivered"


def test_a_spam_report_opts_out_in_the_same_transaction(store: Store) -> None:
    key = sent(store)
    change = OptOut("ap@devries.example", "email", "debtor", "spamreport")
    assert store.apply_receipt("sendgrid:e1", key, "spam_report", opt_out=change)
    assert store.opted_out("ap@devries.example", "email")
    assert store.apply_opt_change(
        "twilio-inbound:SM2", OptOut("+316", "sms", "debtor", "STOP"), True
    )
    assert not store.apply_opt_change(
        "twilio-inbound:SM2", OptOut("+316", "sms", "debtor", "STOP"), False
    )  # a replay of the same STOP, even relabelled, changes nothing
    assert store.opted_out("+316", "sms")


def test_a_misconfigured_provider_asks_an_admin_once_and_closes_the_task_when_fixed(
    store: Store,
) -> None:
    start(store)
    assert store.provider_misconfigured("sendgrid", "401: check the key", "INV-1", "C-17")
    assert not store.provider_misconfigured("sendgrid", "401 again", "INV-1", "C-17")
    [task] = store.list_tasks(kind="provider_misconfigured")
    assert "sendgrid" in task.title and task.status == "open"
    [state] = store.provider_states()
    assert (state.provider, state.state) == ("sendgrid", "misconfigured")

    assert store.provider_ok("sendgrid")
    assert not store.provider_ok("sendgrid")
    assert store.list_tasks(kind="provider_misconfigured") == []
    done = store.get_task(task.id)
    assert done is not None and (done.status, done.completed_by) == ("done", "system")
    assert [s.state for s in store.provider_states()] == ["ok"]


# ---- tasks -------------------------------------------------------------------------------------


def add_tasks(store: Store) -> None:
    start(store, "INV-1")
    start(store, "INV-2")
    store.record(
        RecordRequest(
            snapshot=snapshot("INV-1", stage=Stage.agent),
            tasks=[
                TaskRequest(key="INV-1:call", kind="call_debtor", title="Call", detail={"n": 1}),
                TaskRequest(key="INV-1:review", kind="review_dispute", title="Review"),
            ],
        )
    )
    store.record(
        RecordRequest(
            snapshot=snapshot("INV-2", stage=Stage.agent),
            tasks=[TaskRequest(key="INV-2:call", kind="call_debtor", title="Call")],
        )
    )


def test_complete_task_is_idempotent(store: Store) -> None:
    add_tasks(store)
    [task] = store.list_tasks(invoice_id="INV-2")

    done = store.complete_task(task.id, actor="agent-ann", note="Promised to pay Friday")
    again = store.complete_task(task.id, actor="agent-bob", note="second click")

    assert done is not None
    assert (done.status, done.completed_by, done.note) == (
        "done",
        "agent-ann",
        "Promised to pay Friday",
    )
    assert done.completed_at is not None and done.completed_at.tzinfo is UTC
    assert again == done
    assert store.get_task(task.id) == done
    assert store.complete_task("no-such-task", actor="agent-ann") is None
    assert store.get_task("no-such-task") is None


def test_list_tasks_filters(store: Store) -> None:
    add_tasks(store)
    [review] = store.list_tasks(kind="review_dispute")
    store.complete_task(review.id, actor="agent-ann")

    assert [t.task_key for t in store.list_tasks()] == ["INV-1:call", "INV-2:call"]
    assert [t.task_key for t in store.list_tasks(status="done")] == ["INV-1:review"]
    assert len(store.list_tasks(status=None)) == 3
    assert [t.task_key for t in store.list_tasks(invoice_id="INV-1")] == ["INV-1:call"]
    assert [t.task_key for t in store.list_tasks(kind="call_debtor", limit=1)] == ["INV-1:call"]
    [call] = store.list_tasks(invoice_id="INV-1")
    assert (call.customer_id, call.detail, call.status) == ("C-17", {"n": 1}, "open")


def test_ping_answers_on_a_live_database_and_raises_on_a_dead_one(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    store.ping()
    url = sa.make_url(database_url)
    # A directory is no SQLite file; nothing listens on port 1.
    dead_url = (
        url.set(database=str(tmp_path))
        if url.get_backend_name() == "sqlite"
        else url.set(host="127.0.0.1", port=1)
    )
    dead = make_engine(dead_url)
    try:
        with pytest.raises(sa.exc.OperationalError):
            Store(make_sessionmaker(dead)).ping()
    finally:
        dead.dispose()


# ---- instalment plans --------------------------------------------------------------------------


def plan_view(number: int, revision: int, paid: str = "0") -> PlanView:
    return PlanView(
        number=number,
        workflow_id=f"invoice-INV-1-plan-{number}",
        currency="EUR",
        total=Decimal("1250.10"),
        paid=Decimal(paid),
        outstanding=Decimal("1250.10") - Decimal(paid),
        instalments=[
            InstalmentView(number=1, due_on=date(2027, 1, 15), amount=Decimal("600.00")),
            InstalmentView(number=2, due_on=date(2027, 2, 15), amount=Decimal("650.10")),
        ],
        revision=revision,
    )


def test_the_invoice_shows_its_newest_plan_and_an_older_view_never_overwrites_it(
    store: Store,
) -> None:
    start(store)
    for number, revision, paid in [(1, 3, "600.00"), (1, 2, "0"), (2, 1, "100.00"), (1, 9, "0")]:
        plan_snapshot = snapshot(stage=Stage.arrangement).model_copy(
            update={"plan": plan_view(number, revision, paid)}
        )
        store.record(RecordRequest(snapshot=plan_snapshot, events=[]))
        if number == 1 and revision == 3:
            row = store.get_invoice("INV-1")
            assert row is not None and row.plan is not None
            assert row.plan.paid == Decimal("600.00") and row.stage == Stage.arrangement

    row = store.get_invoice("INV-1")
    assert row is not None and row.plan is not None
    assert (row.plan.number, row.plan.revision, row.plan.paid) == (2, 1, Decimal("100.00"))
    assert [i.amount for i in row.plan.instalments] == [Decimal("600.00"), Decimal("650.10")]


def test_a_closed_journey_still_takes_its_plans_final_view(store: Store) -> None:
    start(store)
    closed = snapshot(stage=Stage.paid, outcome=Outcome.paid, outstanding="0")
    store.record(RecordRequest(snapshot=closed, events=[event("e1")]))
    late = snapshot(stage=Stage.arrangement).model_copy(update={"plan": plan_view(1, 5, "1250.10")})
    store.record(RecordRequest(snapshot=late, events=[event("e2", at=T0 + timedelta(seconds=1))]))

    row = store.get_invoice("INV-1")
    assert row is not None and row.plan is not None
    assert row.stage == Stage.paid and row.plan.paid == Decimal("1250.10")


def test_an_ended_plans_last_record_leaves_the_journeys_stage_and_amount(store: Store) -> None:
    """The agent cancelled the plan (or a dispute adjusted the amount and ended it): the journey
    recorded that it is reminding again for 1000.00; the plan's own last record, which may come
    after, says only that the plan ended."""
    start(store)
    resumed = snapshot(stage=Stage.reminding, outstanding="1000.00")
    store.record(RecordRequest(snapshot=resumed, events=[event("e1")]))
    cancelled = plan_view(1, 7, "0").model_copy(update={"status": PlanOutcome.cancelled})
    last = snapshot(stage=Stage.arrangement).model_copy(update={"plan": cancelled})
    store.record(RecordRequest(snapshot=last, events=[]))

    row = store.get_invoice("INV-1")
    assert row is not None and row.plan is not None
    assert (row.stage, row.outstanding) == (Stage.reminding, Decimal("1000.00"))
    assert (row.plan.status, row.plan.revision) == (PlanOutcome.cancelled, 7)


def test_list_invoices_filters_by_outcome_and_days_overdue(store: Store) -> None:
    for invoice_id, due_on in [("OLD", date(2026, 10, 1)), ("NEW", date(2026, 12, 1))]:
        store.ensure_invoice(
            invoice(invoice_id).model_copy(update={"due_on": due_on}), "fp", "standard", 1
        )
    start(store, "PAID")  # due 2026-12-22, but closed
    paid = snapshot("PAID", stage=Stage.paid, outcome=Outcome.paid, outstanding="0")
    store.record(RecordRequest(snapshot=paid))

    assert [r.invoice_id for r in store.list_invoices(outcome="paid")] == ["PAID"]
    # On 2026-12-31: OLD is 91 days overdue, NEW 30; a closed journey is never "overdue".
    overdue_60 = store.list_invoices(due_before=date(2026, 12, 31) - timedelta(days=59))
    assert [r.invoice_id for r in overdue_60] == ["OLD"]
    overdue_1 = store.list_invoices(due_before=date(2026, 12, 31))
    assert sorted(r.invoice_id for r in overdue_1) == ["NEW", "OLD"]
