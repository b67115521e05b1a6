"""The worker SIGKILLed at seeded random moments while 501 messages go out (PostgreSQL, SQLite).

Each kill is a worker dying mid-activity: sends claimed and not yet marked, a provider's answer
never heard. The next worker takes over and asks the provider whether the message reached it
(Twilio's message list; SendGrid's Email Activity, which the fake runs 3 s behind). No message may
arrive twice, on any channel.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.faults.conftest import Harness, assert_nothing_lost_or_doubled

pytestmark = pytest.mark.asyncio(loop_scope="session")

JOURNEYS = 167  # x 3 channels = 501 messages
KILLS = 14
"""Each kill costs a worker start (about 5 s here); 14 on each database keep `make test` within
its 15 minutes on 2 cores and still catch dozens of sends in flight (74 and 104 in one run)."""
SPREAD_S = 80.0  # as long as the kills take: there is always new work to cut
SEED = 20261129
PROVIDER_S = 0.2
"""Each provider call takes this long, as real ones do: kills land mid-send, not only between."""


@pytest.mark.parametrize("database", ["postgresql", "sqlite"], indirect=True)
async def test_a_worker_killed_again_and_again_loses_nothing_and_doubles_nothing(
    harness: Harness, database: str
) -> None:
    harness.providers.delay_s = PROVIDER_S
    began = time.monotonic()
    harness.start_worker()
    await harness.start_journeys(JOURNEYS, lead_s=6, spread_s=SPREAD_S)
    # Each kill at a seeded random moment 0.5 to 2 s after the (re)started worker is seen
    # working: it dies in the middle of its work, not while it is still starting up.
    rng = random.Random(SEED)
    for _ in range(KILLS):
        await harness.working()
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        await asyncio.to_thread(harness.kill_worker)
        harness.start_worker()

    await harness.wait_until_sent(timeout_s=240)

    kind = "postgresql" if database.startswith("postgresql") else "sqlite"
    figures = harness.figures(
        f"worker-sigkill[{kind}]",
        kills=harness.kills,
        caught_mid_send=len(harness.caught_mid_send),
        seconds=round(time.monotonic() - began),
    )
    assert harness.kills == KILLS
    assert harness.caught_mid_send, "no kill landed during a send: the test proved nothing"
    assert_nothing_lost_or_doubled(figures)
