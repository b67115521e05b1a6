"""Who paid what: a payment fills the earliest open instalments first; what the plan's messages
say about the instalments (pure, no Temporal)."""

from __future__ import annotations

from decimal import Decimal

from workflows.models import InstalmentStatus, InstalmentView, PlanOutcome, PlanView


def allocate(view: PlanView, amount: Decimal) -> list[int]:
    """Apply `amount` to the plan; answers the numbers of the instalments it paid in full.

    What is left once every instalment is paid stays with the journey (which flags a surplus).
    """
    left = amount
    filled: list[int] = []
    for instalment in view.instalments:
        if left <= 0:
            break
        if instalment.status == InstalmentStatus.paid:
            continue
        take = min(left, instalment.amount - instalment.paid)
        instalment.paid += take
        left -= take
        if instalment.paid >= instalment.amount:
            instalment.status = InstalmentStatus.paid
            filled.append(instalment.number)
    view.paid += amount - left
    view.outstanding = view.total - view.paid
    return filled


def current(view: PlanView) -> InstalmentView | None:
    """The earliest instalment not fully paid."""
    return next((i for i in view.instalments if i.status != InstalmentStatus.paid), None)


def instalment_extra(view: PlanView, instalment: InstalmentView) -> dict[str, str]:
    """The template fields of a message about `instalment`."""
    return {
        "instalment_number": str(instalment.number),
        "instalment_count": str(len(view.instalments)),
        "instalment_amount": str(instalment.amount - instalment.paid),
        "instalment_due_on": instalment.due_on.isoformat(),
    }


def schedule_extra(view: PlanView) -> dict[str, str]:
    """The template fields of the message confirming the plan: every instalment's day and amount."""
    plan = ";".join(f"{i.due_on.isoformat()}={i.amount}" for i in view.instalments)
    return {"plan_schedule": plan, "instalment_count": str(len(view.instalments))}


def details(view: PlanView, stage: str, held: str | None) -> str:
    """The plan's current details in the Temporal UI: paid so far, the next instalment, a hold."""
    paid = sum(1 for i in view.instalments if i.status == InstalmentStatus.paid)
    text = (
        f"**{stage}** · {paid} of {len(view.instalments)} instalments paid · "
        f"{view.currency} {view.paid} paid, {view.outstanding} to go"
    )
    following = current(view)
    if following is not None and view.status == PlanOutcome.running:
        text += (
            f"\n\nnext: instalment {following.number}, {view.currency} "
            f"{following.amount - following.paid} due {following.due_on}"
        )
    if held is not None:
        text += f"\n\non hold: the journey is {held}"
    return text
