"""Temporal holds only ciphertext; the codec server lets those allowed read it (as the UI does)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.api.conftest import CODEC_TOKEN, PROBLEM, System, invoice_body
from tests.payloads import payloads
from workflows.journey import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAME = "Zonnebloem Bakkerij de Vries"
EMAIL = "debiteuren@zonnebloem.example"
PHONE = "+31687654321"


def readable(history_json: str) -> str:
    """The history as anyone with access to Temporal (but no key) could read it."""
    parts = [history_json]
    for payload in payloads(json.loads(history_json), bookkeeping=True):
        parts.append(base64.b64decode(payload.get("data", "")).decode("utf-8", "replace"))
    return "\n".join(parts)


async def test_a_finished_journey_keeps_no_personal_data_in_clear_in_temporal(
    system: System,
) -> None:
    invoice_id = f"INV-{uuid.uuid4().hex[:10]}"
    body = invoice_body(invoice_id, name=NAME, email=EMAIL, phone=PHONE)
    assert (await system.post("/v1/invoices", body, role="integration")).status_code == 201
    await system.until(
        invoice_id, lambda v: len([e for e in v["timeline"] if e["kind"] == "message"]) >= 3
    )
    paid = await system.post(
        f"/v1/invoices/{invoice_id}/payments",
        {"amount": "1250.00", "reference": "BANK-1"},
        role="integration",
    )
    assert paid.status_code == 200, paid.text
    await system.until(invoice_id, lambda v: v["outcome"] == "paid")
    handle = system.env.client.get_workflow_handle(workflow_id(invoice_id))
    await handle.result()
    sent = (await system.get(f"/v1/invoices/{invoice_id}/messages")).json()
    snippet = sent[0]["body"].splitlines()[0][:30]

    history = (await handle.fetch_history()).to_json()
    clear = readable(history)
    for secret in (NAME, EMAIL, PHONE, body["payment_url"], snippet):
        assert secret not in clear, f"{secret!r} is readable in the raw history"
    assert invoice_id in clear  # the search attributes are in clear, as documented

    # With the key (the codec server the UI calls), the same history reads in plain words.
    encrypted = payloads(json.loads(history))
    assert encrypted and all(
        base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted" for p in encrypted
    )
    decoded = await system.api.post(
        "/codec/decode", json={"payloads": encrypted}, headers=system.headers("agent")
    )
    assert decoded.status_code == 200, decoded.text
    text = "\n".join(
        base64.b64decode(p["data"]).decode("utf-8", "replace") for p in decoded.json()["payloads"]
    )
    for secret in (NAME, EMAIL, PHONE, body["payment_url"]):
        assert secret in text


async def test_codec_server_needs_a_key_or_the_secret_url(system: System) -> None:
    plain = {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
             "data": base64.b64encode(b'"hello"').decode()}  # fmt: skip
    anonymous = await system.api.post("/codec/encode", json={"payloads": [plain]})
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
    integration = await system.api.post(
        "/codec/decode", json={"payloads": [plain]}, headers=system.headers("integration")
    )
    assert integration.status_code == 403  # reading debtors' data is for agents and admins
    wrong = await system.api.post("/codec/not-the-token/decode", json={"payloads": [plain]})
    assert wrong.status_code == 404 and wrong.headers["content-type"] == PROBLEM

    encoded = await system.api.post(f"/codec/{CODEC_TOKEN}/encode", json={"payloads": [plain]})
    assert encoded.status_code == 200, encoded.text
    sealed = encoded.json()["payloads"][0]
    assert base64.b64decode(sealed["data"]) != b'"hello"'
    decoded = await system.api.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": [sealed]})
    assert decoded.json()["payloads"] == [plain]

    garbage = {"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA==", "encryption-key-id": "eA=="},
               "data": "AAAA"}  # fmt: skip
    refused = await system.api.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": [garbage]})
    assert (
        refused.status_code == 400 and "not in DUNWELL_ENCRYPTION_KEYS" in refused.json()["detail"]
    )
    # Malformed in every other way: our key id with truncated or altered data, or not base64.
    ours = sealed["metadata"]
    for data in ("AAAA", "", sealed["data"][:-8] + "AAAAAAA=", "not base64!"):
        bad = {"metadata": ours, "data": data}
        answer = await system.api.post(f"/codec/{CODEC_TOKEN}/decode", json={"payloads": [bad]})
        assert answer.status_code == 400, (data, answer.text)
        assert answer.headers["content-type"] == PROBLEM


async def test_only_the_temporal_ui_origin_may_call_from_a_browser(system: System) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        }

    ui = await system.api.options(
        f"/codec/{CODEC_TOKEN}/decode", headers=preflight("http://localhost:8233")
    )
    assert ui.status_code == 200
    assert ui.headers["access-control-allow-origin"] == "http://localhost:8233"
    other = await system.api.options(
        f"/codec/{CODEC_TOKEN}/decode", headers=preflight("https://evil.example")
    )
    assert "access-control-allow-origin" not in other.headers
