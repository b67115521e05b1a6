"""The workflow sandbox as dunwell configures it, shared by the worker, the tests and the replayer.

Pure modules (the models, the policy, the schedule arithmetic and the `holidays` tables) are passed
through instead of being re-imported for every workflow run: re-importing `holidays` alone can take
long enough to trip the deadlock detector, and zoneinfo objects made inside the sandbox are proxies
that `datetime` refuses.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = (
    "workflows.common",
    "workflows.messaging",
    "workflows.models",
    "workflows.policy",
    "workflows.schedule",
    "holidays",
)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    )
