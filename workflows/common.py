"""What the journey and its instalment plans share: activity names, retries, search attributes,
channel choice and money precision. Pure and deterministic, like everything in `workflows/`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

from workflows.models import ContactChanged, Customer
from workflows.policy import Channel

RECORD_ACTIVITY = "record_journey"
DELIVER_ACTIVITY = "deliver_message"

# Retry for as long as it takes: an outage or a bad template must delay the journey (visibly, in
# the UI's pending activity, or for the first record of a journey started without the API, a local
# activity, in its workflow task's failures and backoff timers), never fail it and so lose it.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
)

CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
JOURNEY_STAGE = SearchAttributeKey.for_keyword("JourneyStage")
AMOUNT_OUTSTANDING = SearchAttributeKey.for_float("AmountOutstanding")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
SEARCH_ATTRIBUTES = (CUSTOMER_ID, INVOICE_ID, JOURNEY_STAGE, AMOUNT_OUTSTANDING, NEXT_ACTION_AT)

DELIVER_TIMEOUT = timedelta(seconds=30)
"""One delivery attempt: the provider's own timeout (10 s) and the rate limit's wait fit in it, and
a worker killed mid-send has its attempt retried elsewhere this soon."""

ALL_CHANNELS = (Channel.email, Channel.sms, Channel.whatsapp)


def history_too_long(budget: int) -> bool:
    """Whether this run should continue as new: Temporal suggests it, or the history reached the
    workflow's own `budget` of events."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= budget


def reachable_channels(
    customer: Customer, channels: Iterable[Channel], unreachable: Iterable[Channel]
) -> list[Channel]:
    """The debtor's preferred channel first; only channels with a contact we may still use."""
    blocked = set(unreachable)
    preferred = customer.preferred_channel
    ordered = sorted(channels, key=lambda c: 0 if c == preferred else 1)
    return [c for c in ordered if _has_contact(customer, c) and c not in blocked]


def apply_contact_change(
    customer: Customer, unreachable: set[Channel], change: ContactChanged
) -> tuple[Customer, set[Channel], list[str]]:
    """The debtor after a contact change; a new email or phone makes its channels usable again."""
    updates = change.model_dump(exclude_none=True, exclude={"actor"})
    blocked = set(unreachable)
    if change.email:
        blocked.discard(Channel.email)
    if change.phone:
        blocked -= {Channel.sms, Channel.whatsapp}
    return customer.model_copy(update=updates), blocked, sorted(updates)


def _has_contact(customer: Customer, channel: Channel) -> bool:
    if channel == Channel.email:
        return bool(customer.email)
    return bool(customer.phone)


# ISO 4217 minor units of the currencies that do not use two decimals.
_MINOR_UNITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"), 0
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_units(currency: str) -> int:
    """How many decimals `currency` has (ISO 4217); two unless listed otherwise."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def money(amount: Decimal, currency: str, rounding: str | None = None) -> Decimal:
    """An amount with exactly the currency's decimals: the read model's 1250.0000 is 1250.00."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=rounding)


def equal_parts(total: Decimal, count: int, currency: str) -> list[Decimal]:
    """`total` in `count` equal parts in whole minor units; the last takes what rounding left."""
    total = money(total, currency)
    each = money(total / count, currency, ROUND_DOWN)
    return [each] * (count - 1) + [total - each * (count - 1)]


def fits_currency(amount: Decimal, currency: str) -> bool:
    """Whether `amount` has no more decimals than the currency allows."""
    exponent = amount.normalize().as_tuple().exponent
    return not isinstance(exponent, int) or -exponent <= minor_units(currency)
