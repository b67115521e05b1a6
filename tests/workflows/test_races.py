"""The journey's races: a plan that ends unexpectedly or is still starting, one-off messages that
meet a hold, signals that arrive while the last record is written, and a journey that continues as
new. Each of these failed (or lost something) before the engine issue closed it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    StartChildWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from tests.workflows.conftest import (
    FakeActivities,
    Journeys,
    adjusted_while_the_old_plan_ends,
    adjusted_while_the_plan_is_cancelled,
    agreed_and_cancelled_in_one_task,
    agreed_then_adjusted,
    fake_workers,
    in_one_task,
    late_payments_while_closing,
    lone_plan,
    paid_while_falling_back,
    paid_while_the_plans_message_retries,
    pay,
    run_lengths,
    signal_while_the_plan_continues,
    today,
    two_instalments_from,
    within_seconds,
)
from workflows.journey import RECORD_ACTIVITY, InvoiceJourney
from workflows.journey.start import start_record
from workflows.models import (
    AgreeArrangement,
    CancelArrangement,
    Close,
    ContactChanged,
    DisputeOutcome,
    EndPlan,
    JourneyInput,
    MessageBounced,
    MessageRequest,
    OpenDispute,
    Outcome,
    Pause,
    PlanOutcome,
    PlanResult,
    RecordRequest,
    ResolveDispute,
    Resume,
    Stage,
)
from workflows.plan import InstalmentPlan
from workflows.policy import Channel

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def two_instalments(journeys: Journeys) -> AgreeArrangement:
    return two_instalments_from(await today(journeys))


def plan(journeys: Journeys, journey: WorkflowHandle[Any, Any], number: int = 1) -> Any:
    return journeys.env.client.get_workflow_handle(
        f"{journey.id}-plan-{number}", result_type=PlanResult
    )


class _SlowChildStarts(Interceptor):
    """A journey's plan child takes an hour (workflow time) to start, as on a busy server: the
    window in which the journey has asked for its plan and does not yet have it stays open."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _SlowInbound


class _SlowInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_SlowOutbound(outbound))


class _SlowOutbound(WorkflowOutboundInterceptor):
    async def start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> workflow.ChildWorkflowHandle[Any, Any]:
        await workflow.sleep(STARTING, summary="the plan child is slow to start (test)")
        return await super().start_child_workflow(input)


STARTING = timedelta(hours=1)


@pytest_asyncio.fixture(loop_scope="session")
async def slow_starts(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Journeys]:
    """Journeys whose plan child starts an hour after it was asked for."""
    fakes = FakeActivities()
    async with fake_workers(time_skipping_env.client, task_queue, fakes, [_SlowChildStarts()]):
        journeys = Journeys(time_skipping_env, task_queue, fakes)
        try:
            yield journeys
        finally:
            await journeys.finish()


# ---- the plan child ----------------------------------------------------------------------------


async def test_a_terminated_plan_is_taken_as_ended_and_the_reminders_resume(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))

    await plan(journeys, handle).terminate("an operator ended it by mistake")
    # Forwarded to a plan that no longer runs: taken as ended, never an error.
    await handle.signal(InvoiceJourney.contact_changed, ContactChanged(phone="+31687654321"))
    await journeys.until(lambda: "plan_ended" in fakes.tasks(), step=timedelta(minutes=10))
    ended = [e for e in fakes.events if e.kind == "arrangement_ended"]
    assert ended[-1].detail["outcome"] == "ended"
    assert "stopped unexpectedly" in ended[-1].detail["reason"]
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.reminding

    await journeys.until(lambda: "overdue_2" in fakes.templates)
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    result = await handle.result()
    assert result.outcome == Outcome.paid
    assert fakes.templates[-1] == "thank_you"


async def test_a_journey_paid_while_its_plan_starts_ends_the_plan_at_once(
    slow_starts: Journeys,
) -> None:
    journeys, fakes = slow_starts, slow_starts.fakes
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    # Paid in full while the plan is still starting: the journey closes as paid...
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    result = await handle.result()
    assert result.outcome == Outcome.paid
    # ...and the plan, once it runs, is told at once and ends without a word to the debtor.
    ended = await plan(journeys, handle).result()
    assert ended.outcome in (PlanOutcome.ended, PlanOutcome.completed)
    assert fakes.templates[-1] == "thank_you"
    sent_after = len(fakes.sent)
    await journeys.sleep(timedelta(days=30))
    assert len(fakes.sent) == sent_after  # nobody messages the debtor about a paid invoice


async def test_a_dispute_while_the_plan_starts_holds_the_plan(slow_starts: Journeys) -> None:
    """A dispute opened while the agreed plan is still starting stops the plan's messages too:
    nothing reaches the debtor while the dispute is open."""
    journeys, fakes = slow_starts, slow_starts.fakes
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)

    async def first_plan_record_takes_a_moment(request: RecordRequest) -> None:
        if request.snapshot.plan is not None and request.snapshot.plan.revision <= 1:
            # The hold, sent as soon as the plan runs, arrives during the plan's first record:
            # otherwise the plan's confirmation may already be on its way, and cancelling a send
            # as it completes stalls the test server (it answers ACTIVITY_UNKNOWN).
            await asyncio.sleep(1)

    fakes.on_record = first_plan_record_takes_a_moment
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    sent_before = len(fakes.sent)
    await journeys.sleep(timedelta(days=20))

    assert (await handle.query(InvoiceJourney.status)).stage == Stage.disputed
    assert fakes.templates[sent_before:] == []


async def test_a_plan_agreed_during_a_pause_waits_for_the_pause_to_end(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """An agent agrees a plan while the journey is paused: the plan starts held (no confirmation,
    no reminder, its grace kept), and its confirmation goes out when the pause ends."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.pause, Pause(reason="debtor in hospital"))
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    sent_before = len(fakes.sent)
    await journeys.sleep(timedelta(days=20))
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.paused
    assert fakes.templates[sent_before:] == []

    await handle.execute_update(InvoiceJourney.resume, Resume())
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))
    assert (await handle.query(InvoiceJourney.status)).stage == Stage.arrangement


async def test_a_plans_message_retrying_when_the_invoice_is_paid_never_goes_out(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The provider is down as the plan sends its confirmation, and the debtor pays in full
    while it retries. The plan ends and withdraws the confirmation: once the provider is back,
    the debtor gets the thank-you and nothing about the plan."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await paid_while_the_plans_message_retries(journeys, handle, await two_instalments(journeys))

    assert (await handle.result()).outcome == Outcome.paid
    assert fakes.templates[2:] == ["thank_you"]
    ended = await plan(journeys, handle).result()
    assert ended.outcome in (PlanOutcome.ended, PlanOutcome.completed)
    withdrawn = [e.detail for e in fakes.events if e.kind == "message_withdrawn"]
    assert [w["template"] for w in withdrawn] == ["arrangement_agreed"]


async def test_a_plans_message_under_way_when_the_invoice_is_paid_is_sent_and_recorded(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    """On a real server: the debtor pays in full while the provider is still answering the plan's
    confirmation. The plan ends, but gives that attempt time to finish (`SETTLE`), so the
    timeline says what the debtor got: the confirmation sent, nothing withdrawn, then the
    thank-you."""
    fakes = FakeActivities()
    journeys = Journeys(dev_server_env, task_queue, fakes)
    handle = await journeys.start(due_in=timedelta(days=20))

    async def paid_while_the_provider_answers(request: MessageRequest) -> None:
        if request.template == "arrangement_agreed" and fakes.attempts == 1:
            await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
            await asyncio.sleep(1.5)  # the plan is told to end meanwhile

    fakes.on_deliver = paid_while_the_provider_answers
    try:
        async with fake_workers(dev_server_env.client, task_queue, fakes):
            await handle.execute_update(
                InvoiceJourney.agree_arrangement, await two_instalments(journeys)
            )
            assert (await handle.result()).outcome == Outcome.paid
            ended = await plan(journeys, handle).result()
    finally:
        await journeys.finish()
    assert ended.outcome in (PlanOutcome.ended, PlanOutcome.completed)
    assert fakes.templates == ["arrangement_agreed", "thank_you"]
    assert not [e for e in fakes.events if e.kind == "message_withdrawn"]
    assert fakes.attempts == 2  # the confirmation once, the thank-you once


async def test_a_plan_paid_while_it_records_its_start_sends_no_confirmation(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The invoice is paid in full while the plan writes its first record, before it sends its
    confirmation: the plan ends, and the debtor gets the thank-you, not the plan's terms."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    paid: list[str] = []

    async def paid_while_recording(request: RecordRequest) -> None:
        view = request.snapshot.plan
        if view is not None and view.revision <= 1 and not paid:
            paid.append("BANK-1")
            await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
            await asyncio.sleep(1)  # the journey forwards it to the plan meanwhile

    fakes.on_record = paid_while_recording
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))

    assert (await handle.result()).outcome == Outcome.paid
    assert fakes.templates[2:] == ["thank_you"]
    withdrawn = [e.detail["template"] for e in fakes.events if e.kind == "message_withdrawn"]
    assert withdrawn == ["arrangement_agreed"]


async def test_a_plan_cancelled_while_it_starts_needs_no_new_plan_after_an_adjustment(
    slow_starts: Journeys,
) -> None:
    """An agent cancels a plan still starting, then a dispute lowers the amount: the cancelled
    plan needs no successor, so nobody is asked to agree one."""
    journeys, fakes = slow_starts, slow_starts.fakes
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await handle.execute_update(
        InvoiceJourney.cancel_arrangement, CancelArrangement(reason="agreed by mistake")
    )
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="short"))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute,
        ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("900.00")),
    )
    await journeys.until(lambda: "overdue_2" in fakes.templates)

    assert "agree_plan" not in fakes.tasks()
    assert "arrangement_agreed" not in fakes.templates


async def test_a_running_plan_cancelled_needs_no_new_plan_after_an_adjustment(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """An agent cancels a running plan; while the plan writes the record of its end, a dispute
    lowers the amount. The cancelled plan needs no successor: nobody is asked to agree one, and
    the reminders resume on the new amount."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))
    await adjusted_while_the_plan_is_cancelled(handle, fakes)
    assert (await plan(journeys, handle, 1).result()).outcome == PlanOutcome.cancelled
    await journeys.until(lambda: "overdue_2" in fakes.templates)

    assert "agree_plan" not in fakes.tasks()
    status = await handle.query(InvoiceJourney.status)
    assert status.outstanding == Decimal("900.00")


async def test_a_plan_waiting_to_start_when_a_dispute_changes_the_amount_never_starts(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """Plan 2 is agreed; while plan 1 ends, a dispute sets the amount to 900.00. Plan 2 added up
    to the old amount: it never starts, an agent is asked to agree a new one, and the reminders
    resume on 900.00."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))
    await adjusted_while_the_old_plan_ends(handle, fakes, await two_instalments(journeys))
    assert (await plan(journeys, handle, 1).result()).outcome == PlanOutcome.superseded

    await journeys.until(lambda: "overdue_2" in fakes.templates)
    assert fakes.templates.count("arrangement_agreed") == 1  # plan 2 never told the debtor
    assert fakes.tasks() == ["agree_plan"]
    ended = [e.detail for e in fakes.events if e.kind == "arrangement_ended"]
    assert [(e["plan"], e["outcome"]) for e in ended] == [(2, "ended")]
    reminder = fakes.sent[fakes.templates.index("overdue_2")]
    assert reminder.outstanding == Decimal("900.00")
    with pytest.raises(RPCError):
        await plan(journeys, handle, 2).describe()


async def plan_2_runs_and_plan_1_never_did(
    journeys: Journeys, handle: WorkflowHandle[Any, Any]
) -> None:
    """The plan agreed after one dropped before it started is plan 2: number 1 stays the dropped
    plan's, which never ran."""
    described = await plan(journeys, handle, 2).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    with pytest.raises(RPCError):
        await plan(journeys, handle, 1).describe()


async def test_a_plan_agreed_and_cancelled_in_one_task_leaves_the_journey_chasing(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Two agents at once: one agrees a plan, the other cancels it, and both commands reach the
    journey in the same workflow task. The plan never runs; the journey goes back to its ladder,
    and the next plan (plan 2) is not ended by the cancel meant for this one."""
    fakes = FakeActivities()
    journeys = Journeys(dev_server_env, task_queue, fakes)
    try:
        async with agreed_and_cancelled_in_one_task(journeys) as handle:
            status = await handle.query(InvoiceJourney.status)
            assert status.stage == Stage.scheduled and status.next_action is not None

            await handle.execute_update(
                InvoiceJourney.agree_arrangement, await two_instalments(journeys)
            )
            await within_seconds(10, lambda: "arrangement_agreed" in fakes.templates)
            assert fakes.templates == ["arrangement_agreed"]
            await plan_2_runs_and_plan_1_never_did(journeys, handle)
    finally:
        await journeys.finish()


async def test_a_plan_agreed_then_an_adjusted_dispute_in_one_task_never_starts(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Three agents at once: one agrees a plan, one opens a dispute, one resolves it with the
    amount lowered to 900.00, all in the same workflow task, before the plan could start. The
    plan added up to the old amount: it never starts, the debtor never hears of it, an agent is
    asked to agree a new one, and the journey chases again on 900.00. The plan agreed next is
    plan 2, never a second plan 1."""
    fakes = FakeActivities()
    journeys = Journeys(dev_server_env, task_queue, fakes)
    try:
        async with in_one_task(journeys, agreed_then_adjusted) as handle:
            await within_seconds(10, lambda: "agree_plan" in fakes.tasks())
            status = await handle.query(InvoiceJourney.status)
            assert status.stage == Stage.scheduled and status.next_action is not None
            assert status.outstanding == Decimal("900.00")
            ended = [e.detail for e in fakes.events if e.kind == "arrangement_ended"]
            assert [(e["plan"], e["outcome"]) for e in ended] == [(1, "ended")]
            assert "arrangement_agreed" not in fakes.templates
            with pytest.raises(RPCError):
                await plan(journeys, handle, 1).describe()

            # The next plan is plan 2: number 1 stays the dropped one's, on the timeline too.
            again = two_instalments_from(await today(journeys), "400.00", "500.00")
            answer = await handle.execute_update(InvoiceJourney.agree_arrangement, again)
            assert answer.detail.startswith("instalment plan 2 agreed")
            await within_seconds(10, lambda: "arrangement_agreed" in fakes.templates)
            agreed = [e.detail for e in fakes.events if e.kind == "arrangement"]
            assert [(e["plan"], e["workflow_id"]) for e in agreed] == [
                (1, f"{handle.id}-plan-1"),
                (2, f"{handle.id}-plan-2"),
            ]
            await plan_2_runs_and_plan_1_never_did(journeys, handle)
    finally:
        await journeys.finish()


async def test_a_payment_while_the_plan_starts_reaches_the_plan(slow_starts: Journeys) -> None:
    journeys, fakes = slow_starts, slow_starts.fakes
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    # The first instalment, paid while the plan is still starting, is the plan's to count.
    await handle.signal(InvoiceJourney.payment_received, pay("600.00", "BANK-1"))
    await journeys.until(lambda: "instalment_paid" in fakes.templates, step=timedelta(minutes=10))
    await handle.signal(InvoiceJourney.payment_received, pay("650.00", "BANK-2"))
    assert (await handle.result()).outcome == Outcome.paid
    finished = await plan(journeys, handle).result()
    assert finished.outcome == PlanOutcome.completed
    assert finished.paid == Decimal("1250.00")


# ---- one-off messages and holds ----------------------------------------------------------------


async def test_a_dispute_resolved_during_a_pause_is_told_once_the_pause_ends(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await handle.execute_update(InvoiceJourney.pause, Pause(reason="debtor in hospital"))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.sleep(timedelta(days=3))
    assert "dispute_review" not in fakes.templates  # not while paused
    assert "message_withdrawn" not in fakes.kinds()

    await handle.execute_update(InvoiceJourney.resume, Resume(reason="back home"))
    await journeys.until(lambda: "dispute_review" in fakes.templates, step=timedelta(minutes=10))
    assert fakes.templates.count("dispute_review") == 1


async def test_a_reminder_is_withdrawn_when_paid_while_the_record_before_it_is_written(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The reminder's email bounced, so it falls back to the debtor's phone; the invoice is paid
    in full while the fallback's record is written. The text is not sent (the debtor paid), the
    timeline says the message was withdrawn, and the thank-you goes out."""
    handle = await journeys.start(due_in=timedelta(days=5))
    deliveries = paid_while_falling_back(handle, fakes)

    assert (await handle.result()).outcome == Outcome.paid
    assert [template for template, after in deliveries if after] == ["thank_you"]
    withdrawn = [e for e in fakes.events if e.kind == "message_withdrawn"]
    assert [(e.detail["template"], e.detail["reason"]) for e in withdrawn] == [
        ("reminder_before_due", "paid")
    ]


# ---- the last events ---------------------------------------------------------------------------


async def test_signals_during_the_final_records_are_recorded_and_reach_an_agent(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    seen = late_payments_while_closing(handle, fakes)
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    result = await handle.result()

    assert result.outcome == Outcome.paid
    assert seen == {"late", "later"}
    references = [e.detail["reference"] for e in fakes.events if e.kind == "payment"]
    assert references == ["BANK-1", "LATE-1", "LATE-2"]
    assert fakes.tasks().count("overpayment") == 2
    assert result.payments == ["BANK-1", "LATE-1", "LATE-2"]


async def test_a_payment_on_a_written_off_invoice_creates_an_agent_task(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 2)
    paid = False

    async def while_recording(request: RecordRequest) -> None:
        nonlocal paid
        if not paid and any(e.kind == "closed" for e in request.events):
            paid = True
            await handle.signal(InvoiceJourney.payment_received, pay("300.00", "AFTER-1"))

    fakes.on_record = while_recording
    await handle.execute_update(InvoiceJourney.write_off, Close(reason="debtor bankrupt"))
    result = await handle.result()

    assert result.outcome == Outcome.written_off
    assert "payment_after_close" in fakes.tasks()
    task = next(t for r in fakes.records for t in r.tasks if t.kind == "payment_after_close")
    assert "EUR 300.00" in task.title and "written off" in task.title


# ---- the first record --------------------------------------------------------------------------


def _first_record(history: Any) -> str:
    """How the journey's first record was written: "local" (a marker) or "activity"."""
    for event in history.events:
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity":
            return "local"
        if event.activity_task_scheduled_event_attributes.activity_type.name == RECORD_ACTIVITY:
            return "activity"
    raise AssertionError("the journey recorded nothing")


async def test_the_first_record_is_written_in_the_first_task_and_holds_only_the_start(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """A local activity writes before its task is committed, and a rerun task may number events
    differently: the first record holds one event with a key of its own, never a numbered one."""
    handle = await journeys.start(due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) == 1)

    assert _first_record(await handle.fetch_history()) == "local"
    first = fakes.records[0]
    assert [(e.kind, e.key) for e in first.events] == [("journey_started", f"{handle.id}:started")]
    assert first.tasks == [] and first.invoice is not None
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    assert [(e.kind, e.key) for e in fakes.events] == [
        ("journey_started", f"{handle.id}:started"),
        ("dispute_opened", f"{handle.id}:1"),  # numbers start after it
    ]


async def test_a_signal_in_the_first_task_sends_the_first_record_as_an_activity(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """A payment that comes with the start is applied before the journey begins: its event is
    numbered, so the first record goes as an activity, and both events are kept once."""
    handle = await journeys.start(
        due_in=timedelta(days=5), signal=("payment_received", pay("200.00", "BANK-0"))
    )
    await journeys.until(lambda: len(fakes.sent) == 1)

    assert _first_record(await handle.fetch_history()) == "activity"
    assert sorted(e.kind for e in fakes.records[0].events) == ["journey_started", "payment"]
    assert fakes.kinds().count("journey_started") == 1 and fakes.kinds().count("payment") == 1
    assert fakes.sent[0].outstanding == Decimal("1050.00")


async def test_the_apis_start_record_is_the_one_the_journey_writes_itself(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The API records a journey's start as the journey would (`start_record`): the same row,
    first snapshot (the first step's time: the debtor's office hours, holidays, the spread) and
    `journey_started` event. Compared with what a journey started without the API wrote."""
    handle = await journeys.start(due_in=timedelta(days=5, hours=3))
    await journeys.until(lambda: len(fakes.records) == 1)
    own = fakes.records[0]
    [started] = await journeys.env.client.data_converter.decode(
        (await handle.fetch_history())
        .events[0]
        .workflow_execution_started_event_attributes.input.payloads,
        [JourneyInput],
    )

    made = start_record(started, own.events[0].at)
    assert own.snapshot.next_action is not None
    assert made.model_dump() == own.model_dump()


async def test_a_journey_the_api_recorded_writes_nothing_in_its_first_task(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """Started as the API starts it (its start recorded already), the first task only publishes
    the next step and sleeps. Its first activity, here the first message (which needs the
    invoice's row), carries the start again, to be stored where absent in case the API stopped
    before recording it; after that, nothing carries it."""
    handle = await journeys.start(due_in=timedelta(days=5), start_recorded=True)
    await journeys.until(lambda: len(fakes.sent) == 2)

    history = await handle.fetch_history()
    first_task = list(
        itertools.takewhile(lambda e: not e.timer_started_event_attributes.timer_id, history.events)
    )
    markers = [e.marker_recorded_event_attributes.marker_name for e in first_task]
    assert "core_local_activity" not in markers and "core_patch" in markers  # spread's patch
    assert not any(e.activity_task_scheduled_event_attributes.activity_id for e in first_task)
    first, second = (sent.request.start for sent in fakes.sent)
    assert first is not None and [e.key for e in first.events] == [f"{handle.id}:started"]
    assert first.invoice is not None and second is None
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    assert [r.invoice for r in fakes.records] == [None]
    assert fakes.kinds() == ["dispute_opened"]


async def test_a_journey_the_api_recorded_carries_its_start_in_its_first_record(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """A record before any message (a dispute at once) carries the start; the messages after it
    carry nothing."""
    handle = await journeys.start(due_in=timedelta(days=5), start_recorded=True)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.until(lambda: len(fakes.sent) == 1)

    assert fakes.records[0].invoice is not None
    assert [(e.kind, e.key) for e in fakes.records[0].events] == [
        ("journey_started", f"{handle.id}:started"),
        ("dispute_opened", f"{handle.id}:1"),
    ]
    assert all(r.invoice is None for r in fakes.records[1:])
    assert fakes.kinds().count("journey_started") == 1
    assert fakes.sent[0].request.start is None


async def test_a_late_start_the_api_recorded_carries_it_with_the_steps_it_skipped(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """Posted 12 days after its due date: the first task has something of its own to record (the
    steps it skipped), and that record carries the start, before the one catch-up message."""
    handle = await journeys.start(due_in=timedelta(days=-12), start_recorded=True)
    await journeys.until(lambda: len(fakes.sent) == 1)

    first = fakes.records[0]
    assert first.invoice is not None
    assert [(e.kind, e.key) for e in first.events][:2] == [
        ("journey_started", f"{handle.id}:started"),
        ("steps_skipped", f"{handle.id}:1"),
    ]
    assert fakes.sent[0].request.start is None
    assert fakes.kinds().count("journey_started") == 1


async def test_a_journey_owing_its_start_does_not_continue_as_new_before_it_is_written(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """A history budget the first step already passes: the journey continues as new only after
    an activity carried its start, or a start the API failed to record would never be written."""
    handle = await journeys.start(due_in=timedelta(days=5), start_recorded=True, history_budget=9)
    await journeys.until(lambda: len(fakes.sent) == 2)

    assert len(await run_lengths(journeys.env.client, handle.id)) >= 2
    carried = fakes.sent[0].request.start
    assert carried is not None and [e.key for e in carried.events] == [f"{handle.id}:started"]


# ---- continue-as-new ---------------------------------------------------------------------------


async def test_a_long_journey_continues_as_new_and_keeps_its_state(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5), history_budget=80)
    await journeys.until(lambda: len(fakes.sent) == 2)
    for n in range(1, 21):
        await handle.signal(InvoiceJourney.payment_received, pay("10.00", f"PART-{n}"))
        await journeys.sleep(timedelta(hours=1))
    status = await handle.query(InvoiceJourney.status)
    assert status.outstanding == Decimal("1050.00")
    assert len(status.payments) == 20
    # The same payment reported again after continuing as new changes nothing.
    await handle.signal(InvoiceJourney.payment_received, pay("10.00", "PART-1"))
    await handle.signal(InvoiceJourney.payment_received, pay("1050.00", "BANK-END"))
    result = await handle.result()

    assert result.outcome == Outcome.paid and result.outstanding == Decimal("0.00")
    runs = await run_lengths(journeys.env.client, handle.id)
    assert len(runs) >= 2, runs
    keys = [e.key for e in fakes.events]
    assert len(keys) == len(set(keys))  # event keys go on counting across runs
    assert [e.kind for e in fakes.events].count("journey_started") == 1
    assert fakes.templates.count("reminder_before_due") == 1
    assert fakes.templates[-1] == "thank_you"


async def test_a_dropped_plans_number_stays_given_across_continue_as_new(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """Plan 2 is dropped before it starts (a dispute lowers the amount while plan 1 ends); the
    journey then continues as new. The plan agreed in the new run is plan 3: the number of the
    dropped plan 2 crossed over as given."""
    handle = await journeys.start(due_in=timedelta(days=5), history_budget=60)
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates, step=timedelta(hours=1))
    await adjusted_while_the_old_plan_ends(handle, fakes, await two_instalments(journeys))
    assert (await plan(journeys, handle, 1).result()).outcome == PlanOutcome.superseded
    runs = len(await run_lengths(journeys.env.client, handle.id))
    await journeys.sleep(timedelta(hours=3))
    assert len(await run_lengths(journeys.env.client, handle.id)) > runs  # continued as new

    again = two_instalments_from(await today(journeys), "400.00", "500.00")
    answer = await handle.execute_update(InvoiceJourney.agree_arrangement, again)
    assert answer.detail.startswith("instalment plan 3 agreed")
    assert [e.detail["plan"] for e in fakes.events if e.kind == "arrangement"] == [1, 2, 3]
    await handle.signal(InvoiceJourney.payment_received, pay("900.00", "BANK-1"))
    assert (await handle.result()).outcome == Outcome.paid
    assert (await plan(journeys, handle, 3).result()).outcome == PlanOutcome.completed


async def test_a_journey_does_not_continue_as_new_under_its_running_plan(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5), history_budget=60)
    await journeys.until(lambda: len(fakes.sent) == 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await two_instalments(journeys))
    for n in range(12):
        await handle.signal(
            InvoiceJourney.contact_changed, ContactChanged(phone=f"+316123456{n:02d}")
        )
    await handle.signal(InvoiceJourney.payment_received, pay("600.00", "BANK-1"))
    await journeys.until(lambda: "instalment_paid" in fakes.templates, step=timedelta(hours=1))
    await handle.signal(InvoiceJourney.payment_received, pay("650.00", "BANK-2"))

    assert (await handle.result()).outcome == Outcome.paid
    finished = await plan(journeys, handle).result()
    assert finished.outcome == PlanOutcome.completed  # not killed by the journey
    assert fakes.sent[-2].request.invoice.customer.phone == "+31612345611"


# ---- money -------------------------------------------------------------------------------------


async def test_an_adjusted_amount_must_fit_the_currency(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    handle = await journeys.start(due_in=timedelta(days=5))
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="price"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            InvoiceJourney.resolve_dispute,
            ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("999.999")),
        )
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidAmount"
    assert "EUR" in str(cause)
    assert (await handle.query(InvoiceJourney.status)).outstanding == Decimal("1250.00")


async def test_a_plan_resends_a_bounced_message_sent_before_it_continued_as_new(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The plan's state crosses continue-as-new whole: a bounce of its latest message, sent by
    an earlier run, still has it sent again on another channel."""
    handle = await lone_plan(journeys, history_budget=20)
    plan_id = handle.id
    await journeys.until(lambda: "instalment_reminder" in fakes.templates)
    await journeys.sleep(timedelta(hours=2))
    assert len(await run_lengths(journeys.env.client, plan_id)) >= 2  # it continued as new
    reminder = fakes.sent[-1]
    assert reminder.template == "instalment_reminder" and reminder.channels == [Channel.email]
    await handle.signal(
        InstalmentPlan.message_bounced,
        MessageBounced(message_key=f"{reminder.request.key_prefix}:email", channel=Channel.email),
    )
    await journeys.until(
        lambda: fakes.templates.count("instalment_reminder") == 2, step=timedelta(hours=1)
    )
    assert fakes.sent[-1].channels == [Channel.sms]


async def test_a_plan_records_a_payment_that_came_while_it_continued_as_new(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """A part payment that reaches the plan while it writes the record after which it continues
    as new is on the plan's next record (the console's plan shows it), not left with the old
    run."""
    second = pay("50.00", "B-2")
    handle = await signal_while_the_plan_continues(
        journeys, InstalmentPlan.payment_received, second
    )
    await journeys.sleep(timedelta(hours=1))
    assert {r.snapshot.plan.paid for r in fakes.records if r.snapshot.plan} >= {Decimal("100.00")}
    assert len(await run_lengths(journeys.env.client, handle.id)) == 2  # it continued as new
    latest = [r.snapshot.plan for r in fakes.records if r.snapshot.plan is not None][-1]
    assert latest.paid == Decimal("150.00") and latest.outstanding == Decimal("1100.00")


async def test_a_plan_ended_while_it_continued_as_new_is_recorded_as_ended(
    journeys: Journeys, fakes: FakeActivities
) -> None:
    """The journey ends its plan while the plan writes the record after which it continues as
    new: the plan's last record says it ended (the console shows it cancelled, not running)."""
    end = EndPlan(outcome=PlanOutcome.cancelled, reason="the agent cancelled the plan")
    handle = await signal_while_the_plan_continues(journeys, InstalmentPlan.end_plan, end)

    assert (await handle.result()).outcome == PlanOutcome.cancelled
    latest = [r.snapshot.plan for r in fakes.records if r.snapshot.plan is not None][-1]
    assert latest.status == PlanOutcome.cancelled and latest.paid == Decimal("100.00")
