"""The read model's one door: what activities write and what the API reads.

Every method runs in its own transaction and returns plain pydantic models, never ORM objects, so
callers (thread-pool activities, API handlers) hold no session. Writes are idempotent: activities
are retried, so each row has a natural key (event key, message key, task key) and a second write of
the same key is skipped with `INSERT ... ON CONFLICT DO NOTHING`, which also makes two concurrent
writers of the same key safe on PostgreSQL and SQLite alike.
"""

from db.store.console import Behaviour, ConsoleSession, ConsoleStore, Note, WorkItem
from db.store.views import (
    RELEASED,
    Claim,
    InvoiceView,
    MessageStatus,
    MessageView,
    OptOut,
    PortalPayment,
    ProviderState,
    Receipt,
    TaskStatus,
    TaskView,
)


class Store(ConsoleStore):
    """The read model, over a sessionmaker from `db.session.make_sessionmaker`.

    One class in layers, one file each: `policies`, `invoices` (and timelines), `messages`
    (claims and results), `receipts` (webhooks, opt-outs), `tasks` (and provider states),
    `portal` (debtors' links and what their page shows), `console` (the credit controller's
    screens).
    """


__all__ = [
    "RELEASED",
    "Behaviour",
    "Claim",
    "ConsoleSession",
    "InvoiceView",
    "MessageStatus",
    "MessageView",
    "Note",
    "OptOut",
    "PortalPayment",
    "ProviderState",
    "Receipt",
    "Store",
    "TaskStatus",
    "TaskView",
    "WorkItem",
]
