"""The bare reminder workflow of `bench.bare`, alone in its module: the sandbox imports it with
nothing else (no worker, no database)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="BareReminder")
class BareReminder:
    @workflow.run
    async def run(self, due: float, seconds: float) -> float:
        """`due`: epoch seconds."""
        wait = due - workflow.now().timestamp()
        if wait > 0:
            await workflow.sleep(wait)
        return await workflow.execute_activity(
            "bare_send",
            seconds,
            task_queue=f"{workflow.info().task_queue}.sendgrid",
            start_to_close_timeout=timedelta(minutes=2),
        )
