"""A plan proposed on the debtor's page, without Temporal: instalments that add up to the cent,
monthly dates that survive short months, and the policy's self-service limits."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from api.portal.proposal import monthly, refusal, split
from workflows.policy import SelfServicePlan

TODAY = date(2026, 12, 4)


def test_instalments_add_up_to_the_cent_and_the_last_takes_what_rounding_left() -> None:
    plan = split(Decimal("1250.00"), "EUR", 3, date(2027, 1, 31))
    assert [i.amount for i in plan] == [Decimal("416.66"), Decimal("416.66"), Decimal("416.68")]
    assert sum(i.amount for i in plan) == Decimal("1250.00")
    # The 31st, in February and April, becomes the month's last day.
    assert [i.due_on for i in plan] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31)]
    yen = split(Decimal("1000"), "JPY", 3, TODAY)
    assert [i.amount for i in yen] == [Decimal("333"), Decimal("333"), Decimal("334")]
    # The read model keeps four decimals; the page shows and sends the currency's two.
    stored = split(Decimal("1250.0000"), "EUR", 3, TODAY)
    assert [str(i.amount) for i in stored] == ["416.66", "416.66", "416.68"]


def test_monthly_dates_cross_the_year() -> None:
    assert monthly(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert monthly(date(2026, 12, 15), 1) == date(2027, 1, 15)


@pytest.mark.parametrize(
    ("count", "first", "amount", "why"),
    [
        (3, TODAY + timedelta(days=7), "1250.00", None),
        (6, TODAY + timedelta(days=14), "1250.00", None),
        (7, TODAY + timedelta(days=7), "1250.00", "plan_too_many"),
        (3, TODAY + timedelta(days=15), "1250.00", "plan_first_late"),
        (3, TODAY - timedelta(days=1), "1250.00", "plan_first_late"),
        (3, TODAY + timedelta(days=7), "60.00", "plan_too_small"),
    ],
)
def test_the_policy_decides_what_the_page_agrees_by_itself(
    count: int, first: date, amount: str, why: str | None
) -> None:
    rules = SelfServicePlan()  # 6 instalments, at least 25, the first within 14 days
    assert refusal(rules, split(Decimal(amount), "EUR", count, first), TODAY) == why
    assert refusal(None, split(Decimal(amount), "EUR", count, first), TODAY) == (
        "plan_not_self_service"
    )
