"""How the workflows run: unsandboxed on the worker, in a strict sandbox in the tests and replayer.

The sandbox re-imports modules per workflow run and watches for non-deterministic calls. Passing
all of `workflows/` through already made the worker's sandbox watch nothing of ours, and what was
left cost a journey start real CPU: every activation ran inside it, and every payload the workflow
sent asked the sandbox for its serialization context through a fresh `exec` (about a sixth of the
worker's CPU per start, measured with `make bench`). So the worker runs the workflows unsandboxed,
and the workflow tests run them with `strict=True`: our modules re-imported in the sandbox, every
non-deterministic call (time, randomness, I/O outside `workflow.*`) refused. A change that breaks
determinism fails there, before it reaches a worker.

Pure modules (the models, the policy, the schedule arithmetic and the `holidays` tables) are passed
through even in the strict sandbox: re-importing `holidays` alone can take long enough to trip the
deadlock detector, and zoneinfo objects made inside the sandbox are proxies `datetime` refuses.
"""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PURE = (
    "workflows.common",
    "workflows.messaging",
    "workflows.models",
    "workflows.policy",
    "workflows.schedule",
    "holidays",
)
"""Passed through by the strict sandbox."""


def workflow_runner(*, strict: bool = False) -> WorkflowRunner:
    """The worker's runner (unsandboxed), or with `strict` the tests' sandbox."""
    if not strict:
        return UnsandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE)
    )
