"""Journeys in the time-skipping environment, with same-name fake activities that record calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, Worker

from tests.runs import run_lengths as run_lengths
from worker import running
from workflows.common import ALL_CHANNELS, reachable_channels
from workflows.journey import (
    DELIVER_ACTIVITY,
    RECORD_ACTIVITY,
    InvoiceJourney,
    journey_summary,
    start_search_attributes,
    workflow_id,
)
from workflows.messaging import provider_queue
from workflows.models import (
    AgreeArrangement,
    CancelArrangement,
    ChannelOutcome,
    Customer,
    DisputeOutcome,
    Instalment,
    Invoice,
    JourneyInput,
    MessageRequest,
    MessageResult,
    OpenDispute,
    PaymentReceived,
    PlanInput,
    PlanOutcome,
    RecordRequest,
    ResolveDispute,
    TimelineEvent,
)
from workflows.plan import InstalmentPlan, plan_workflow_id
from workflows.policy import STANDARD_POLICY, Channel, Policy
from workflows.sandbox import workflow_runner


@dataclass
class Sent:
    """A message the journey asked for, at the (skipped) time it was asked."""

    at: datetime
    template: str
    tone: str
    channels: list[Channel]
    outstanding: Decimal
    request: MessageRequest


@dataclass
class FakeActivities:
    sent: list[Sent] = field(default_factory=list)
    records: list[RecordRequest] = field(default_factory=list)
    bounce: set[Channel] = field(default_factory=set)
    outage: bool = False
    """True: every send fails as a provider outage would (and is retried)."""
    attempts: int = 0
    on_deliver: Callable[[MessageRequest], Awaitable[None]] | None = None
    """Called inside each delivery attempt: a test's way to act while a message is sending."""
    on_record: Callable[[RecordRequest], Awaitable[None]] | None = None
    """Called inside each record activity, before it is stored."""

    @activity.defn(name=DELIVER_ACTIVITY)
    async def deliver_message(self, request: MessageRequest) -> MessageResult:
        self.attempts += 1
        if self.on_deliver is not None:
            await self.on_deliver(request)
        if self.outage:
            raise ApplicationError("provider unavailable", type="ProviderUnavailable")
        outcomes = []
        for channel in request.channels:
            if channel in self.bounce:
                outcomes.append(
                    ChannelOutcome(
                        channel=channel, status="failed", reason="bounced", permanent=True
                    )
                )
                continue
            outcomes.append(ChannelOutcome(channel=channel, status="outbox"))
            if not request.all_channels:
                break
        reached = [o.channel for o in outcomes if o.status == "outbox"]
        # A message goes out one channel per activity: its channels are one Sent, as the debtor
        # sees one message per step.
        last = self.sent[-1] if self.sent else None
        if (
            last is not None
            and last.request.key_prefix == request.key_prefix
            and last.request.all_channels == request.all_channels
            and (request.all_channels or not last.channels)
        ):
            merged = [*last.channels, *(c for c in reached if c not in last.channels)]
            # The channels went out in parallel: keep the journey's own order (preferred first).
            merged.sort(key=ALL_CHANNELS.index)
            last.channels[:] = reachable_channels(request.invoice.customer, merged, [])
        else:
            self.sent.append(
                Sent(
                    request.at,
                    request.template,
                    request.tone.value,
                    reached,
                    request.outstanding,
                    request,
                )
            )
        return MessageResult(outcomes=outcomes)

    @activity.defn(name=RECORD_ACTIVITY)
    async def record_journey(self, request: RecordRequest) -> None:
        if self.on_record is not None:
            await self.on_record(request)
        self.records.append(request)

    @property
    def events(self) -> list[TimelineEvent]:
        seen: dict[str, TimelineEvent] = {}
        for record in self.records:
            for event in record.events:
                seen.setdefault(event.key, event)
        return list(seen.values())

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def tasks(self) -> list[str]:
        return [t.kind for r in self.records for t in r.tasks]

    @property
    def templates(self) -> list[str]:
        return [s.template for s in self.sent]


@dataclass
class Journeys:
    env: WorkflowEnvironment
    task_queue: str
    fakes: FakeActivities
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def start(
        self,
        invoice_id: str = "INV-1",
        *,
        due_in: timedelta = timedelta(days=10),
        policy: Policy = STANDARD_POLICY,
        amount: str = "1250.00",
        customer: dict[str, Any] | None = None,
        history_budget: int | None = None,
        signal: tuple[str, Any] | None = None,
        start_recorded: bool = False,
    ) -> WorkflowHandle[InvoiceJourney, Any]:
        """Start a journey; `signal` (name, argument) comes with the start, in its first task.
        `start_recorded`: as the API starts it, having recorded the start itself."""
        now = await self.env.get_current_time()
        due_at = now + due_in
        invoice_id = f"{self.task_queue}-{invoice_id}"  # unique in the shared environment
        invoice = Invoice(
            invoice_id=invoice_id,
            amount=Decimal(amount),
            currency="EUR",
            issued_on=now.date(),
            due_on=due_at.date(),
            due_at=due_at,
            payment_url=f"https://pay.example.com/{invoice_id}",
            customer=Customer(
                **{
                    "id": "C-17",
                    "name": "Bakkerij de Vries",
                    "email": "ap@devries.example",
                    "phone": "+31612345678",
                    "locale": "nl",
                    "timezone": "Europe/Amsterdam",
                    "country": "NL",
                    **(customer or {}),
                }
            ),
        )
        handle = await self.env.client.start_workflow(
            InvoiceJourney.run,
            JourneyInput(
                invoice=invoice,
                policy=policy,
                actor="test",
                start_recorded=start_recorded,
                **({"history_budget": history_budget} if history_budget else {}),
            ),
            id=workflow_id(invoice_id),
            task_queue=self.task_queue,
            search_attributes=start_search_attributes(invoice),
            static_summary=journey_summary(invoice),
            start_signal=signal[0] if signal else None,
            start_signal_args=[signal[1]] if signal else [],
        )
        self.started.append(handle)
        return handle

    async def sleep(self, duration: timedelta) -> None:
        await self.env.sleep(duration)

    async def until(
        self,
        condition: Callable[[], bool],
        *,
        step: timedelta = timedelta(hours=4),
        limit: timedelta = timedelta(days=120),
    ) -> None:
        """Skip time in small steps until `condition` holds (send windows make exact days vary)."""
        waited = timedelta(0)
        while not condition():
            if waited >= limit:
                raise AssertionError(
                    f"still not true after skipping {limit}; sent so far: {self.fakes.templates}"
                )
            await self.env.sleep(step)
            waited += step

    async def finish(self) -> None:
        """End whatever a test left running: time skipping stalls on journeys with no worker."""
        for handle in self.started:
            # Plans first: the test server may close a child after its parent only lazily, and a
            # plan left waiting on this test's (stopped) worker holds time skipping for the next.
            plans = [f"{handle.id}-plan-{n}" for n in range(1, 4)]
            for open_id in (*plans, handle.id):
                try:
                    await self.env.client.get_workflow_handle(open_id).terminate("test finished")
                except RPCError:
                    pass  # already closed, or never started


@asynccontextmanager
async def fake_workers(
    client: Client,
    task_queue: str,
    fakes: FakeActivities,
    interceptors: Sequence[Interceptor] = (),
) -> AsyncIterator[None]:
    """The journey worker and the providers' delivery workers, all with the fake activities."""
    queues = {provider_queue(task_queue, c) for c in (Channel.email, Channel.sms)}
    delivery = [Worker(client, task_queue=q, activities=[fakes.deliver_message]) for q in queues]
    journeys = Worker(
        client,
        task_queue=task_queue,
        workflows=[InvoiceJourney, InstalmentPlan],
        activities=[fakes.deliver_message, fakes.record_journey],
        workflow_runner=workflow_runner(strict=True),
        interceptors=interceptors,
    )
    async with running([journeys, *delivery]):
        yield


@pytest_asyncio.fixture(loop_scope="session")
async def journeys(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[Journeys]:
    fakes = FakeActivities()
    async with fake_workers(time_skipping_env.client, task_queue, fakes):
        journeys = Journeys(time_skipping_env, task_queue, fakes)
        try:
            yield journeys
        finally:
            await journeys.finish()


@pytest.fixture
def fakes(journeys: Journeys) -> FakeActivities:
    return journeys.fakes


def pay(amount: str, reference: str) -> PaymentReceived:
    """The payment signal for `amount` (a decimal string) with the bank's `reference`."""
    return PaymentReceived(amount=Decimal(amount), reference=reference)


def late_payments_while_closing(
    handle: WorkflowHandle[Any, Any], fakes: FakeActivities
) -> set[str]:
    """After the journey is paid: a payment while the thank-you goes out (LATE-1, 10.00), and
    another while the record of that one, the very last, is written (LATE-2, 20.00). The set
    answered fills with "late" and "later" as each is sent."""
    seen: set[str] = set()

    async def while_thanking(request: MessageRequest) -> None:
        if request.template == "thank_you" and "late" not in seen:
            seen.add("late")
            await handle.signal(InvoiceJourney.payment_received, pay("10.00", "LATE-1"))

    async def while_recording(request: RecordRequest) -> None:
        references = {e.detail.get("reference") for e in request.events}
        if "LATE-1" in references and "later" not in seen:
            seen.add("later")
            await handle.signal(InvoiceJourney.payment_received, pay("20.00", "LATE-2"))

    fakes.on_deliver, fakes.on_record = while_thanking, while_recording
    return seen


def paid_while_falling_back(
    handle: WorkflowHandle[Any, Any], fakes: FakeActivities
) -> list[tuple[str, bool]]:
    """The email bounces at once, so the journey's next message falls back to another channel;
    the invoice is paid in full (BANK-1) while the record of that fallback is written. The list
    answered fills with each delivery asked for: its template, and whether it came after the
    payment."""
    fakes.bounce = {Channel.email}
    deliveries: list[tuple[str, bool]] = []
    paid: list[str] = []

    async def log(request: MessageRequest) -> None:
        deliveries.append((request.template, bool(paid)))

    async def while_recording(request: RecordRequest) -> None:
        if not paid and any(e.kind == "channel_fallback" for e in request.events):
            paid.append("BANK-1")
            await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))

    fakes.on_deliver, fakes.on_record = log, while_recording
    return deliveries


ADJUSTED = ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("900.00"))
"""A dispute resolved with the amount lowered to EUR 900.00."""


def adjusted_once_the_plan_is(
    handle: WorkflowHandle[Any, Any], fakes: FakeActivities, status: PlanOutcome
) -> None:
    """When a plan writes the record of its end with `status` (so the journey still sees it
    running), a dispute is opened and resolved `ADJUSTED`, once."""
    adjusted: list[bool] = []

    async def while_recording(request: RecordRequest) -> None:
        view = request.snapshot.plan
        if view is not None and view.status == status and not adjusted:
            adjusted.append(True)
            await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="short"))
            await handle.execute_update(InvoiceJourney.resolve_dispute, ADJUSTED)

    fakes.on_record = while_recording


async def adjusted_while_the_old_plan_ends(
    handle: WorkflowHandle[Any, Any], fakes: FakeActivities, new_plan: AgreeArrangement
) -> None:
    """A plan runs; `new_plan` replaces it, and while the old plan writes the record of its end
    (so the new one waits to start), a dispute is opened and resolved with the amount set to
    EUR 900.00."""
    adjusted_once_the_plan_is(handle, fakes, PlanOutcome.superseded)
    await handle.execute_update(InvoiceJourney.agree_arrangement, new_plan)


async def adjusted_while_the_plan_is_cancelled(
    handle: WorkflowHandle[Any, Any], fakes: FakeActivities
) -> None:
    """A plan runs; an agent cancels it, and while the plan writes the record of its end (so the
    journey still sees it running), a dispute is opened and resolved with the amount set to
    EUR 900.00."""
    adjusted_once_the_plan_is(handle, fakes, PlanOutcome.cancelled)
    await handle.execute_update(
        InvoiceJourney.cancel_arrangement, CancelArrangement(reason="the debtor asked")
    )


async def paid_while_the_plans_message_retries(
    journeys: Journeys, handle: WorkflowHandle[Any, Any], plan: AgreeArrangement
) -> None:
    """The provider goes down; `plan` is agreed and its confirmation retries; the invoice is
    paid in full (BANK-1) meanwhile; an hour later the provider is back."""
    fakes = journeys.fakes
    fakes.outage = True
    attempts = fakes.attempts
    await handle.execute_update(InvoiceJourney.agree_arrangement, plan)
    await journeys.until(lambda: fakes.attempts >= attempts + 2, step=timedelta(seconds=20))
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-1"))
    await journeys.sleep(timedelta(hours=1))
    fakes.outage = False


async def within_seconds(limit: float, condition: Callable[[], bool]) -> None:
    """Real time, on the dev server: poll until `condition` holds, at most `limit` seconds."""
    for _ in range(int(limit * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    assert condition()


@asynccontextmanager
async def in_one_task(
    journeys: Journeys, commands: Callable[[date], list[tuple[Any, Any]]]
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """On a real server: a journey due in 20 days whose worker stops; `commands(today)` (updates
    and their arguments) are sent half a second apart, as agents at once would, and all reach the
    journey in its next workflow task, when the worker is back. Answers once each was answered
    (or refused), the worker still running."""
    client = journeys.env.client
    async with fake_workers(client, journeys.task_queue, journeys.fakes):
        handle = await journeys.start(due_in=timedelta(days=20))
        await within_seconds(10, lambda: "journey_started" in journeys.fakes.kinds())
    accepted = WorkflowUpdateStage.ACCEPTED
    sent = []
    for update, arg in commands(await today(journeys)):
        sent.append(asyncio.create_task(handle.start_update(update, arg, wait_for_stage=accepted)))
        await asyncio.sleep(0.5)  # each reaches the server before the next
    async with fake_workers(client, journeys.task_queue, journeys.fakes):
        for update in await asyncio.gather(*sent):
            await update.result()
        yield handle


def two_instalments_from(
    day: date, first: str = "600.00", second: str = "650.00"
) -> AgreeArrangement:
    """A plan of two instalments, 10 and 40 days after `day` (by default EUR 1,250.00 in all)."""
    return AgreeArrangement(
        instalments=[
            Instalment(due_on=day + timedelta(days=10), amount=Decimal(first)),
            Instalment(due_on=day + timedelta(days=40), amount=Decimal(second)),
        ]
    )


def agreed_then_adjusted(day: date) -> list[tuple[Any, Any]]:
    """For `in_one_task`: a plan agreed, then a dispute opened and resolved `ADJUSTED`."""
    return [
        (InvoiceJourney.agree_arrangement, two_instalments_from(day)),
        (InvoiceJourney.open_dispute, OpenDispute(reason="short")),
        (InvoiceJourney.resolve_dispute, ADJUSTED),
    ]


@asynccontextmanager
async def agreed_and_cancelled_in_one_task(
    journeys: Journeys,
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    """A plan is agreed and, half a second later, cancelled (two agents at once), both in the
    journey's next workflow task (see `in_one_task`)."""
    cancelled = CancelArrangement(reason="agreed by mistake")
    async with in_one_task(
        journeys,
        lambda day: [
            (InvoiceJourney.agree_arrangement, two_instalments_from(day)),
            (InvoiceJourney.cancel_arrangement, cancelled),
        ],
    ) as handle:
        yield handle


async def today(journeys: Journeys) -> date:
    """The test server's date in Amsterdam, where the test debtors live."""
    now = await journeys.env.get_current_time()
    return now.astimezone(ZoneInfo("Europe/Amsterdam")).date()


async def lone_plan(journeys: Journeys, history_budget: int) -> WorkflowHandle[Any, Any]:
    """A plan of one instalment of EUR 1250.00 in 20 days, started on its own (no journey) with a
    tiny history budget, so that it continues as new within a few steps."""
    day = await today(journeys)
    amount = Decimal("1250.00")
    invoice = f"{journeys.task_queue}-alone-{len(journeys.started)}"
    plan_input = PlanInput(
        invoice=Invoice(
            invoice_id=invoice,
            amount=amount,
            currency="EUR",
            issued_on=day,
            due_on=day,
            payment_url="https://pay.example.com/alone",
            customer=Customer(
                id="C-17",
                name="De Vries",
                email="ap@devries.example",
                phone="+31612345678",
                timezone="Europe/Amsterdam",
                country="NL",
            ),
        ),
        number=1,
        policy=STANDARD_POLICY,
        instalments=[Instalment(due_on=day + timedelta(days=20), amount=amount)],
        history_budget=history_budget,
    )
    handle = await journeys.env.client.start_workflow(
        InstalmentPlan.run,
        plan_input,
        id=plan_workflow_id(workflow_id(invoice), 1),
        task_queue=journeys.task_queue,
    )
    journeys.started.append(handle)  # ended by the fixture, whatever happens here
    return handle


async def signal_while_the_plan_continues(
    journeys: Journeys, signal: Callable[..., Any], arg: Any
) -> WorkflowHandle[Any, Any]:
    """A lone plan (budget 20) has sent its confirmation; a part payment of 100.00 (B-1) reaches
    it, and while the plan writes the record of that payment, after which it continues as new,
    it gets `signal` with `arg`, once."""
    handle = await lone_plan(journeys, history_budget=20)
    await journeys.until(lambda: "arrangement_agreed" in journeys.fakes.templates)
    sent: list[Any] = []

    async def while_recording(request: RecordRequest) -> None:
        view = request.snapshot.plan
        if view is not None and view.paid == Decimal("100.00") and not sent:
            sent.append(arg)
            await handle.signal(signal, arg)

    journeys.fakes.on_record = while_recording
    await handle.signal(InstalmentPlan.payment_received, pay("100.00", "B-1"))
    return handle
