"""Record the stored histories that the replay test checks new workflow code against.

Run `python -m tests.histories.record SUFFIX` when histories for a new workflow version are wanted
(they are written as `<scenario>_SUFFIX.json`, encrypted with the test key as production histories
are with yours); the files already here stand for journeys running
in production and must keep replaying, so never overwrite them.

`--before PATCH_ID` records as a worker from before that patch would: `workflow.patched(PATCH_ID)`
answers False, so the history has the branch before the patch and no marker. That is how a patch
whose old branch only a rare path reaches (a race, a message that reaches nobody) gets a stored
history for its old branch, which the replay test then replays with the patch in place.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHandle

import workflows
from tests.conftest import _binary, start_dev_server
from tests.runs import every_run
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
    paid_while_falling_back,
    paid_while_the_plans_message_retries,
    pay,
    signal_while_the_plan_continues,
    today,
    two_instalments_from,
)
from workflows.journey import InvoiceJourney
from workflows.models import (
    AgreeArrangement,
    ChannelOptedIn,
    Customer,
    DebtorReplied,
    DisputeOutcome,
    Instalment,
    Invoice,
    MessageBounced,
    OpenDispute,
    Pause,
    PaymentReceived,
    PlanInput,
    PromiseToPay,
    ResolveDispute,
    Resume,
    TaskCompleted,
)
from workflows.plan import InstalmentPlan
from workflows.policy import STANDARD_POLICY, Channel

HERE = Path(__file__).parent


async def _standard_ladder(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    handle = await journeys.start("ladder", due_in=timedelta(days=10))
    await handle.result()
    return handle


async def _dispute_then_paid(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    fakes = journeys.fakes
    handle = await journeys.start("dispute-paid", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await journeys.sleep(timedelta(days=15))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute,
        ResolveDispute(outcome=DisputeOutcome.adjusted, amount=Decimal("1000.00")),
    )
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("400"), reference="B-1")
    )
    await journeys.until(lambda: len(fakes.sent) >= 4)
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("600"), reference="B-2")
    )
    await handle.result()
    return handle


async def _promise_broken_then_paid(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    fakes = journeys.fakes
    handle = await journeys.start("promise", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    day = await today(journeys)
    await handle.execute_update(
        InvoiceJourney.promise_to_pay, PromiseToPay(promised_on=day + timedelta(days=4))
    )
    await journeys.until(lambda: "overdue_2" in fakes.templates)
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("1250"), reference="B-1")
    )
    await handle.result()
    return handle


async def _two_instalments(journeys: Journeys) -> AgreeArrangement:
    """EUR 400.00 in 10 days and 850.00 in 40 (the debtor's days)."""
    return two_instalments_from(await today(journeys), "400.00", "850.00")


async def _plan_defaulted(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """The journey's history; the plan's own history is stored beside it (`_plan`)."""
    fakes = journeys.fakes
    handle = await journeys.start("plan", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await _two_instalments(journeys))
    await journeys.until(lambda: "instalment_reminder" in fakes.templates)
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("400"), reference="B-1")
    )
    await handle.result()
    return handle


async def _bounced_then_paid(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Email refused at once (fallback to SMS), then the SMS bounces later (resent elsewhere)."""
    fakes = journeys.fakes
    fakes.bounce = {Channel.email}
    handle = await journeys.start("bounced", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.signal(
        InvoiceJourney.message_bounced,
        MessageBounced(message_key=f"{handle.id}:before_due:sms", channel=Channel.sms),
    )
    await journeys.until(lambda: len(fakes.sent) >= 3, step=timedelta(minutes=10))
    await handle.signal(InvoiceJourney.channel_opted_in, ChannelOptedIn(channel=Channel.sms))
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("1250"), reference="B-1")
    )
    await handle.result()
    return handle


async def _message_queued_while_paused(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """A dispute resolved while the journey is paused: its one-off message meets a hold."""
    fakes = journeys.fakes
    handle = await journeys.start("queued-on-hold", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await handle.execute_update(InvoiceJourney.pause, Pause(reason="debtor in hospital"))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.sleep(timedelta(days=2))
    await handle.execute_update(InvoiceJourney.resume, Resume(reason="back"))
    await journeys.until(lambda: len(fakes.sent) >= 3)
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("1250"), reference="B-1")
    )
    await handle.result()
    return handle


async def _plan_continued_as_new(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """A plan on its own (started as the journey starts it, with a small history budget) that
    continues as new twice, with a bounce after the first continue-as-new."""
    fakes = journeys.fakes
    now = await journeys.env.get_current_time()
    day = await today(journeys)
    invoice_id = f"{journeys.task_queue}-plan-can"
    invoice = Invoice(
        invoice_id=invoice_id,
        amount=Decimal("600.00"),
        currency="EUR",
        issued_on=now.date(),
        due_on=now.date(),
        payment_url=f"https://pay.example.com/{invoice_id}",
        customer=Customer(
            id="C-17",
            name="Bakkerij de Vries",
            email="ap@devries.example",
            phone="+31612345678",
            locale="nl",
            timezone="Europe/Amsterdam",
            country="NL",
        ),
    )
    plan_input = PlanInput(
        invoice=invoice,
        number=1,
        policy=STANDARD_POLICY,
        instalments=[
            Instalment(due_on=day + timedelta(days=10 + 30 * n), amount=Decimal("100.00"))
            for n in range(6)
        ],
        history_budget=60,
    )
    handle = await journeys.env.client.start_workflow(
        InstalmentPlan.run,
        plan_input,
        id=f"invoice-{invoice_id}-plan-1",
        task_queue=journeys.task_queue,
    )
    for n in range(1, 7):
        await journeys.until(lambda n=n: fakes.templates.count("instalment_reminder") >= n)  # type: ignore[misc]
        if n == 2:
            sent = fakes.sent[-1]
            await handle.signal(
                InstalmentPlan.message_bounced,
                MessageBounced(
                    message_key=f"{sent.request.key_prefix}:email", channel=Channel.email
                ),
            )
        await handle.signal(
            InstalmentPlan.payment_received,
            PaymentReceived(amount=Decimal("100.00"), reference=f"B-{n}"),
        )
    await handle.result()
    return handle


async def _debtor_replied_and_disputed(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """The debtor's page and replies: a reply holds the ladder until an agent answers, then a
    dispute opened by the debtor is confirmed at once (the patch confirm-a-debtors-dispute)."""
    fakes = journeys.fakes
    handle = await journeys.start("debtor", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 1)
    reply = DebtorReplied(channel=Channel.email, text="Is this mine?", reference="email:m1")
    await handle.signal(InvoiceJourney.debtor_replied, reply)
    await journeys.sleep(timedelta(days=2))
    await handle.signal(
        InvoiceJourney.task_completed, TaskCompleted(task_id="t1", kind="reply", note="called")
    )
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(
        InvoiceJourney.open_dispute, OpenDispute(reason="already_paid", actor="debtor")
    )
    await journeys.until(lambda: "dispute_received" in fakes.templates)
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.sleep(timedelta(hours=1))  # its one-off message goes out first
    await handle.signal(
        InvoiceJourney.payment_received,
        PaymentReceived(amount=Decimal("1250"), reference="mollie:tr_1", actor="debtor"),
    )
    await handle.result()
    return handle


async def _reached_nobody(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """The only channel of the first step refuses the address: an agent is asked for a working
    contact. Recorded with `--before fall-back-to-another-channel` (no other channel is tried)."""
    fakes = journeys.fakes
    fakes.bounce = {Channel.email}
    handle = await journeys.start("nobody", due_in=timedelta(days=5))
    await journeys.until(lambda: "no_working_contact" in fakes.tasks())
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("1250"), reference="B-1")
    )
    await handle.result()
    return handle


async def _paid_during_the_last_record(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Paid; a late payment arrives while the thank-you goes out, and another while the record
    of that one, the very last, is written. Recorded with `--before record-the-last-events`
    (the journey closes without recording the last one)."""
    fakes = journeys.fakes
    handle = await journeys.start("last-record", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    seen = late_payments_while_closing(handle, fakes)
    await handle.signal(
        InvoiceJourney.payment_received, PaymentReceived(amount=Decimal("1250"), reference="B-1")
    )
    await handle.result()
    assert seen == {"late", "later"}, seen
    return handle


async def _plan_paid_while_continuing(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """A plan on its own that continues as new right after the record during which a second part
    payment reaches it, then is paid in full. Recorded with `--before
    plan-continues-as-new-with-nothing-unrecorded` (the old run ends with that payment unrecorded,
    the next run does not record it)."""
    second = pay("50.00", "B-2")
    handle = await signal_while_the_plan_continues(
        journeys, InstalmentPlan.payment_received, second
    )
    await journeys.sleep(timedelta(hours=1))
    await handle.signal(InstalmentPlan.payment_received, pay("1100.00", "B-3"))
    await handle.result()
    return handle


async def _paid_while_falling_back(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """The reminder's email bounces, and the invoice is paid while the record of its fallback to
    SMS is written. Recorded with `--before withdraw-a-message-when-closed-while-recording` (the
    SMS still goes out, then the thank-you)."""
    handle = await journeys.start("paid-fallback", due_in=timedelta(days=5))
    deliveries = paid_while_falling_back(handle, journeys.fakes)
    await handle.result()
    assert ("thank_you", True) in deliveries, deliveries
    return handle


async def _plan_agreed_during_a_pause(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Paused, a plan agreed, resumed days later, then paid in full. Recorded with `--before
    tell-a-starting-plan-of-a-hold` (the plan starts unheld and messages the paused debtor)."""
    fakes = journeys.fakes
    handle = await journeys.start("plan-paused", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.pause, Pause(reason="debtor in hospital"))
    await handle.execute_update(InvoiceJourney.agree_arrangement, await _two_instalments(journeys))
    await journeys.sleep(timedelta(days=3))
    await handle.execute_update(InvoiceJourney.resume, Resume())
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates)
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "B-1"))
    await handle.result()
    return handle


async def _adjusted_while_the_old_plan_ends(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Plan 1 runs; plan 2 is agreed, and while plan 1 records its end a dispute sets the amount
    to 900.00; a day later 900.00 is paid. Recorded with `--before
    an-adjusted-dispute-ends-a-plan-not-yet-running` (plan 2 starts with the old amount)."""
    fakes = journeys.fakes
    handle = await journeys.start("adjusted-plan", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await _two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates)
    await adjusted_while_the_old_plan_ends(handle, fakes, await _two_instalments(journeys))
    await journeys.sleep(timedelta(days=1))
    await handle.signal(InvoiceJourney.payment_received, pay("900.00", "B-1"))
    await handle.result()
    return handle


async def _cancelled_plan_then_adjusted(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Plan 1 runs; an agent cancels it, and while it records its end a dispute sets the amount
    to 900.00; a day later 900.00 is paid. Recorded with `--before
    a-plan-already-ending-needs-no-successor` (the plan is told to end twice and an agent is asked
    to agree a new plan)."""
    fakes = journeys.fakes
    handle = await journeys.start("cancelled-adjusted", due_in=timedelta(days=5))
    await journeys.until(lambda: len(fakes.sent) >= 2)
    await handle.execute_update(InvoiceJourney.agree_arrangement, await _two_instalments(journeys))
    await journeys.until(lambda: "arrangement_agreed" in fakes.templates)
    await adjusted_while_the_plan_is_cancelled(handle, fakes)
    await journeys.sleep(timedelta(days=1))
    await handle.signal(InvoiceJourney.payment_received, pay("900.00", "B-1"))
    await handle.result()
    return handle


async def _dropped_then_agreed_again(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """On a real server: a plan agreed, and a dispute opened and resolved with the amount set to
    900.00, all in one workflow task (the plan never starts); then a new plan is agreed, and 900.00
    paid. Recorded with `--before a-plans-number-is-never-given-twice` (the new plan is plan 1
    again)."""
    async with in_one_task(journeys, agreed_then_adjusted) as handle:
        again = two_instalments_from(await today(journeys), "400.00", "500.00")
        await handle.execute_update(InvoiceJourney.agree_arrangement, again)
        await handle.signal(InvoiceJourney.payment_received, pay("900.00", "B-1"))
        await handle.result()
    return handle


async def _agreed_and_cancelled_at_once(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """On a real server: a plan agreed and cancelled in one workflow task, then paid in full.
    Recorded with `--before a-plan-ended-before-it-started-leaves-nothing-behind` (the journey
    stays on the plan's hold until it is paid)."""
    async with agreed_and_cancelled_in_one_task(journeys) as handle:
        await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "B-1"))
        await handle.result()
    return handle


async def _plan_paid_while_its_message_retries(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """The provider is down as the plan sends its confirmation; the invoice is paid in full while
    the send retries; an hour later the provider is back. Recorded with `--before
    a-plans-end-withdraws-its-retrying-send` (the confirmation goes out after the payment)."""
    handle = await journeys.start("plan-retrying", due_in=timedelta(days=5))
    await journeys.until(lambda: len(journeys.fakes.sent) >= 2)
    await paid_while_the_plans_message_retries(journeys, handle, await _two_instalments(journeys))
    await handle.result()
    return handle


async def _started_by_the_api(journeys: Journeys) -> WorkflowHandle[Any, Any]:
    """Started as the API starts it (`start_recorded`: the API has recorded the start): nothing
    written in the first task; the first message carries the start again. A dispute, rejected,
    then the invoice is paid in full."""
    fakes = journeys.fakes
    handle = await journeys.start("api", due_in=timedelta(days=5), start_recorded=True)
    await journeys.until(lambda: len(fakes.sent) >= 1)
    await handle.execute_update(InvoiceJourney.open_dispute, OpenDispute(reason="damaged"))
    await journeys.sleep(timedelta(days=2))
    await handle.execute_update(
        InvoiceJourney.resolve_dispute, ResolveDispute(outcome=DisputeOutcome.rejected)
    )
    await journeys.until(lambda: len(fakes.sent) >= 2)  # not while a message is under way
    await handle.signal(InvoiceJourney.payment_received, pay("1250.00", "BANK-API"))
    await handle.result()
    return handle


async def _every_run(client: Any, workflow_id: str, name: str) -> dict[str, Any]:
    """Each run of a workflow that continued as new, oldest first (`<name>_run<N>`)."""
    runs = await every_run(client, workflow_id)
    return {f"{name}_run{n}": h for n, h in enumerate(reversed(runs), start=1)}


SCENARIOS = {
    "standard_ladder": _standard_ladder,
    "dispute_adjusted_then_paid": _dispute_then_paid,
    "promise_broken_then_paid": _promise_broken_then_paid,
    "plan_defaulted": _plan_defaulted,
    "bounced_then_paid": _bounced_then_paid,
    "message_queued_while_paused": _message_queued_while_paused,
    "plan_continued_as_new": _plan_continued_as_new,
    "debtor_replied_and_disputed": _debtor_replied_and_disputed,
    "reached_nobody": _reached_nobody,
    "paid_during_the_last_record": _paid_during_the_last_record,
    "plan_paid_while_continuing": _plan_paid_while_continuing,
    "paid_while_falling_back": _paid_while_falling_back,
    "plan_agreed_during_a_pause": _plan_agreed_during_a_pause,
    "adjusted_while_the_old_plan_ends": _adjusted_while_the_old_plan_ends,
    "agreed_and_cancelled_at_once": _agreed_and_cancelled_at_once,
    "plan_paid_while_its_message_retries": _plan_paid_while_its_message_retries,
    "cancelled_plan_then_adjusted": _cancelled_plan_then_adjusted,
    "dropped_then_agreed_again": _dropped_then_agreed_again,
    "started_by_the_api": _started_by_the_api,
}
CONTINUED_AS_NEW = {"plan_continued_as_new", "plan_paid_while_continuing"}
"""Scenarios whose workflow continues as new: stored run by run."""
WITH_THE_PLAN = {"plan_defaulted", "plan_paid_while_its_message_retries"}
"""Scenarios whose first plan's history is stored too (`<name>_plan`)."""
ON_A_REAL_SERVER = {"agreed_and_cancelled_at_once", "dropped_then_agreed_again"}
"""Scenarios that need a real server (the dev server, in real time) and run their own workers:
they stop the worker to make two commands meet in one workflow task."""


def _patch_ids() -> set[str]:
    """Every id the workflows pass to `workflow.patched` (their `PATCH_*` constants)."""
    modules = [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(workflows.__path__, "workflows.")
    ]
    return {
        value
        for module in modules
        for name, value in vars(module).items()
        if name.startswith("PATCH_") and isinstance(value, str)
    }


def _before(patch_id: str) -> None:
    """Record as a worker from before `patch_id`: its `workflow.patched` answers False."""
    original = workflow.patched

    def patched(id: str) -> bool:
        return False if id == patch_id else original(id)

    workflow.patched = patched  # type: ignore[assignment]


async def main(suffix: str, names: list[str]) -> None:
    from temporalio.testing import WorkflowEnvironment

    from tests.conftest import register_search_attributes
    from tests.keys import TEST_CONVERTER

    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=TEST_CONVERTER, test_server_existing_path=_binary("temporal-test-server")
    )
    wanted = [n for n in SCENARIOS if not names or n in names]
    real = None
    if ON_A_REAL_SERVER.intersection(wanted):
        real = await start_dev_server()
    try:
        await register_search_attributes(env.client)
        for name in wanted:
            scenario, fakes = SCENARIOS[name], FakeActivities()
            queue = f"record-{name}"
            if real is not None and name in ON_A_REAL_SERVER:
                handle = await scenario(Journeys(real, queue, fakes))
                histories = {name: await handle.fetch_history()}
            else:
                async with fake_workers(env.client, queue, fakes):
                    handle = await scenario(Journeys(env, queue, fakes))
                    histories = {name: await handle.fetch_history()}
                    if name in WITH_THE_PLAN:
                        plan = env.client.get_workflow_handle(f"{handle.id}-plan-1")
                        histories[f"{name}_plan"] = await plan.fetch_history()
                    if name in CONTINUED_AS_NEW:
                        histories = await _every_run(env.client, handle.id, name)
            for stem, history in histories.items():
                path = HERE / f"{stem}_{suffix}.json"
                if path.exists():
                    raise SystemExit(f"{path.name} exists; choose another suffix")
                path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"{path.name}: {len(history.events)} events")
    finally:
        if real is not None:
            await real.shutdown()
        await env.shutdown()


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--before" in args:
        at = args.index("--before")
        patch_id = args[at + 1] if at + 1 < len(args) else ""
        if patch_id not in _patch_ids():
            raise SystemExit(f"--before wants a patch id: {', '.join(sorted(_patch_ids()))}")
        del args[at : at + 2]
        if len(args) < 2:
            raise SystemExit("--before records only the scenarios named after the suffix")
        _before(patch_id)
    if not args:
        raise SystemExit(
            "usage: python -m tests.histories.record SUFFIX [--before PATCH_ID] [SCENARIO...]"
            f"   (e.g. v6)\nscenarios: {', '.join(SCENARIOS)}"
        )
    asyncio.run(main(args[0], args[1:]))
