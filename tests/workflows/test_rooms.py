"""The journey's and the plan's pure parts, without Temporal: holds, the promise, the ladder's
position and times, hold deadlines, and the plan's ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from workflows.journey import holds
from workflows.journey.ladder import Ladder
from workflows.journey.state import (
    CALL,
    DISPUTE,
    PAUSE,
    PROMISE,
    Dispute,
    JourneyState,
    Promise,
)
from workflows.models import (
    Customer,
    InstalmentStatus,
    InstalmentView,
    Invoice,
    Outcome,
    Pause,
    PaymentReceived,
    PlanView,
    PromiseToPay,
    Stage,
)
from workflows.plan import ledger
from workflows.policy import STANDARD_POLICY, Tone

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
CUSTOMER = Customer(id="C-1", name="De Vries", timezone="Europe/Amsterdam", country="NL")


def state(amount: str = "100.00") -> JourneyState:
    return JourneyState(customer=CUSTOMER, outstanding=Decimal(amount))


def test_overlapping_holds_shift_the_ladder_once_by_their_union() -> None:
    s = state()
    s.holds.hold(DISPUTE, T0)
    s.holds.hold(PAUSE, T0 + timedelta(days=2))
    s.holds.release(DISPUTE, T0 + timedelta(days=3))
    assert s.holds.shift == timedelta(0)  # still paused
    s.holds.release(PAUSE, T0 + timedelta(days=5))
    assert s.holds.shift == timedelta(days=5)
    assert not s.holds


def test_waiting_for_a_key_customers_call_does_not_shift_the_ladder() -> None:
    s = state()
    s.holds.hold(CALL, T0)
    s.holds.release(CALL, T0 + timedelta(days=4))
    assert s.holds.shift == timedelta(0)


def test_stage_follows_the_strongest_hold_then_the_outcome() -> None:
    s = state()
    assert s.stage(steps=7) == Stage.scheduled
    s.holds.hold(PROMISE, T0)
    s.holds.hold(DISPUTE, T0)
    assert s.stage(steps=7) == Stage.disputed
    s.close(Outcome.paid)
    assert s.stage(steps=7) == Stage.paid and not s.holds


def test_a_promise_of_part_is_kept_once_that_part_is_paid() -> None:
    promise = Promise()
    replaced = promise.make(PromiseToPay(promised_on=date(2026, 12, 5), amount=Decimal(40)), T0)
    assert not replaced and promise.made == 1
    assert not promise.pay(Decimal(30), outstanding=Decimal(70))
    assert promise.pay(Decimal(10), outstanding=Decimal(60))


def test_a_payment_in_full_settles_to_zero_and_reports_the_surplus() -> None:
    s = state("100.00")
    s.take_payment(PaymentReceived(amount=Decimal("60.00"), reference="A"))
    assert s.settle() is None and s.outstanding == Decimal("40.00")
    s.take_payment(PaymentReceived(amount=Decimal("45.50"), reference="B"))
    assert s.settle() == Decimal("5.50")
    assert s.outstanding == 0 and str(s.outstanding) == "0.00"


def test_the_ladder_never_softens_after_a_floor() -> None:
    s = state()
    s.ladder.used(Tone.firm)
    s.ladder.used(Tone.friendly)
    assert s.ladder.last_tone == Tone.firm
    assert s.ladder.at_least(Tone.neutral) == Tone.firm
    s.ladder.tone_floor = Tone.neutral
    assert s.ladder.too_soft(Tone.friendly) and not s.ladder.too_soft(Tone.final)


def test_hold_deadlines_name_the_earliest_and_what_expired() -> None:
    s = state()
    s.holds.hold(DISPUTE, T0)
    s.dispute = Dispute(reason="price", opened_at=T0)
    s.holds.hold(PAUSE, T0)
    s.pause = Pause(reason="holiday", until=T0 + timedelta(days=3))
    deadline = holds.next_deadline(s, STANDARD_POLICY)
    assert deadline is not None and deadline.what == "end of pause"
    expired = holds.expired(s, STANDARD_POLICY, T0 + timedelta(days=3))
    assert expired.pause and not expired.dispute_review and not expired.promise


def test_one_catch_up_step_after_a_late_start_and_times_move_with_the_shift() -> None:
    invoice = Invoice(
        invoice_id="I-1",
        amount=Decimal(100),
        currency="EUR",
        issued_on=date(2026, 10, 1),
        due_on=date(2026, 11, 2),
        payment_url="https://pay.example/I-1",
        customer=CUSTOMER,
    )
    ladder, s = Ladder(invoice, STANDARD_POLICY), state()
    skipped = ladder.catch_up(s, datetime(2026, 11, 12, 12, tzinfo=UTC))
    assert skipped == ["before_due", "overdue_1"]  # due+7d is the one to send
    at = ladder.step_at(s, s.ladder.next_index)
    s.holds.shift = timedelta(days=2)
    assert ladder.step_at(s, s.ladder.next_index) >= at + timedelta(days=2)
    assert ladder.next_action(s) is not None
    s.holds.hold(PAUSE, T0)
    assert ladder.next_action(s) is None


def test_a_payment_fills_the_earliest_instalments_first() -> None:
    view = PlanView(
        number=1,
        workflow_id="p",
        currency="EUR",
        total=Decimal(300),
        outstanding=Decimal(300),
        instalments=[
            InstalmentView(number=n, due_on=date(2027, n, 1), amount=Decimal(100))
            for n in (1, 2, 3)
        ],
    )
    assert ledger.allocate(view, Decimal(150)) == [1]
    current = ledger.current(view)
    assert current is not None and current.number == 2 and current.paid == Decimal(50)
    assert ledger.allocate(view, Decimal(150)) == [2, 3]
    assert all(i.status == InstalmentStatus.paid for i in view.instalments)
    assert view.outstanding == 0 and ledger.current(view) is None


def test_workflows_import_nothing_from_the_database_the_api_or_the_providers() -> None:
    """The worker runs `workflows/` unsandboxed: it must stay pure."""
    import subprocess
    import sys

    probe = (
        "import sys, workflows.journey, workflows.plan, workflows.sandbox;"
        "banned = {'sqlalchemy', 'sendgrid', 'twilio', 'api', 'db', 'activities', 'httpx',"
        " 'fastapi', 'settings'};"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
