"""The collection journey, one workflow per invoice (`workflow.InvoiceJourney`), in rooms:

- `workflow`: `run()` and the plan callbacks; `start`: id, summary, first search attributes,
  first state and the start record (which the API writes)
- `state`: the state as plain models with pure transitions; `ladder`: step times and catch-up;
  `holds`: hold deadlines; `validators`: why a command is refused
- `steps` (a new step action goes here), `messages`, `facts` (signals), `commands` (updates),
  `reporting` (timeline, read model, search attributes); `plans`: the plan child's supervisor
"""

from workflows.common import DELIVER_ACTIVITY, RECORD_ACTIVITY
from workflows.journey.start import journey_summary, start_search_attributes, workflow_id
from workflows.journey.workflow import InvoiceJourney

__all__ = [
    "DELIVER_ACTIVITY",
    "RECORD_ACTIVITY",
    "InvoiceJourney",
    "journey_summary",
    "start_search_attributes",
    "workflow_id",
]
