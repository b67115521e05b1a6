"""The payload codec: AES-256-GCM, keys named in each payload, rotation, and clear refusals."""

from __future__ import annotations

import asyncio
import base64

import pytest
from temporalio.api.common.v1 import Payload

from encryption import ENCODING, KEY_ID, EncryptionCodec, KeyProblem, Keyring, new_key
from temporal_client import keyring_from

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Bakkerij de Vries"}')


def codec(keys: str) -> EncryptionCodec:
    return EncryptionCodec(Keyring.parse(keys))


def roundtrip(encoder: EncryptionCodec, decoder: EncryptionCodec, payload: Payload) -> Payload:
    sealed = asyncio.run(encoder.encode([payload]))[0]
    return asyncio.run(decoder.decode([sealed]))[0]


def test_a_payload_is_unreadable_encrypted_and_whole_decrypted() -> None:
    c = codec(new_key("a"))
    sealed = asyncio.run(c.encode([PLAIN]))[0]
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"a"
    assert b"Bakkerij" not in sealed.data and b"json/plain" not in sealed.SerializeToString()
    assert asyncio.run(c.decode([sealed]))[0] == PLAIN
    # Fresh nonce each time: the same payload never encrypts to the same bytes.
    assert asyncio.run(c.encode([PLAIN]))[0].data != sealed.data


def test_rotation_new_key_first_old_key_still_decrypts() -> None:
    old, new = new_key("old"), new_key("new")
    before = codec(old)
    after = codec(f"{new},{old}")
    assert roundtrip(before, after, PLAIN) == PLAIN  # a running journey's old payloads
    assert asyncio.run(after.encode([PLAIN]))[0].metadata[KEY_ID] == b"new"
    with pytest.raises(KeyProblem, match="key 'new', which is not in DUNWELL_ENCRYPTION_KEYS"):
        roundtrip(after, before, PLAIN)


def test_tampered_or_relabelled_payloads_are_refused() -> None:
    one, other = new_key("one"), new_key("two")
    both = codec(f"{one},{other}")
    sealed = asyncio.run(both.encode([PLAIN]))[0]
    flipped = Payload(
        metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    with pytest.raises(KeyProblem, match="does not decrypt"):
        asyncio.run(both.decode([flipped]))
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"two"}, data=sealed.data)
    with pytest.raises(KeyProblem, match="does not decrypt"):
        asyncio.run(both.decode([relabelled]))


def test_plain_payloads_from_before_encryption_still_read() -> None:
    assert asyncio.run(codec(new_key()).decode([PLAIN]))[0] == PLAIN


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "DUNWELL_ENCRYPTION_KEYS is not set"),
        ("nocolon", "entry 1 of 1 is not `id:base64key`"),
        (f"{new_key('k1')},c2VjcmV0LWtleS1tYXRlcmlhbC1vbmx5", "entry 2 of 2 is not"),
        ("k1:not base64!", "not valid base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "5 bytes; AES-256 needs 32"),
        (f"{new_key('k1')},{new_key('k1')}", "listed twice"),
    ],
)
def test_bad_keys_say_what_to_fix(value: str, problem: str) -> None:
    with pytest.raises(KeyProblem, match=problem) as refused:
        keyring_from(value)
    assert "c2VjcmV0" not in str(refused.value)  # a key pasted without its id is never echoed


def test_new_key_makes_a_valid_entry() -> None:
    ring = Keyring.parse(new_key())
    assert ring.current.startswith("k") and len(ring.keys[0][1]) == 32
