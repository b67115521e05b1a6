"""Mollie, through its official client: create a payment, and fetch one (a webhook carries only
the id, so what a payment is, and whether it is paid, is always asked of Mollie)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mollie.api.client import Client
from mollie.api.error import Error as MollieError
from mollie.api.error import IdentifierError, NotFoundError

from workflows.common import minor_units

__all__ = ["IdentifierError", "Mollie", "MollieError", "MolliePayment", "NotFoundError"]


@dataclass(frozen=True)
class MolliePayment:
    payment_id: str
    status: str
    """open, pending, authorized, paid, failed, canceled or expired."""
    amount: Decimal
    currency: str
    refunded: Decimal
    charged_back: Decimal
    metadata: dict[str, Any]
    checkout_url: str | None
    paid_at: str | None


class Mollie:
    def __init__(self, api_key: str, base_url: str | None = None, timeout_s: int = 10) -> None:
        self._client = Client(api_endpoint=base_url or "", timeout=timeout_s, retry=1)
        self._client.set_api_key(api_key)

    def create(
        self,
        amount: Decimal,
        currency: str,
        description: str,
        redirect_url: str,
        webhook_url: str,
        metadata: dict[str, Any],
    ) -> MolliePayment:
        places = minor_units(currency)
        created = self._client.payments.create(
            {
                "amount": {"currency": currency.upper(), "value": f"{amount:.{places}f}"},
                "description": description[:255],
                "redirectUrl": redirect_url,
                "webhookUrl": webhook_url,
                "metadata": metadata,
            }
        )
        return _payment(created)

    def get(self, payment_id: str) -> MolliePayment:
        """Raises NotFoundError for an id Mollie does not know."""
        return _payment(self._client.payments.get(payment_id))


def _money(value: Any) -> Decimal:
    return Decimal(str(value["value"])) if value else Decimal(0)


def _payment(found: Any) -> MolliePayment:
    return MolliePayment(
        payment_id=found.id,
        status=found.status,
        amount=_money(found.amount),
        currency=found.amount["currency"],
        refunded=_money(found.get("amountRefunded")),
        charged_back=_money(found.get("amountChargedBack")),
        metadata=found.metadata or {},
        checkout_url=found.checkout_url,
        paid_at=found.get("paidAt"),
    )
