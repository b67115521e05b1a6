"""A fake Mollie (payments API v2) that the official `mollie-api-python` client talks to, with a
checkout page where a person or a test chooses what happens: paid, failed, canceled or expired.

Served by `dunwell fake-providers` next to the fake SendGrid and Twilio: point
DUNWELL_MOLLIE_BASE_URL at it with the key `MOLLIE_API_KEY`. Like Mollie, it calls the payment's
`webhookUrl` with only the payment id whenever the status changes, then sends the debtor's browser
back to the `redirectUrl`. `refund(id, amount)` and `charge_back(id, amount)` act as the merchant
or the bank would later.
"""

from __future__ import annotations

import html
import json
import logging
import secrets
import threading
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

MOLLIE_API_KEY = "test_dunwellfakemollie0123456789abcd"
OUTCOMES = ("paid", "failed", "canceled", "expired")
log = logging.getLogger("dunwell.fake_providers")
Answer = tuple[int, bytes, dict[str, str]]
_JSON = {"Content-Type": "application/hal+json"}


class FakeMollie:
    def __init__(self, api_key: str = MOLLIE_API_KEY) -> None:
        self.api_key = api_key
        self.base_url = ""
        """Set by the server that hosts it (for the checkout links)."""
        self._payments: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def payments(self) -> list[dict[str, Any]]:
        """Every payment created, oldest first (copies)."""
        with self._lock:
            return [json.loads(json.dumps(p)) for p in self._payments.values()]

    # ---- the API ------------------------------------------------------------------------------

    def post(self, path: str, headers: Any, body: bytes) -> Answer | None:
        if path == "/v2/payments":
            return self._authorized(headers) or self._create(body)
        if path.startswith("/_fake/mollie/checkout/"):
            return self._choose(path.rsplit("/", 1)[1], body)
        return None

    def get(self, path: str, headers: Any) -> Answer | None:
        if path.startswith("/v2/payments/"):
            found = self._payment(path.rsplit("/", 1)[1])
            if found is None:
                return _error(404, "No payment exists with token " + path.rsplit("/", 1)[1])
            return self._authorized(headers) or (200, json.dumps(found).encode(), _JSON)
        if path.startswith("/_fake/mollie/checkout/"):
            return self._checkout(path.rsplit("/", 1)[1])
        return None

    def _authorized(self, headers: Any) -> Answer | None:
        if headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return _error(401, "Missing authentication, or failed to authenticate")
        return None

    def _create(self, body: bytes) -> Answer:
        try:
            asked = json.loads(body)
            amount = {"currency": asked["amount"]["currency"], "value": asked["amount"]["value"]}
            if Decimal(amount["value"]) <= 0 or len(amount["value"].split(".")[-1]) != 2:
                return _error(422, "The amount is invalid", "amount")
        except (ValueError, KeyError, TypeError):
            return _error(422, "The amount is required", "amount")
        payment_id = "tr_" + secrets.token_hex(5)
        payment = {
            "resource": "payment",
            "id": payment_id,
            "mode": "test",
            "status": "open",
            "createdAt": datetime.now(UTC).isoformat(),
            "amount": amount,
            "amountRefunded": {"currency": amount["currency"], "value": "0.00"},
            "amountChargedBack": {"currency": amount["currency"], "value": "0.00"},
            "description": asked.get("description", ""),
            "method": asked.get("method"),
            "metadata": asked.get("metadata"),
            "redirectUrl": asked.get("redirectUrl"),
            "webhookUrl": asked.get("webhookUrl"),
            "_links": {
                "self": {
                    "href": f"{self.base_url}/v2/payments/{payment_id}",
                    "type": "application/hal+json",
                },
                "checkout": {
                    "href": f"{self.base_url}/_fake/mollie/checkout/{payment_id}",
                    "type": "text/html",
                },
            },
        }
        with self._lock:
            self._payments[payment_id] = payment
        return 201, json.dumps(payment).encode(), _JSON

    def _payment(self, payment_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._payments.get(payment_id)
            return json.loads(json.dumps(found)) if found else None

    # ---- the checkout page --------------------------------------------------------------------

    def _checkout(self, payment_id: str) -> Answer:
        payment = self._payment(payment_id)
        if payment is None:
            return 404, b"unknown payment", {"Content-Type": "text/plain"}
        amount = f"{payment['amount']['currency']} {payment['amount']['value']}"
        buttons = "".join(
            f'<button name="status" value="{o}">{o.capitalize()}</button> ' for o in OUTCOMES
        )
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Fake Mollie '
            "checkout</title></head><body><main><h1>Fake Mollie checkout</h1>"
            f"<p>{html.escape(payment['description'])}: <strong>{html.escape(amount)}</strong></p>"
            f'<form method="post">{buttons}</form></main></body></html>'
        )
        return 200, page.encode(), {"Content-Type": "text/html; charset=utf-8"}

    def _choose(self, payment_id: str, body: bytes) -> Answer:
        status = parse_qs(body.decode()).get("status", [""])[0]
        if status not in OUTCOMES or self._payment(payment_id) is None:
            return 400, b"choose paid, failed, canceled or expired", {"Content-Type": "text/plain"}
        redirect = self.settle(payment_id, status)
        return 303, b"", {"Location": redirect or "/"}

    # ---- what a test (or the bank) does -------------------------------------------------------

    def settle(self, payment_id: str, status: str) -> str | None:
        """Give the payment its outcome and call its webhook; answers its redirect address."""
        with self._lock:
            payment = self._payments[payment_id]
            payment["status"] = status
            if status == "paid":
                payment["paidAt"] = datetime.now(UTC).isoformat()
            redirect, webhook = payment.get("redirectUrl"), payment.get("webhookUrl")
        self._call(webhook, payment_id)
        return str(redirect) if redirect else None

    def refund(self, payment_id: str, amount: str) -> None:
        self._add(payment_id, "amountRefunded", amount)

    def charge_back(self, payment_id: str, amount: str) -> None:
        self._add(payment_id, "amountChargedBack", amount)

    def _add(self, payment_id: str, field: str, amount: str) -> None:
        with self._lock:
            payment = self._payments[payment_id]
            total = Decimal(payment[field]["value"]) + Decimal(amount)
            payment[field]["value"] = f"{total:.2f}"
            webhook = payment.get("webhookUrl")
        self._call(webhook, payment_id)

    def _call(self, webhook: str | None, payment_id: str) -> None:
        if not webhook:
            return
        request = urllib.request.Request(
            webhook,
            data=urlencode({"id": payment_id}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        except OSError as exc:  # Mollie retries later; the fake says so and goes on
            log.warning("fake Mollie webhook %s failed: %s", webhook, exc)


def _error(status: int, detail: str, field: str | None = None) -> Answer:
    body: dict[str, Any] = {"status": status, "title": "Error", "detail": detail}
    if field:
        body["field"] = field
    return status, json.dumps(body).encode(), {"Content-Type": "application/hal+json"}
