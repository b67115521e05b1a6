"""Promises to pay and instalment plans, in Temporal's time-skipping environment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.workflows.conftest import FakeActivities, Journeys, pay, run_lengths, today
from workflows.journey import InvoiceJourney
from workflows.models import (
    AgreeArrangement,
    CancelArrangement,
    ChannelOptedOut,
    ContactChanged,
    DisputeOutcome,
    Instalment,
    MessageBounced,
    OpenDispute,
    Outcome,
    PlanOutcome,
    PlanResult,
    PromiseToPay,
    ResolveDispute,
    Stage,
)
from workflows.policy import Channel

pytestmark = pytest.mark.asyncio(loop_scope="session")

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


async def refusal(call: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await call
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def plan_of(days_and_amounts: list[tuple[date, str]]) -> AgreeArrangement:
    return AgreeArrangement(
        instalments=[Instalment(due_on=d, amount=Decimal(a)) for d, a in days_and_amounts]
    )


def plan_handle(
    journeys: Journeys, journey: WorkflowHandle[Any, Any], number: int
) -> WorkflowHandle[Any, Any]:
    return journeys.env.client.get_workflow_handle(
        f"{journey.id}-plan-{number}", result_type=PlanResult
    )


# ---- promises ----------------------------------------------------------------------------------


async def test_promise_kept_in_full_closes_the_journey_without_more_reminders(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: fakes.templates == ["reminder_before_due", "overdue_1"])
    promised_on = await today(journeys) + timedelta(days=10)
    answer = await handle.execute_update(
        InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=promised_on)
    )
    assert answer.stage == Stage.promised
    # The ladder would have sent overdue_2 six days after overdue_1; the promise holds it back.
    await journeys.sleep(timedelta(days=9))
    assert fakes.templates == ["reminder_before_due", "overdue_1"]
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    result = await handle.result()

    assert result.outcome == Outcome.paid
    assert fakes.templates == ["reminder_before_due", "overdue_1", "thank_you"]
    assert "promise" in fakes.kinds()


async def test_promised_part_paid_resumes_for_the_remainder_with_a_friendly_note(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    promise = PromiseToPay(
        promised_on=await today(journeys) + timedelta(days=5), amount=Decimal("500.00")
    )
    await handle.execute_update(InvoiceJourney.promise_to_pay, promise)
    await handle.signal(InvoiceJourney.payment_received, pay("500.00", "BANK-1"))
    await journeys.until(lambda: "promise_kept" in fakes.templates)

    status = await handle.query(InvoiceJourney.status)
    assert status.stage == Stage.reminding and status.outstanding == Decimal("750.00")
    kept = fakes.sent[-1]
    assert kept.tone == "friendly" and kept.outstanding == Decimal("750.00")
    await journeys.until(lambda: "overdue_2" in fakes.templates)  # the ladder goes on
    assert fakes.sent[-1].outstanding == Decimal("750.00")


async def test_broken_promise_sends_one_message_then_the_ladder_resumes_shifted(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    overdue_1_at = fakes.sent[-1].at
    promised_on = await today(journeys) + timedelta(days=4)
    await handle.execute_update(
        InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=promised_on)
    )
    await journeys.until(lambda: "promise_broken" in fakes.templates)
    broken = fakes.sent[-1]
    # Not before the promised day plus the policy's grace (two days).
    assert broken.at.astimezone(AMSTERDAM).date() >= promised_on + timedelta(days=2)
    assert broken.request.extra["promised_date"] == promised_on.isoformat()
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.reminding

    await journeys.until(lambda: "overdue_2" in fakes.templates)
    overdue_2 = fakes.sent[-1]
    # overdue_2 is six days after overdue_1 on the ladder (eight at most with a weekend); the
    # promise (about six days from promise to broken) moved it by its length. Each send is
    # stamped when its activity ran, a millisecond or so after its moment (one CI run measured
    # ten days less one millisecond), so the comparison is to the second.
    tick = timedelta(seconds=1)
    assert overdue_2.at - overdue_1_at >= timedelta(days=10) - tick
    assert overdue_2.at - broken.at >= timedelta(days=4) - tick
    assert fakes.templates.count("promise_broken") == 1


async def test_a_second_promise_replaces_the_first_and_a_third_makes_an_agent_task(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day + timedelta(days=3))
    )
    await handle.execute_update(
        InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day + timedelta(days=12))
    )
    await journeys.sleep(timedelta(days=8))  # past the first promise and its grace
    assert "promise_broken" not in fakes.templates
    cause = await refusal(
        handle.execute_update(
            InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day + timedelta(days=20))
        )
    )
    assert cause.type == "PromiseLimitReached"
    assert "agree_plan" in fakes.tasks()
    status = await handle.query(InvoiceJourney.status)
    assert status.stage == Stage.promised and status.promises_made == 2


async def test_promise_validation_names_the_problem(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    day = await today(journeys)
    past = await refusal(
        handle.execute_update(
            InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day - timedelta(days=1))
        )
    )
    assert past.type == "InvalidPromise" and "in the past" in past.message
    far = await refusal(
        handle.execute_update(
            InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day + timedelta(days=45))
        )
    )
    assert far.type == "InvalidPromise" and "promise_max_delay" in far.message
    too_much = await refusal(
        handle.execute_update(
            InvoiceJourney.promise_to_pay,
            PromiseToPay(promised_on=day + timedelta(days=3), amount=Decimal("2000.00")),
        )
    )
    assert too_much.type == "InvalidAmount" and "1250.00" in too_much.message
    assert (await handle.query(InvoiceJourney.status)).promises_made == 0


# ---- instalment plans --------------------------------------------------------------------------


async def test_three_instalments_paid_on_time_close_the_journey_paid(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    dues = [day + timedelta(days=n) for n in (10, 40, 70)]
    answer = await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(dues[0], "400.00"), (dues[1], "400.00"), (dues[2], "450.00")]),
    )
    assert answer.stage == Stage.arrangement
    plan = plan_handle(journeys, handle, 1)
    for number, amount in enumerate(("400.00", "400.00", "450.00"), start=1):
        await journeys.until(
            lambda n=number: fakes.templates.count("instalment_reminder") == n,  # type: ignore[misc]
            step=timedelta(hours=12),
        )
        reminder = fakes.sent[-1]
        assert reminder.request.extra["instalment_number"] == str(number)
        local = reminder.at.astimezone(AMSTERDAM).date()
        assert timedelta(0) < dues[number - 1] - local <= timedelta(days=5)  # days before
        await handle.signal(InvoiceJourney.payment_received, pay(amount, f"BANK-{number}"))
    result = await handle.result()
    plan_result = await plan.result()

    assert result.outcome == Outcome.paid
    assert plan_result.outcome == PlanOutcome.completed
    assert [i.status for i in plan_result.view.instalments] == ["paid"] * 3
    assert fakes.templates == [
        "reminder_before_due",
        "overdue_1",
        "arrangement_agreed",
        "instalment_reminder",
        "instalment_paid",
        "instalment_reminder",
        "instalment_paid",
        "instalment_reminder",
        "thank_you",
    ]


async def test_a_late_instalment_inside_the_grace_gets_one_message_and_the_plan_goes_on(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "600.00"), (day + timedelta(days=40), "650.00")]),
    )
    await journeys.until(lambda: "instalment_missed" in fakes.templates, step=timedelta(hours=12))
    missed = fakes.sent[-1]
    assert missed.request.extra["instalment_number"] == "1" and missed.tone == "neutral"
    await journeys.sleep(timedelta(days=2))  # still inside the five days' grace
    await handle.signal(InvoiceJourney.payment_received, pay("600.00", "BANK-1"))
    await journeys.until(lambda: "instalment_paid" in fakes.templates)
    await handle.signal(InvoiceJourney.payment_received, pay("650.00", "BANK-2"))
    result = await handle.result()

    assert result.outcome == Outcome.paid
    assert fakes.templates.count("instalment_missed") == 1
    assert "arrangement_lapsed" not in fakes.templates


async def test_a_default_resumes_escalation_on_what_is_still_outstanding(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "400.00"), (day + timedelta(days=40), "850.00")]),
    )
    await journeys.until(lambda: "instalment_reminder" in fakes.templates, step=timedelta(hours=12))
    await handle.signal(InvoiceJourney.payment_received, pay("400.00", "BANK-1"))
    await journeys.until(lambda: "arrangement_lapsed" in fakes.templates, step=timedelta(hours=12))
    plan_result = await plan_handle(journeys, handle, 1).result()
    lapsed = fakes.sent[-1]

    assert plan_result.outcome == PlanOutcome.defaulted
    assert plan_result.paid == Decimal("400.00") and plan_result.outstanding == Decimal("850.00")
    assert lapsed.outstanding == Decimal("850.00") and lapsed.tone == "neutral"
    assert fakes.templates.count("instalment_missed") == 1
    await journeys.until(lambda: "overdue_2" in fakes.templates)
    resumed = fakes.sent[-1]
    assert resumed.outstanding == Decimal("850.00") and resumed.tone == "neutral"
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.reminding


async def test_a_renegotiated_plan_ends_the_old_one_and_starts_plan_2(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "250.00"), (day + timedelta(days=20), "1000.00")]),
    )
    await handle.signal(InvoiceJourney.payment_received, pay("250.00", "BANK-1"))
    await journeys.until(lambda: "instalment_paid" in fakes.templates)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=20), "500.00"), (day + timedelta(days=50), "500.00")]),
    )
    first = await plan_handle(journeys, handle, 1).result()
    assert first.outcome == PlanOutcome.superseded
    await journeys.until(lambda: fakes.templates.count("arrangement_agreed") == 2)
    assert (await handle.query(InvoiceJourney.status)).plan_number == 2
    await handle.signal(InvoiceJourney.payment_received, pay("500.00", "BANK-2"))
    await handle.signal(InvoiceJourney.payment_received, pay("500.00", "BANK-3"))
    result = await handle.result()
    second = await plan_handle(journeys, handle, 2).result()

    assert result.outcome == Outcome.paid
    assert second.outcome == PlanOutcome.completed and second.paid == Decimal("1000.00")


async def test_a_dispute_during_a_plan_stops_its_reminders_and_the_plan_can_be_cancelled(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "600.00"), (day + timedelta(days=40), "650.00")]),
    )
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates)
    answer = await handle.execute_update(
        InvoiceJourney.open_dispute, OpenDispute(reason="goods damaged")
    )
    assert answer.stage == Stage.disputed
    sent_before = len(fakes.sent)
    await journeys.sleep(timedelta(days=25))  # past the reminder, the due day and the grace
    assert len(fakes.sent) == sent_before
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    # The grace moved with the dispute: the plan still runs and says the instalment is late.
    await journeys.until(lambda: "instalment_missed" in fakes.templates)
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.arrangement

    await handle.execute_update(
        InvoiceJourney.cancel_arrangement, CancelArrangement(reason="debtor asked")
    )
    cancelled = await plan_handle(journeys, handle, 1).result()
    assert cancelled.outcome == PlanOutcome.cancelled
    await journeys.until(lambda: "overdue_2" in fakes.templates)
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.reminding


async def test_arrangement_validation_names_the_problem(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    day = await today(journeys)
    short = await refusal(
        handle.execute_update(
            InvoiceJourney.agree_arrangement,
            plan_of([(day + timedelta(days=5), "600.00"), (day + timedelta(days=9), "600.00")]),
        )
    )
    assert short.type == "InvalidArrangement" and "add up to EUR 1200.00" in short.message
    unordered = await refusal(
        handle.execute_update(
            InvoiceJourney.agree_arrangement,
            plan_of([(day + timedelta(days=9), "600.00"), (day + timedelta(days=5), "650.00")]),
        )
    )
    assert "instalment 2" in unordered.message and "ascending" in unordered.message
    cents = await refusal(
        handle.execute_update(
            InvoiceJourney.agree_arrangement,
            plan_of([(day + timedelta(days=9), "600.001"), (day + timedelta(days=19), "650")]),
        )
    )
    assert "instalment 1" in cents.message and "decimals" in cents.message
    many = await refusal(
        handle.execute_update(
            InvoiceJourney.agree_arrangement,
            plan_of([(day + timedelta(days=n + 1), "1.00") for n in range(37)]),
        )
    )
    assert "more than the policy allows (36)" in many.message
    none = await refusal(
        handle.execute_update(
            InvoiceJourney.cancel_arrangement, CancelArrangement(reason="no plan")
        )
    )
    assert none.type == "NoArrangement"


async def test_a_36_month_plan_continues_as_new_and_completes(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=2))
    await journeys.until(lambda: len(fakes.sent) == 1)
    day = await today(journeys)
    months = [
        date(day.year + (day.month + n - 1) // 12, (day.month + n - 1) % 12 + 1, 15)
        for n in range(1, 37)
    ]
    amounts = ["35.00"] * 35 + ["25.00"]
    await handle.execute_update(
        InvoiceJourney.agree_arrangement, plan_of(list(zip(months, amounts, strict=True)))
    )
    for number, amount in enumerate(amounts, start=1):
        await journeys.until(
            lambda n=number: fakes.templates.count("instalment_reminder") == n,  # type: ignore[misc]
            step=timedelta(days=2),
            limit=timedelta(days=70),
        )
        await handle.signal(InvoiceJourney.payment_received, pay(amount, f"BANK-{number}"))
    result = await handle.result()
    assert result.outcome == Outcome.paid

    plan = plan_handle(journeys, handle, 1)
    plan_result = await plan.result()
    assert plan_result.outcome == PlanOutcome.completed
    # More than one run, none near the limits.
    runs = await run_lengths(journeys.env.client, plan.id)
    assert len(runs) >= 2, runs
    assert max(runs) <= 600, runs


async def test_contact_changes_during_a_plan_reach_the_plans_messages(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "600.00"), (day + timedelta(days=40), "650.00")]),
    )
    await handle.signal(
        InvoiceJourney.contact_changed, ContactChanged(email="finance@devries.example")
    )
    await handle.signal(InvoiceJourney.payment_received, pay("600.00", "BANK-1"))
    await journeys.until(lambda: "instalment_paid" in fakes.templates)
    confirmation = fakes.sent[-1]
    assert confirmation.request.invoice.customer.email == "finance@devries.example"
    assert confirmation.channels == [Channel.email]

    await handle.signal(InvoiceJourney.channel_opted_out, ChannelOptedOut(channel=Channel.email))
    await journeys.until(lambda: fakes.templates.count("instalment_reminder") == 1)
    assert fakes.sent[-1].channels == [Channel.sms]


async def test_a_bounced_plan_message_is_sent_again_on_another_channel(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.agree_arrangement,
        plan_of([(day + timedelta(days=10), "600.00"), (day + timedelta(days=40), "650.00")]),
    )
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))
    agreed = fakes.sent[-1]
    assert agreed.channels == [Channel.email]
    bounce = MessageBounced(
        message_key=f"{agreed.request.key_prefix}:email",
        channel=Channel.email,
        reason="mailbox full",
    )
    await handle.signal(InvoiceJourney.message_bounced, bounce)
    await journeys.until(
        lambda: fakes.templates.count("arrangement_agreed") == 2, step=timedelta(hours=1)
    )
    again = fakes.sent[-1]
    assert again.channels == [Channel.sms]
    assert again.request.key_prefix == agreed.request.key_prefix  # one message, another channel
    assert "message_bounced" in fakes.kinds()
    # The plan's later messages avoid the bounced address too.
    await journeys.until(lambda: "instalment_reminder" in fakes.templates)
    assert fakes.sent[-1].channels == [Channel.sms]
