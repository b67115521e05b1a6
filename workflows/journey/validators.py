"""Why the journey refuses a command: pure checks run by the updates' validators.

Each raises a non-retryable `ApplicationError` whose `type` the API maps to 409 (the journey's
state) or 422 (the input), with a message an agent can act on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from temporalio.exceptions import ApplicationError

from workflows import schedule
from workflows.common import fits_currency
from workflows.journey.state import JourneyState
from workflows.models import AgreeArrangement, Invoice, PlanInput, PromiseToPay, ResolveDispute
from workflows.models.commands import DisputeOutcome
from workflows.plan.timing import instalment_due
from workflows.policy import Policy


def refuse(message: str, type: str) -> ApplicationError:
    return ApplicationError(message, type=type, non_retryable=True)


def days(duration: timedelta) -> str:
    whole = duration / timedelta(days=1)
    return f"{whole:g} days" if whole >= 1 else f"{duration.total_seconds():g} seconds"


def must_be_open(state: JourneyState) -> None:
    if state.outcome is not None:
        raise refuse(f"the journey is closed ({state.outcome.value})", "JourneyClosed")


def must_not_be_disputed(state: JourneyState) -> None:
    if state.dispute is not None:
        raise refuse("a dispute is open on this invoice; resolve it first", "DisputeOpen")


def check_amount(amount: Decimal, what: str, state: JourneyState, currency: str) -> None:
    """Positive, in the currency's decimals, and no more than what is outstanding."""
    if amount <= 0 or not fits_currency(amount, currency):
        raise refuse(
            f"{what} {amount} must be positive, with at most {currency}'s decimals",
            "InvalidAmount",
        )
    if amount > state.outstanding:
        raise refuse(
            f"{what} {amount} is more than the {currency} {state.outstanding} outstanding",
            "InvalidAmount",
        )


def check_resolution(cmd: ResolveDispute, state: JourneyState, currency: str) -> None:
    must_be_open(state)
    if state.dispute is None:
        raise refuse("there is no open dispute on this invoice", "NoOpenDispute")
    if cmd.outcome == DisputeOutcome.adjusted:
        if cmd.amount is None or cmd.amount <= 0:
            raise refuse("an adjusted dispute needs the new positive amount", "InvalidAmount")
        if not fits_currency(cmd.amount, currency):
            raise refuse(
                f"the adjusted amount {cmd.amount} has more decimals than {currency} allows",
                "InvalidAmount",
            )
        if cmd.amount > state.outstanding:
            raise refuse(
                f"the adjusted amount {cmd.amount} is more than the outstanding "
                f"{state.outstanding}; an adjustment can only lower it",
                "InvalidAmount",
            )


def check_promise(
    cmd: PromiseToPay,
    state: JourneyState,
    policy: Policy,
    currency: str,
    promised: datetime,
    now: datetime,
    plan_running: bool,
) -> None:
    must_be_open(state)
    must_not_be_disputed(state)
    if plan_running:
        raise refuse(
            "an instalment plan is running; cancel it or agree a new plan instead",
            "ArrangementActive",
        )
    if (cmd.promised_on is None) == (cmd.promised_at is None):
        raise refuse("give exactly one of promised_on or promised_at", "InvalidPromise")
    tz = state.customer.timezone
    if cmd.promised_on is not None and cmd.promised_on < schedule.local_date(now, tz):
        raise refuse(f"promised_on {cmd.promised_on} is in the past", "InvalidPromise")
    if cmd.promised_at is not None and schedule.utc(cmd.promised_at) <= now:
        raise refuse(f"promised_at {cmd.promised_at} is in the past", "InvalidPromise")
    latest = now + policy.promise_max_delay
    if promised > latest:
        raise refuse(
            f"the promised date is more than {days(policy.promise_max_delay)} away "
            f"(the policy's promise_max_delay); the latest is {latest:%Y-%m-%d}, or agree "
            "an instalment plan",
            "InvalidPromise",
        )
    if cmd.amount is not None:
        check_amount(cmd.amount, "the promised amount", state, currency)


def check_arrangement(
    cmd: AgreeArrangement, state: JourneyState, invoice: Invoice, policy: Policy, now: datetime
) -> None:
    must_be_open(state)
    must_not_be_disputed(state)
    instalments = cmd.instalments
    limit = policy.max_instalments
    if not instalments:
        raise refuse("a plan needs at least one instalment", "InvalidArrangement")
    if len(instalments) > limit:
        raise refuse(
            f"{len(instalments)} instalments is more than the policy allows ({limit})",
            "InvalidArrangement",
        )
    currency = invoice.currency
    probe = PlanInput(invoice=invoice, number=0, policy=policy, instalments=instalments)
    previous: datetime | None = None
    for number, instalment in enumerate(instalments, start=1):
        name = f"instalment {number}"
        if (instalment.due_on is None) == (instalment.due_at is None):
            raise refuse(f"{name}: give exactly one of due_on or due_at", "InvalidArrangement")
        if instalment.amount <= 0 or not fits_currency(instalment.amount, currency):
            raise refuse(
                f"{name}: the amount {instalment.amount} must be positive, with at most "
                f"{currency}'s decimals",
                "InvalidArrangement",
            )
        due, late = instalment_due(instalment, probe)
        if previous is not None and due <= previous:
            raise refuse(f"{name}: due dates must be strictly ascending", "InvalidArrangement")
        if number == 1 and late <= now:
            raise refuse(f"{name}: the first due date is in the past", "InvalidArrangement")
        previous = due
    total = sum((i.amount for i in instalments), Decimal(0))
    if total != state.outstanding:
        raise refuse(
            f"the instalments add up to {currency} {total}, but {currency} "
            f"{state.outstanding} is outstanding; they must add up to it exactly",
            "InvalidArrangement",
        )
