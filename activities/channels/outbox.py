"""The local outbox: messages stored and logged, plainly marked as not delivered to anyone."""

from __future__ import annotations

import logging
from datetime import datetime

from activities.channels.base import SendReceipt, masked
from activities.rendering import RenderedMessage
from workflows.policy import Channel

log = logging.getLogger("dunwell.channels")

# ---- outbox ------------------------------------------------------------------------------------


class OutboxSender:
    """Development and demos: delivers nothing, says so in the log."""

    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        first_line = message.subject or (message.text.splitlines() or [""])[0]
        log.info(
            "OUTBOX (not delivered) %s to %s: %s [%s]", channel.value, masked(to), first_line, key
        )
        return SendReceipt("outbox", key, delivered=False)

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime, key: str
    ) -> SendReceipt | None:
        return None  # nothing leaves the machine: writing the outbox again harms nobody
