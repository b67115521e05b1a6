"""Production API keys (hashed in the database), body size caps and problem+json for every error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db.keys import KeyStore
from tests.api.conftest import System, invoice_body, new_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_database_key_acts_under_its_name_until_it_is_revoked(system: System) -> None:
    keys = KeyStore(system.store.sessions)
    invoice_id = new_id()
    _, integration = keys.create("billing-system", "integration")
    view, agent = keys.create("anna.de.vries", "agent")
    assert view.last_used_at is None

    started = await system.api.post(
        "/v1/invoices", json=invoice_body(invoice_id), headers=bearer(integration)
    )
    assert started.status_code == 201, started.text
    await system.until(invoice_id, lambda v: v["stage"] == "reminding")
    paused = await system.api.post(
        f"/v1/invoices/{invoice_id}/pause", json={"reason": "on the phone"}, headers=bearer(agent)
    )
    assert paused.status_code == 200, paused.text
    timeline = (await system.invoice(invoice_id))["timeline"]
    assert {e["actor"] for e in timeline if e["kind"] == "paused"} == {"anna.de.vries"}
    assert {e["actor"] for e in timeline if e["kind"] == "journey_started"} == {"billing-system"}
    assert {k.name: k.last_used_at is not None for k in keys.list()} == {
        "billing-system": True,
        "anna.de.vries": True,
    }

    wrong_role = await system.api.put("/v1/policies/fast", json={}, headers=bearer(agent))
    assert wrong_role.status_code == 403
    forged = agent[:-4] + ("AAAA" if not agent.endswith("AAAA") else "BBBB")
    assert (
        await system.api.get(f"/v1/invoices/{invoice_id}", headers=bearer(forged))
    ).status_code == 401

    keys.revoke("anna.de.vries")
    refused = await system.api.get(f"/v1/invoices/{invoice_id}", headers=bearer(agent))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in refused.json()["detail"]


async def test_bodies_over_the_cap_get_413_even_when_streamed(system: System) -> None:
    big = {"reason": "x" * 300_000}
    declared = await system.post("/v1/invoices/NONE/pause", big)
    assert declared.status_code == 413
    assert "DUNWELL_API_MAX_BODY_BYTES" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"reason": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}'

    streamed = await system.api.post(
        "/v1/invoices/NONE/pause",
        content=chunks(),
        headers={**system.headers("agent"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"].startswith("application/problem+json")


async def test_unknown_routes_and_methods_are_problems_too(system: System) -> None:
    missing = await system.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong_method = await system.api.delete("/v1/invoices", headers=system.headers("agent"))
    assert wrong_method.status_code == 405 and "DELETE" in wrong_method.json()["detail"]
