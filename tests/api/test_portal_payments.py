"""Mollie's webhook and paying several invoices at once: the status is always fetched from
Mollie, a replayed webhook pays once, a refund asks an agent, and one payment pays each invoice
its share."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.api.conftest import System, invoice_body, new_id
from tests.api.test_portal import first_message


def payments_of(system: System, customer_id: str) -> list[dict[str, Any]]:
    """The payments the fake Mollie (shared by the whole session) made for one customer."""
    return [
        p for p in system.providers.mollie.payments if p["metadata"]["customer_id"] == customer_id
    ]


async def webhook(system: System, payment_id: str) -> int:
    answer = await system.api.post("/v1/webhooks/mollie", data={"id": payment_id})
    return answer.status_code


async def press_pay(
    system: System, link: str, invoice_id: str, scope: str = "one", amount: str = ""
) -> str:
    """Press Pay on the page (as a browser would, with the form's CSRF token); where it leads."""
    page = await system.api.get(link)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, "the page has no form token"
    token_path = link.split("?")[0]
    form = {"csrf": csrf.group(1), "invoice": invoice_id, "scope": scope, "amount": amount}
    answer = await system.api.post(f"{token_path}/pay", data=form)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


async def start_payment(
    system: System, link: str, invoice_id: str, scope: str = "one", amount: str = ""
) -> str:
    """Press Pay and land on Mollie's checkout; the payment's id."""
    location = await press_pay(system, link, invoice_id, scope, amount)
    assert "/_fake/mollie/checkout/tr_" in location, location
    return location.rsplit("/", 1)[1]


async def second_invoice(system: System, customer_id: str, due_in: float) -> str:
    """Another open invoice (99.50) of the same customer, once the read model has it."""
    invoice_id = new_id()
    body: dict[str, Any] = invoice_body(invoice_id, policy="portal", id=customer_id, due_in=due_in)
    body["amount"] = "99.50"
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    for _ in range(100):  # until its worker has recorded it in the read model
        if system.store.get_invoice(invoice_id) is not None:
            return invoice_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{invoice_id} never reached the read model")


async def test_an_unknown_or_made_up_payment_id_changes_nothing(system: System) -> None:
    assert await webhook(system, "tr_doesnotexist") == 200
    assert await webhook(system, "not-a-mollie-id") == 200


async def test_a_paid_webhook_replayed_pays_once_and_a_refund_asks_an_agent(
    system: System,
) -> None:
    link, view = await first_message(system)
    invoice_id = view["invoice_id"]
    payment_id = await start_payment(system, link, invoice_id)
    # Before Mollie says paid, a webhook (even a forged one) changes nothing.
    assert await webhook(system, payment_id) == 200
    assert (await system.invoice(invoice_id))["outstanding"] == "1250.00"

    system.providers.mollie.settle(payment_id, "paid")  # its own call cannot reach us here
    for _ in range(3):  # Mollie retries; each one is the same payment
        assert await webhook(system, payment_id) == 200
    paid = await system.until(invoice_id, lambda v: v["outcome"] == "paid")
    payments = [e for e in paid["timeline"] if e["kind"] == "payment"]
    assert len(payments) == 1 and payments[0]["detail"]["reference"] == f"mollie:{payment_id}"
    assert not any(e["kind"] == "agent_task" for e in paid["timeline"])  # no overpayment

    system.providers.mollie.refund(payment_id, "1250.00")
    assert await webhook(system, payment_id) == 200
    assert await webhook(system, payment_id) == 200  # replayed: one task
    tasks = (await system.get("/v1/tasks?status=open")).json()
    refunds = [t for t in tasks if t["invoice_id"] == invoice_id and t["kind"] == "refund"]
    assert len(refunds) == 1 and refunds[0]["detail"]["refunded"] == "1250.00"


async def test_one_payment_pays_every_open_invoice_its_share(system: System) -> None:
    link, view = await first_message(system)
    first_id, customer = view["invoice_id"], view["customer_id"]
    second_id = await second_invoice(system, customer, due_in=5)

    page = await system.api.get(link)
    assert "Betaal alle openstaande facturen" in page.text
    payment_id = await start_payment(system, link, first_id, scope="all")
    [made] = [p for p in system.providers.mollie.payments if p["id"] == payment_id]
    assert made["amount"] == {"currency": "EUR", "value": "1349.50"}
    system.providers.mollie.settle(payment_id, "paid")
    assert await webhook(system, payment_id) == 200
    for invoice_id in (first_id, second_id):
        closed = await system.until(invoice_id, lambda v: v["outcome"] == "paid")
        [payment] = [e for e in closed["timeline"] if e["kind"] == "payment"]
        assert payment["detail"]["reference"] == f"mollie:{payment_id}"


async def test_part_of_what_is_owed_pays_the_oldest_invoice_first(system: System) -> None:
    link, view = await first_message(system)
    first_id, customer = view["invoice_id"], view["customer_id"]
    second_id = await second_invoice(system, customer, due_in=86_400)

    # Below the policy's minimum (10.00), more than is owed, or not an amount: refused, no payment.
    for amount, problem in (("5", "part_range"), ("2000", "part_range"), ("abc", "part_invalid")):
        location = await press_pay(system, link, first_id, "part", amount)
        assert f"problem={problem}" in location
    assert payments_of(system, customer) == []

    payment_id = await start_payment(system, link, first_id, "part", "1300,00")
    [made] = payments_of(system, customer)
    assert made["amount"] == {"currency": "EUR", "value": "1300.00"}
    assert made["metadata"]["invoices"] == {first_id: "1250.00", second_id: "50.00"}
    system.providers.mollie.settle(payment_id, "paid")
    assert await webhook(system, payment_id) == 200
    await system.until(first_id, lambda v: v["outcome"] == "paid")
    second = await system.until(second_id, lambda v: v["outstanding"] == "49.50")
    assert second["outcome"] is None
