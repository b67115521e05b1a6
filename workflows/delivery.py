"""How the journey and its plans hand a message to the delivery activity: one channel per attempt,
each on its provider's own task queue.

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
"""A worker killed mid-send stops heartbeating (every 3 s): its attempt is retried this soon."""


def provider_queue(task_queue: str, channel: Channel) -> str:
    """The task queue whose workers send `channel` (paced by the server for that provider)."""
    return f"{task_queue}.{PROVIDERS[channel]}"


async def deliver_per_channel(
    request: MessageRequest, summary: str, stop: Callable[[], bool]
) -> MessageResult | None:
    """Send `request` one channel at a time, in order; None when `stop()` withdrew it unsent.

    A channel's send still retrying (a provider outage) is cancelled when `stop()` becomes true;
    an attempt already in flight may still complete, and its message key then shows it as sent.
    """
    result = MessageResult()
    base = workflow.info().task_queue
    for channel in request.channels:
        if stop():
            break
        activity = workflow.start_activity(
            DELIVER_ACTIVITY,
            request.model_copy(update={"channels": [channel]}),
            result_type=MessageResult,
            task_queue=provider_queue(base, channel),
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RETRY,
            summary=f"{channel.value} · {summary}",
        )
        await workflow.wait_condition(_done_or(activity, stop))
        if not activity.done():
            activity.cancel()
        try:
            part = await activity
        except (ActivityError, asyncio.CancelledError):
            break
        result.outcomes.extend(part.outcomes)
        if part.delivered and not request.all_channels:
            break
    return result if result.outcomes else None


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
