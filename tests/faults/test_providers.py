"""Providers that misbehave: slow past the old 30 s window, slower than our own timeout, 429 storms,
5xx. Every message goes out once: a send whose answer was lost is looked up at the provider
(Twilio's message list, SendGrid's Email Activity), never resent blindly."""

from __future__ import annotations

import pytest

from tests.faults.conftest import Harness, assert_nothing_lost_or_doubled

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_provider_that_answers_after_35_seconds_gets_each_message_once(
    harness: Harness,
) -> None:
    harness.providers.delay_s = 35  # past the old 30 s attempt window; inside our 45 s timeout
    harness.start_worker()
    await harness.start_journeys(4, lead_s=5)  # 4 emails, 8 texts: one round of each queue

    await harness.wait_until_sent(timeout_s=150)

    figures = harness.figures("provider-slow-35s", delay_s=35)
    assert_nothing_lost_or_doubled(figures)


async def test_a_provider_slower_than_our_timeout_is_asked_before_anything_is_resent(
    harness: Harness,
) -> None:
    # It takes each message, then answers after our timeout: we cannot know it took it.
    harness.providers.delay_s = 6
    harness.extra_env["DUNWELL_PROVIDER_TIMEOUT_S"] = "3"
    harness.start_worker()
    await harness.start_journeys(3, lead_s=5)
    await harness.wait_until_sent(timeout_s=20)
    harness.providers.delay_s = 0  # the provider recovers; the retries find out what happened

    await harness.wait_until_sent(timeout_s=120)

    figures = harness.figures("provider-slower-than-timeout", delay_s=6, timeout_s=3)
    assert_nothing_lost_or_doubled(figures)  # Twilio and SendGrid were asked each time


@pytest.mark.parametrize("status", [429, 503])
async def test_a_storm_of_refusals_delays_messages_and_doubles_none(
    harness: Harness, status: int
) -> None:
    for provider in ("sendgrid", "twilio"):
        harness.providers.fail_next(provider, status, count=25)
    harness.start_worker()
    await harness.start_journeys(6, lead_s=5)

    await harness.wait_until_sent(timeout_s=150)

    figures = harness.figures(f"provider-{status}-storm", refused=50)
    assert_nothing_lost_or_doubled(figures)  # a refusal is certain: nothing resent blindly
