"""The workflow sandbox as dunwell configures it, shared by the worker, the tests and the replayer.

Pure modules (the models, the policy, the schedule arithmetic and the `holidays` tables) are always
passed through instead of being re-imported for every workflow run: re-importing `holidays` alone
can take long enough to trip the deadlock detector, and zoneinfo objects made inside the sandbox
are proxies that `datetime` refuses.

The worker passes all of `workflows/` through, the workflow classes included: the sandbox then no
longer re-executes our modules for every new run, which was most of a journey start's cost on the
worker (../shared/design/temporal-notes.md). That also means it no longer watches what our own code
calls, so the workflow tests run with `strict=True`: our modules re-imported in the sandbox, every
non-deterministic call (time, randomness, I/O outside `workflow.*`) refused as before.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PURE = (
    "workflows.common",
    "workflows.messaging",
    "workflows.models",
    "workflows.policy",
    "workflows.schedule",
    "holidays",
)
"""Passed through in every mode."""

PASSED_THROUGH = ("workflows", "holidays")
"""Passed through by the worker."""


def workflow_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    modules = PURE if strict else PASSED_THROUGH
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )
