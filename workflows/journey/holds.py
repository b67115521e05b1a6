"""The deadlines of the journey's holds: a dispute's review, a pause's end, a promise's date, the
time given to answer a debtor's reply.

Pure functions of the state (tested without Temporal); the journey waits for the earliest and then
asks `expired` what fell due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from workflows.journey.state import DISPUTE, PAUSE, PROMISE, REPLY, JourneyState
from workflows.policy import Policy


class Deadline(NamedTuple):
    at: datetime
    what: str


def next_deadline(state: JourneyState, policy: Policy) -> Deadline | None:
    """The earliest moment a hold needs the journey again (None: only a person can end it)."""
    deadlines: list[Deadline] = []
    holds = state.holds
    if DISPUTE in holds and state.dispute is not None:
        review = state.dispute.review_at(policy.dispute_review_after)
        if review is not None:
            deadlines.append(Deadline(review, "dispute review"))
    if PAUSE in holds and state.pause and state.pause.until:
        deadlines.append(Deadline(state.pause.until, "end of pause"))
    if PROMISE in holds and state.promise.due is not None:
        deadlines.append(Deadline(state.promise.due, "the promised payment"))
    if REPLY in holds and state.reply_until is not None:
        deadlines.append(Deadline(state.reply_until, "an answer to the debtor's reply"))
    return min(deadlines) if deadlines else None


def working_days_after(start: datetime, span: timedelta) -> datetime:
    """`span` later, counting whole days as working days (Monday to Friday)."""
    moment, days = start, span.days
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment + (span - timedelta(days=span.days))


class Expired(NamedTuple):
    dispute_review: bool
    pause: bool
    promise: bool
    reply: bool = False


def expired(state: JourneyState, policy: Policy, now: datetime) -> Expired:
    """Which holds' deadlines have passed at `now`."""
    holds = state.holds
    review = (
        state.dispute.review_at(policy.dispute_review_after)
        if DISPUTE in holds and state.dispute is not None
        else None
    )
    until = state.pause.until if PAUSE in holds and state.pause else None
    due = state.promise.due if PROMISE in holds else None
    return Expired(
        dispute_review=review is not None and now >= review,
        pause=until is not None and now >= until,
        promise=due is not None and now >= due,
        reply=REPLY in holds and state.reply_until is not None and now >= state.reply_until,
    )
