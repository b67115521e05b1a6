"""A plan the debtor proposes on their page: the outstanding amount in N monthly instalments from
a first date, and whether the policy's `self_service_plan` lets it be agreed at once."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

from workflows.common import equal_parts
from workflows.models import Instalment
from workflows.policy import SelfServicePlan


def monthly(first_on: date, months: int) -> date:
    """The same day `months` months later (the month's last day when it is shorter)."""
    year, month = divmod(first_on.month - 1 + months, 12)
    year, month = first_on.year + year, month + 1
    return date(year, month, min(first_on.day, calendar.monthrange(year, month)[1]))


def split(outstanding: Decimal, currency: str, count: int, first_on: date) -> list[Instalment]:
    """Equal monthly instalments in whole minor units; what rounding leaves goes on the last."""
    amounts = equal_parts(outstanding, count, currency)
    return [Instalment(due_on=monthly(first_on, n), amount=a) for n, a in enumerate(amounts)]


def refusal(
    rules: SelfServicePlan | None, instalments: list[Instalment], today: date
) -> str | None:
    """Why the page cannot agree this plan by itself (a key of the page's texts), or None."""
    if rules is None:
        return "plan_not_self_service"
    first = instalments[0].due_on
    assert first is not None
    if len(instalments) > rules.max_instalments:
        return "plan_too_many"
    if min(i.amount for i in instalments) < rules.min_instalment:
        return "plan_too_small"
    if first < today or first > today + timedelta(days=max(rules.first_within.days, 0)):
        return "plan_first_late"
    return None
