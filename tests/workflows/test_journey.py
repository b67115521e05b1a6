"""The journey in Temporal's time-skipping environment: the ladder, payments, disputes, pauses."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tests.workflows.conftest import FakeActivities, Journeys, pay
from workflows.journey import InvoiceJourney
from workflows.models import (
    ChannelOptedIn,
    ChannelOptedOut,
    Close,
    ContactChanged,
    DebtorReplied,
    DisputeOutcome,
    MessageBounced,
    OpenDispute,
    Outcome,
    Pause,
    ResolveDispute,
    Resume,
    Stage,
    TaskCompleted,
)
from workflows.policy import Channel
from workflows.schedule import spread_offset

pytestmark = pytest.mark.asyncio(loop_scope="session")

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


async def test_standard_ladder_escalates_in_order_and_hands_over_at_60_days(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=10))
    due = (await handle.query(InvoiceJourney.status)).due_on
    result = await handle.result()

    assert result.outcome == Outcome.handed_over
    assert result.stage == Stage.handed_over
    assert fakes.templates == [
        "reminder_before_due",
        "overdue_1",
        "overdue_2",
        "overdue_3",
        "final_notice",
    ]
    assert [s.tone for s in fakes.sent] == ["friendly", "friendly", "neutral", "firm", "final"]
    assert fakes.sent[2].channels == [Channel.email, Channel.sms]
    for sent in fakes.sent:  # inside the debtor's send window, on a working day
        local = sent.at.astimezone(AMSTERDAM)
        assert local.weekday() < 5 and 9 <= local.hour < 17, local
    assert fakes.tasks() == ["call_debtor", "hand_over"]
    closed = next(e for e in fakes.events if e.kind == "closed")
    assert (closed.at.astimezone(AMSTERDAM).date() - due).days >= 60
    assert fakes.kinds()[0] == "journey_started"


async def test_paid_after_second_reminder_stops_the_ladder_and_thanks(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    assert fakes.templates == ["reminder_before_due", "overdue_1"]
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    result = await handle.result()

    assert result.outcome == Outcome.paid and result.outstanding == 0
    assert fakes.templates == ["reminder_before_due", "overdue_1", "thank_you"]
    assert fakes.sent[-1].channels == [Channel.email]  # one thank-you, not one per channel


async def test_partial_payment_lowers_the_amount_in_later_messages(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.signal(InvoiceJourney.payment_received, pay("250.00", "BANK-1"))
    await journeys.until(lambda: len(fakes.sent) == 3)

    assert fakes.sent[1].outstanding == Decimal("1250.00")
    assert fakes.sent[2].template == "overdue_2"
    assert fakes.sent[2].outstanding == Decimal("1000.00")
    status = await handle.query(InvoiceJourney.status)
    assert status.outstanding == Decimal("1000.00") and status.stage == Stage.reminding
    await handle.signal(InvoiceJourney.payment_received, pay("1000.00", "BANK-2"))
    assert (await handle.result()).outcome == Outcome.paid


async def test_duplicate_payment_reference_counts_once(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=20))
    for _ in range(3):
        await handle.signal(InvoiceJourney.payment_received, pay("500.00", "BANK-1"))
    await journeys.sleep(timedelta(hours=1))
    status = await handle.query(InvoiceJourney.status)

    assert status.outstanding == Decimal("750.00")
    assert status.payments == ["BANK-1"]
    assert fakes.kinds().count("payment") == 1


async def test_overpayment_closes_paid_and_flags_the_surplus(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=20))
    await handle.signal(InvoiceJourney.payment_received, pay("1300.00", "BANK-1"))
    result = await handle.result()

    assert result.outcome == Outcome.paid
    assert "overpayment" in fakes.tasks()
    assert fakes.templates == ["thank_you"]


async def test_dispute_stops_chasing_creates_review_task_and_rejection_resumes(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    answer = await handle.execute_update(
        InvoiceJourney.open_dispute, OpenDispute(reason="goods damaged")
    )
    assert answer.stage == Stage.disputed

    await journeys.sleep(timedelta(days=20))  # past dispute_review_after (14 days)
    assert len(fakes.sent) == 2, "nothing may be sent while the dispute is open"
    assert fakes.tasks() == ["review_dispute"]
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.disputed

    answer = await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    assert answer.stage == Stage.reminding
    await journeys.until(lambda: len(fakes.sent) == 3)
    assert fakes.templates[2] == "dispute_review"
    # The ladder resumes shifted by the dispute: overdue_2 (due+7) comes about 20 days late.
    status = await handle.query(InvoiceJourney.status)
    assert status.next_action is not None and status.next_action.step == "overdue_2"
    assert (status.next_action.at.date() - status.due_on).days >= 7 + 19


async def test_dispute_upheld_closes_the_journey_cancelled(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="never ordered"))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.upheld)
    )
    result = await handle.result()

    assert result.outcome == Outcome.cancelled
    assert fakes.sent == []


async def test_dispute_adjusted_sets_the_outstanding_amount(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(
        InvoiceJourney.open_dispute, OpenDispute(reason="two items missing")
    )
    answer = await handle.execute_update(
        InvoiceJourney.resolve_dispute,
        ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("900.00")),
    )
    assert answer.outstanding == Decimal("900.00")
    await journeys.until(lambda: len(fakes.sent) == 4)

    assert fakes.templates[2] == "dispute_review"
    assert fakes.sent[2].request.extra == {"outcome": "adjusted"}
    assert fakes.sent[3].template == "overdue_2"
    assert fakes.sent[3].outstanding == Decimal("900.00")


async def test_refused_commands_leave_the_journey_as_it_was(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
        )
    assert "no open dispute" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(InvoiceJourney.resume, Resume())
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="wrong price"))
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="twice"))
    assert "already open" in str(again.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as too_much:
        await handle.execute_update(
            InvoiceJourney.resolve_dispute,
            ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("5000")),
        )
    assert "more than the outstanding" in str(too_much.value.cause)
    assert fakes.kinds().count("dispute_opened") == 1
    await handle.execute_update(InvoiceJourney.cancel, Close(reason="credit note"))
    assert (await handle.result()).outcome == Outcome.cancelled
    # The time-skipping server words it "update … not found", the real one "already completed".
    with pytest.raises(RPCError, match=r"(not found|already completed)") as closed:
        await handle.execute_update(InvoiceJourney.pause, Pause(reason="late"))
    assert closed.value.status == RPCStatusCode.NOT_FOUND


async def test_pause_holds_every_step_and_resume_shifts_the_rest(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    answer = await handle.execute_update(InvoiceJourney.pause, Pause(reason="customer on holiday"))
    assert answer.stage == Stage.paused
    await journeys.sleep(timedelta(days=30))
    assert len(fakes.sent) == 2

    await handle.execute_update(InvoiceJourney.resume, Resume(reason="back"))
    await journeys.sleep(timedelta(hours=1))
    assert len(fakes.sent) == 2, "no burst of catch-up messages after a pause"
    status = await handle.query(InvoiceJourney.status)
    assert status.next_action is not None and status.next_action.step == "overdue_2"
    assert (status.next_action.at.date() - status.due_on).days >= 7 + 29
    await journeys.until(lambda: len(fakes.sent) == 4)
    assert fakes.templates[2:4] == ["overdue_2", "overdue_3"]


async def test_pause_until_resumes_by_itself(journeys: Journeys, fakes: FakeActivities) -> None:
    handle = await journeys.start(due_in=timedelta(days=20))
    now = await journeys.env.get_current_time()
    await handle.execute_update(
        InvoiceJourney.pause, Pause(reason="call back", until=now + timedelta(days=3))
    )
    await journeys.sleep(timedelta(days=4))
    status = await handle.query(InvoiceJourney.status)
    assert status.stage == Stage.scheduled
    assert "resumed" in fakes.kinds()


async def test_cancel_and_write_off_close_with_their_outcome(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    first = await journeys.start("INV-C", due_in=timedelta(days=5))
    await first.execute_update(InvoiceJourney.cancel, Close(reason="credit note"))
    second = await journeys.start("INV-W", due_in=timedelta(days=5))
    await second.execute_update(InvoiceJourney.write_off, Close(reason="debtor bankrupt"))

    assert (await first.result()).outcome == Outcome.cancelled
    assert (await second.result()).outcome == Outcome.written_off
    assert fakes.sent == []


async def test_late_start_sends_one_catch_up_message(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    await journeys.start(due_in=timedelta(days=-20))  # due+1, +7 and +14 already passed
    await journeys.until(lambda: len(fakes.sent) == 1)
    await journeys.sleep(timedelta(days=5))  # the next step, final_notice, is due+30

    assert fakes.templates == ["overdue_3"]
    skipped = next(e for e in fakes.events if e.kind == "steps_skipped")
    assert skipped.detail["steps"] == ["before_due", "overdue_1", "overdue_2"]


async def test_a_step_due_on_christmas_goes_on_the_next_working_day_at_the_invoices_minute(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    now = await journeys.env.get_current_time()
    year = now.year if (now.month, now.day) < (12, 20) else now.year + 1
    due_at = datetime(year, 12, 24, 9, 0, tzinfo=AMSTERDAM)  # overdue_1 (+1 day): Christmas
    handle = await journeys.start(due_in=due_at - now)
    # The shared test server's clock may be months ahead of today: skip to just before the ladder.
    await journeys.sleep(due_at - now - timedelta(days=4))
    await journeys.until(lambda: len(fakes.sent) == 2, step=timedelta(hours=2))

    # The next day that is no weekend and neither Christmas day (both are public holidays in NL).
    day = date(year, 12, 25)
    while day.weekday() >= 5 or (day.month, day.day) in ((12, 25), (12, 26)):
        day += timedelta(days=1)
    minute = spread_offset(handle.id.removeprefix("invoice-"), timedelta(hours=1))
    opening = datetime(day.year, day.month, day.day, 9, 0, tzinfo=AMSTERDAM)
    assert fakes.sent[1].template == "overdue_1"
    assert abs(fakes.sent[1].at - (opening + minute)) < timedelta(seconds=1)
    assert timedelta(0) < minute < timedelta(hours=1)  # spread over the window's first hour


async def test_unreachable_debtor_becomes_a_task_not_a_silent_failure(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    fakes.bounce = {Channel.email}
    await journeys.start(due_in=timedelta(days=5), customer={"phone": None})
    await journeys.until(lambda: fakes.tasks().count("no_working_contact") == 2)
    # The bounce made email unreachable; with no phone, overdue_1 is not even attempted.
    assert [s.template for s in fakes.sent] == ["reminder_before_due"]


async def test_email_bounce_falls_back_to_sms_for_the_step_and_what_follows(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    fakes.bounce = {Channel.email}
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    # before_due is an email step: the refused address sends it on the debtor's phone instead.
    assert [(s.template, s.channels) for s in fakes.sent] == [
        ("reminder_before_due", []),
        ("reminder_before_due", [Channel.sms]),
    ]
    assert fakes.sent[1].request.key_prefix == fakes.sent[0].request.key_prefix
    assert "channel_fallback" in fakes.kinds()
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    await handle.result()
    # Email is known to be unusable now: the thank-you goes straight to SMS.
    assert fakes.sent[-1].template == "thank_you"
    assert fakes.sent[-1].channels == [Channel.sms]  # preferred email is gone: SMS first
    assert fakes.sent[-1].channels == [Channel.sms]
    assert fakes.tasks() == []


async def test_bounce_reported_later_resends_the_latest_message_once_elsewhere(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 1)
    assert fakes.sent[0].channels == [Channel.email]
    bounce = MessageBounced(
        message_key=f"{handle.id}:before_due:email",
        channel=Channel.email,
        reason="550 no such user",
    )
    await handle.signal(InvoiceJourney.message_bounced, bounce)
    await handle.signal(InvoiceJourney.message_bounced, bounce)  # the provider said it twice
    await journeys.until(lambda: len(fakes.sent) == 2, step=timedelta(minutes=10))
    await journeys.sleep(timedelta(hours=1))

    assert [(s.template, s.channels) for s in fakes.sent] == [
        ("reminder_before_due", [Channel.email]),
        ("reminder_before_due", [Channel.sms]),
    ]
    assert fakes.kinds().count("message_bounced") == 1
    assert "message_resent" in fakes.kinds()
    status = await handle.query(InvoiceJourney.status)
    assert status.next_action is not None and status.next_action.step == "overdue_1"
    # Later email steps go to the phone: overdue_1 is an email step.
    await journeys.until(lambda: len(fakes.sent) == 3)
    assert (fakes.sent[2].template, fakes.sent[2].channels) == ("overdue_1", [Channel.sms])


async def test_a_new_email_address_makes_email_usable_again_after_a_bounce(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 1)
    await journeys.sleep(timedelta(minutes=1))  # the journey has taken the send's result
    # The latest message bounces (however far the shared server's clock moved meanwhile).
    latest = fakes.sent[-1]
    count = len(fakes.sent)
    bounce = MessageBounced(message_key=f"{latest.request.key_prefix}:email", channel=Channel.email)
    await handle.signal(InvoiceJourney.message_bounced, bounce)
    await journeys.until(lambda: len(fakes.sent) > count, step=timedelta(minutes=10))
    resent = fakes.sent[count]
    # The same message again, and the bounced address is not tried again.
    assert (resent.template, resent.channels) == (latest.template, [Channel.sms])

    # What `PUT /v1/invoices/{id}/contact` signals: the debtor gave a working address.
    await handle.signal(
        InvoiceJourney.contact_changed, ContactChanged(email="ap@new.example", actor="agent")
    )
    await journeys.until(lambda: len(fakes.sent) > count + 1)
    following = fakes.sent[count + 1]
    assert following.channels == [Channel.email] and following.template != latest.template
    assert following.request.invoice.customer.email == "ap@new.example"
    assert "contact_changed" in fakes.kinds()


async def test_bounce_with_no_other_contact_asks_an_agent(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5), customer={"phone": None})
    await journeys.until(lambda: len(fakes.sent) == 1)
    await handle.signal(
        InvoiceJourney.message_bounced,
        MessageBounced(message_key=f"{handle.id}:before_due:email", channel=Channel.email),
    )
    await journeys.until(lambda: "no_working_contact" in fakes.tasks(), step=timedelta(hours=1))
    assert len(fakes.sent) == 1


async def test_opt_out_and_back_in_decide_the_texts(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=1))
    await handle.signal(InvoiceJourney.channel_opted_out, ChannelOptedOut(channel=Channel.sms))
    await journeys.until(lambda: "overdue_2" in fakes.templates)
    assert fakes.sent[-1].channels == [Channel.email]  # overdue_2 is email + SMS
    await handle.signal(InvoiceJourney.channel_opted_in, ChannelOptedIn(channel=Channel.sms))
    await journeys.until(lambda: "final_notice" in fakes.templates)
    assert fakes.sent[-1].channels == [Channel.email, Channel.sms]
    assert fakes.kinds().count("opted_out") == 1 and fakes.kinds().count("opted_in") == 1


async def test_key_customer_gets_a_personal_call_before_any_message(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5), customer={"kind": "key"})
    await journeys.sleep(timedelta(days=10))
    assert fakes.sent == []
    assert fakes.tasks() == ["personal_call"]
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.agent

    await handle.signal(
        InvoiceJourney.task_completed,
        TaskCompleted(task_id="t1", kind="personal_call", note="will pay friday"),
    )
    await journeys.until(lambda: len(fakes.sent) == 1)
    # The call took the place of the early reminders: one catch-up message, not a burst.
    assert fakes.templates == ["overdue_1"]


async def test_dispute_during_a_provider_outage_is_answered_and_withdraws_the_send(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    fakes.outage = True
    handle = await journeys.start(due_in=timedelta(days=2))  # before_due is due at once
    await journeys.until(lambda: fakes.attempts >= 2, step=timedelta(seconds=20))

    opened = handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="wrong"))
    answer = await asyncio.wait_for(opened, timeout=30)  # answered despite the stuck send
    assert answer.stage == Stage.disputed
    fakes.outage = False
    await journeys.sleep(timedelta(days=3))
    assert fakes.sent == [], "a send retrying when the dispute opened must not go out"
    assert "message_withdrawn" in fakes.kinds()

    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.until(lambda: len(fakes.sent) >= 1)
    assert fakes.templates[0] == "reminder_before_due"  # the withdrawn step, sent after all


async def test_a_reply_holds_the_reminders_for_three_working_days(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(hours=12))  # before_due goes out at once
    await journeys.until(lambda: len(fakes.sent) == 1)
    reply = DebtorReplied(channel=Channel.email, text="I paid yesterday", reference="sg-1")
    await handle.signal(InvoiceJourney.debtor_replied, reply)
    await handle.signal(InvoiceJourney.debtor_replied, reply)  # the provider posted it twice
    # overdue_1 (due + 1 day) falls due 36 hours from now; the hold lasts 3 working days or more.
    await journeys.sleep(timedelta(days=2, hours=20))
    assert fakes.templates == ["reminder_before_due"]
    status = await handle.query(InvoiceJourney.status)
    assert status.stage == Stage.agent
    assert fakes.tasks() == ["reply"]
    assert fakes.kinds().count("debtor_reply") == 1

    await journeys.until(lambda: len(fakes.sent) == 2, step=timedelta(hours=6))
    assert fakes.templates == ["reminder_before_due", "overdue_1"]
    assert "resumed" in fakes.kinds()


async def test_an_agent_answering_the_reply_lets_the_reminders_go_on(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=2))
    await journeys.until(lambda: len(fakes.sent) == 1)
    reply = DebtorReplied(channel=Channel.sms, text="Can I pay next month?", reference="SM1")
    await handle.signal(InvoiceJourney.debtor_replied, reply)
    await journeys.sleep(timedelta(hours=1))
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.agent
    await handle.signal(
        InvoiceJourney.task_completed, TaskCompleted(task_id="t1", kind="reply", note="called")
    )
    await journeys.sleep(timedelta(hours=1))
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.reminding


async def test_a_dispute_from_the_debtors_page_is_confirmed_at_once_an_agents_is_not(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    debtor = await journeys.start(due_in=timedelta(days=10))
    await debtor.execute_update(
        InvoiceJourney.open_dispute, OpenDispute(reason="already_paid", actor="debtor")
    )
    await journeys.until(lambda: "dispute_received" in fakes.templates)
    assert (await debtor.query(InvoiceJourney.status)).stage == Stage.disputed
    await journeys.sleep(timedelta(days=5))  # the hold stays: nothing else goes out
    assert fakes.templates == ["dispute_received"]

    agent = await journeys.start("INV-2", due_in=timedelta(days=10))
    await agent.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="on the phone"))
    await journeys.sleep(timedelta(days=1))
    assert fakes.templates == ["dispute_received"]
