"""The instalment plan child workflow: `workflow` (the plan), `ledger` (who paid what) and
`timing` (when an instalment falls due, is late, is reminded of)."""

from workflows.plan.start import plan_search_attributes, plan_summary, plan_workflow_id
from workflows.plan.timing import instalment_due
from workflows.plan.workflow import InstalmentPlan

__all__ = [
    "InstalmentPlan",
    "instalment_due",
    "plan_search_attributes",
    "plan_summary",
    "plan_workflow_id",
]
