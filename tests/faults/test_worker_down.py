"""No worker while several steps fall due: when one is back, each journey sends one catch-up
message (the latest step that fell due), not a burst of every step it missed."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from tests.faults.conftest import Harness
from workflows.policy import Channel, Policy, Step, Tone

pytestmark = pytest.mark.asyncio(loop_scope="session")

GAP_S = 10
"""The first step goes while the worker runs; the worker is stopped long before the second."""

LADDER = Policy(
    name="worker-down",
    send_window=None,
    steps=[
        Step(name="first", offset=timedelta(0), tone=Tone.friendly, template="overdue_1",
             channels=[Channel.email]),
        Step(name="second", offset=timedelta(seconds=GAP_S), tone=Tone.neutral,
             template="overdue_2", channels=[Channel.email]),
        Step(name="third", offset=timedelta(seconds=GAP_S + 2), tone=Tone.firm,
             template="overdue_3", channels=[Channel.email]),
        Step(name="fourth", offset=timedelta(seconds=GAP_S + 4), tone=Tone.final,
             template="final_notice", channels=[Channel.email]),
        Step(name="later", offset=timedelta(hours=1), tone=Tone.final, template="final_notice",
             channels=[Channel.email]),
    ],
)  # fmt: skip

JOURNEYS = 5


async def test_a_worker_back_after_three_steps_fell_due_sends_one_catch_up_per_journey(
    harness: Harness,
) -> None:
    harness.start_worker()
    await harness.start_journeys(JOURNEYS, lead_s=2, policy=LADDER)
    due = time.monotonic() + 2
    await until(lambda: steps(harness) == ["first"] * JOURNEYS, within_s=60)
    harness.stop_worker()
    assert time.monotonic() < due + GAP_S, "the worker outlived the second step: no proof"

    # Every later step but the hourly one falls due with no worker.
    await asyncio.sleep(max(0.0, due + GAP_S + 6 - time.monotonic()))
    harness.start_worker()
    await until(lambda: len(steps(harness)) == 2 * JOURNEYS, within_s=90)
    await asyncio.sleep(3)  # room for a burst, were there one

    assert sorted(steps(harness)) == ["first"] * JOURNEYS + ["fourth"] * JOURNEYS
    for invoice_id in harness.invoice_ids():
        skipped = [e for e in harness.store.timeline(invoice_id) if e.kind == "steps_skipped"]
        assert [e.detail["steps"] for e in skipped] == [["second", "third"]], invoice_id


def steps(harness: Harness) -> list[str]:
    """The steps whose emails reached the fake SendGrid for this harness's journeys (a message
    key is `invoice-<id>:<step>:email`)."""
    ours = harness.prefix.lower()
    return [
        str(m["key"]).split(":")[-2]
        for m in harness.providers.received
        if m["provider"] == "sendgrid" and ours in str(m["to"])
    ]


async def until(condition: object, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.2)
