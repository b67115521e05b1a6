"""The runs of a workflow that continued as new, walked back from the latest one.

Follows `continued_execution_run_id` (`describe()` of such a workflow fails on the time-skipping
server), so the API, workflow and history-recording tests read every run the same way.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHistory


async def every_run(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of each run, latest first."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return runs


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """The number of history events of each run, latest first."""
    return [len(run.events) for run in await every_run(client, workflow_id)]
