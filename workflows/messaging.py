"""One messenger for the journey and its plans: how a message is handed to the delivery activity,
one channel per attempt, each on its provider's own task queue.

A new channel goes here (`PROVIDERS`: which provider's queue sends it), in
`workflows.policy.Channel` and in `activities.channels` (its sender); the journey and the plan
need no change.

Each provider has a task queue (`<queue>.sendgrid`, `<queue>.twilio`) whose workers carry
Temporal's `max_task_queue_activities_per_second`: the server paces the sends of every worker
together, so nothing sleeps inside an activity to respect a rate limit. One channel per activity
keeps each attempt short and lets a dispute or a pause withdraw the channels not yet sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.common import DELIVER_ACTIVITY, DELIVER_TIMEOUT, RETRY
from workflows.models import MessageRequest, MessageResult
from workflows.policy import Channel

PATCH_PER_CHANNEL = "deliver-one-channel-per-attempt"
"""Before it, a message went out as one activity on the journey's queue for all its channels."""

PROVIDERS = {Channel.email: "sendgrid", Channel.sms: "twilio", Channel.whatsapp: "twilio"}

ATTEMPT_TIMEOUT = timedelta(minutes=2)
"""One attempt's start-to-close. The activity gives itself a deadline well inside it
(`activities.messaging.SEND_DEADLINE`), so Temporal never starts a second attempt while the first
may still be talking to the provider."""

HEARTBEAT_TIMEOUT = timedelta(seconds=10)

DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
"""Forever, as every retry here: a message waits out an outage. At most a minute apart, so it
goes soon after the provider is back (the provider's queue caps the pace of the retries)."""
"""A worker killed mid-send stops heartbeating (every 3 s): its attempt is retried this soon."""

SETTLE = timedelta(seconds=5)
"""How long a send under way may finish before an end withdraws it (`send`'s `ended`): an attempt
in flight takes well under a second; one waiting to retry (an outage) is withdrawn."""


def never() -> bool:
    """A stop or an end that never comes."""
    return False


async def send(
    request: MessageRequest,
    stop: Callable[[], bool],
    withdrawable: Callable[[], bool],
    ended: Callable[[], bool] = never,
) -> MessageResult | None:
    """Deliver `request`; None when `stop()` withdrew it before any channel was sent. `ended()`
    withdraws it too, after giving an attempt under way `SETTLE` to finish.

    Journeys and plans begun before `PATCH_PER_CHANNEL` replay their older way: one activity for
    every channel on the journey's queue, withdrawn by `stop()` only where `withdrawable()` (the
    journey's older `withdraw-send-on-hold` patch) says so.
    """
    if workflow.patched(PATCH_PER_CHANNEL):
        return await deliver_per_channel(
            request, f"{request.tone.value} · {request.template}", stop, ended
        )
    channels = "+".join(c.value for c in request.channels)
    summary = f"{channels} · {request.tone.value} · {request.template}"
    if withdrawable():
        return await deliver_on_journey_queue(request, summary, stop)
    return await workflow.execute_activity(
        DELIVER_ACTIVITY,
        request,
        result_type=MessageResult,
        start_to_close_timeout=DELIVER_TIMEOUT,
        retry_policy=RETRY,
        summary=summary,
    )


def provider_queue(task_queue: str, channel: Channel) -> str:
    """The task queue whose workers send `channel` (paced by the server for that provider)."""
    return f"{task_queue}.{PROVIDERS[channel]}"


async def deliver_per_channel(
    request: MessageRequest,
    summary: str,
    stop: Callable[[], bool],
    ended: Callable[[], bool] = never,
) -> MessageResult | None:
    """Send `request` one activity per channel; None when `stop()` withdrew it unsent.

    A step's channels (`all_channels`) go out together, so a debtor gets the email and the text
    at the same moment; a fallback tries one channel after another until one works. A send still
    retrying (a provider outage) is cancelled when `stop()` becomes true; an attempt already in
    flight may still complete, and its message key then shows it as sent.
    """
    result = MessageResult()
    if request.all_channels:
        if stop() or ended():
            return None
        sends = [_start(request, channel, summary) for channel in request.channels]
        for part in await _finished(sends, stop, ended):
            result.outcomes.extend(part.outcomes)
        return result if result.outcomes else None
    for channel in request.channels:
        if stop() or ended():
            break
        done = await _finished([_start(request, channel, summary)], stop, ended)
        if not done:
            break
        result.outcomes.extend(done[0].outcomes)
        if done[0].delivered:
            break
    return result if result.outcomes else None


def _start(
    request: MessageRequest, channel: Channel, summary: str
) -> workflow.ActivityHandle[MessageResult]:
    return workflow.start_activity(
        DELIVER_ACTIVITY,
        request.model_copy(update={"channels": [channel]}),
        result_type=MessageResult,
        task_queue=provider_queue(workflow.info().task_queue, channel),
        start_to_close_timeout=ATTEMPT_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=DELIVERY_RETRY,
        summary=f"{channel.value} · {summary}",
    )


async def _finished(
    sends: list[workflow.ActivityHandle[MessageResult]],
    stop: Callable[[], bool],
    ended: Callable[[], bool],
) -> list[MessageResult]:
    """The results of the sends that completed; those still pending when `stop()` are cancelled,
    and those still pending `SETTLE` after `ended()`."""

    def all_done() -> bool:
        return all(s.done() for s in sends)

    await workflow.wait_condition(lambda: all_done() or stop() or ended())
    if not all_done() and not stop():
        # Ended: an attempt under way finishes (cancelling it as it completes is only noise);
        # a send waiting to retry is withdrawn.
        try:
            await workflow.wait_condition(
                lambda: all_done() or stop(),
                timeout=SETTLE,
                timeout_summary="a send under way finishing before the end withdraws it",
            )
        except TimeoutError:
            pass
    for send in sends:
        if not send.done():
            send.cancel()
    results = []
    for send in sends:
        try:
            results.append(await send)
        except (ActivityError, asyncio.CancelledError):
            pass
    return results


async def deliver_on_journey_queue(
    request: MessageRequest, summary: str, stop: Callable[[], bool]
) -> MessageResult | None:
    """Before `PATCH_PER_CHANNEL`: one activity for all channels on the journey's own queue,
    withdrawn (None) when `stop()` comes first. Kept for the journeys that started before."""
    activity = workflow.start_activity(
        DELIVER_ACTIVITY,
        request,
        result_type=MessageResult,
        start_to_close_timeout=DELIVER_TIMEOUT,
        retry_policy=RETRY,
        summary=summary,
    )
    await workflow.wait_condition(_done_or(activity, stop))
    if not activity.done():
        activity.cancel()
    try:
        return await activity
    except (ActivityError, asyncio.CancelledError):
        return None


def _done_or(
    activity: workflow.ActivityHandle[MessageResult], stop: Callable[[], bool]
) -> Callable[[], bool]:
    return lambda: activity.done() or stop()
