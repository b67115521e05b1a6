"""The yardstick for the due-date surge: a bare Temporal timer -> activity pipeline.

One workflow per "invoice" sleeps until the due moment, then runs one activity on the provider's
queue that only sleeps as long as a call to the fake provider takes, and returns when it finished.
It runs as `python -m bench.bare` in a child process with the worker's own settings (the same
activity threads, the same slots per queue, the same sandbox), against the same dev server as the
real pipeline, so the ratio between the two is what dunwell's own work costs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare_workflow import BareReminder
from settings import Settings
from worker import WORKER_THREADS
from workflows.sandbox import workflow_runner


@activity.defn(name="bare_send")
def bare_send(seconds: float) -> float:
    """As long as a provider call; answers when it finished (epoch seconds)."""
    time.sleep(seconds)
    return time.time()


async def main() -> None:
    client = await Client.connect(os.environ["BARE_TEMPORAL_ADDRESS"])
    queue = os.environ["BARE_TASK_QUEUE"]
    slots = max(1, WORKER_THREADS // 3)
    with ThreadPoolExecutor(WORKER_THREADS) as executor:
        workers = [
            Worker(
                client,
                task_queue=queue,
                workflows=[BareReminder],
                workflow_runner=workflow_runner(),
                activity_executor=executor,
                max_concurrent_activities=slots,
                # The default, as the surge's worker runs with no DUNWELL_* setting of the caller's.
                max_cached_workflows=Settings.model_fields["worker_cached_journeys"].default,
            ),
            Worker(
                client,
                task_queue=f"{queue}.sendgrid",
                activities=[bare_send],
                activity_executor=executor,
                max_concurrent_activities=slots,
            ),
        ]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with workers[0], workers[1]:
            await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
