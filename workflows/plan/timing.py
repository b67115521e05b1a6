"""When an instalment falls due, counts as late, is reminded of (pure, no Temporal)."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

from workflows import schedule
from workflows.models import Instalment, InstalmentView, PlanInput
from workflows.policy import Policy

DAY = timedelta(days=1)


def instalment_due(
    instalment: Instalment | InstalmentView, input: PlanInput
) -> tuple[datetime, datetime]:
    """When an instalment falls due, and when it counts as late.

    A day (`due_on`) falls due at the send window's start and is late from the next day's window;
    a moment (`due_at`) is late at that moment.
    """
    customer = input.invoice.customer
    window = input.policy.send_window
    if instalment.due_at is not None:
        due = schedule.utc(instalment.due_at)
        return due, due
    assert instalment.due_on is not None
    due = schedule.due_moment(instalment.due_on, None, customer.timezone, window)
    with workflow.unsafe.sandbox_unrestricted():
        late = schedule.step_time(
            due, DAY, timedelta(0), window, customer.timezone, customer.country
        )
    return due, late


def reminder_at(due: datetime, policy: Policy, tz: str, country: str | None) -> datetime:
    """`instalment_reminder_before` the due moment, in an open send window before it.

    Weekends and public holidays can push the window past the due moment (Good Friday before
    Easter Monday); then the reminder moves a day earlier at a time, up to a week.
    """
    before = policy.instalment_reminder_before
    with workflow.unsafe.sandbox_unrestricted():
        for extra_days in range(8):
            at = schedule.step_time(
                due, -(before + extra_days * DAY), timedelta(0), policy.send_window, tz, country
            )
            if at < due:
                return at
    return at
