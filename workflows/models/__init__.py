"""The data a journey is made of: its input, the facts and commands it receives, what it reports.

One file each: `journey` (input, stage, status), `facts` (signals), `commands` (updates), `plan`
(the instalment plan child), `activities` (what the workflows hand to their activities).

Plain pydantic models shared by the workflow, the activities and the API (which imports them; never
the other way round). New fields always get defaults, so stored histories keep replaying.
Money is `Decimal` and travels as a string.
"""

from workflows.models.activities import (
    ChannelOutcome,
    MessageRequest,
    MessageResult,
    NextStepNote,
    RecordRequest,
    Snapshot,
    TaskRequest,
    TimelineEvent,
)
from workflows.models.commands import (
    AgreeArrangement,
    CancelArrangement,
    Close,
    DisputeOutcome,
    Instalment,
    OpenDispute,
    Pause,
    PromiseToPay,
    ResolveDispute,
    Resume,
)
from workflows.models.facts import (
    AgentRequest,
    ChannelOptedIn,
    ChannelOptedOut,
    ContactChanged,
    DebtorReplied,
    MessageBounced,
    PaymentReceived,
    TaskCompleted,
)
from workflows.models.journey import (
    ActionResult,
    Customer,
    Invoice,
    JourneyInput,
    JourneyStatus,
    NextAction,
    Outcome,
    Stage,
)
from workflows.models.plan import (
    EndPlan,
    InstalmentStatus,
    InstalmentView,
    PlanHold,
    PlanInput,
    PlanMessage,
    PlanOutcome,
    PlanResult,
    PlanState,
    PlanView,
)

__all__ = [
    "ActionResult",
    "AgentRequest",
    "AgreeArrangement",
    "CancelArrangement",
    "ChannelOptedIn",
    "ChannelOptedOut",
    "ChannelOutcome",
    "Close",
    "ContactChanged",
    "Customer",
    "DebtorReplied",
    "DisputeOutcome",
    "EndPlan",
    "Instalment",
    "InstalmentStatus",
    "InstalmentView",
    "Invoice",
    "JourneyInput",
    "JourneyStatus",
    "MessageBounced",
    "MessageRequest",
    "MessageResult",
    "NextAction",
    "NextStepNote",
    "OpenDispute",
    "Outcome",
    "Pause",
    "PaymentReceived",
    "PlanHold",
    "PlanInput",
    "PlanMessage",
    "PlanOutcome",
    "PlanResult",
    "PlanState",
    "PlanView",
    "PromiseToPay",
    "RecordRequest",
    "ResolveDispute",
    "Resume",
    "Snapshot",
    "Stage",
    "TaskCompleted",
    "TaskRequest",
    "TimelineEvent",
]
