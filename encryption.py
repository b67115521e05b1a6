"""Encrypting every payload dunwell writes to Temporal: AES-256-GCM, keys that rotate.

Temporal keeps each journey's inputs, results, signals, updates, memos and the summaries shown in
its UI in its history, and those hold a debtor's name, email, phone number and the text of every
message. The `EncryptionCodec` encrypts them before they leave the process; only what holds a key
(the worker, the API, the codec server the UI calls) can read them. Search attributes are not
payloads the codec sees: they carry no personal data (see workflows/common.py).

Keys come from `DUNWELL_ENCRYPTION_KEYS`: `id:base64key,id:base64key,...`, each key 32 random
bytes. The first key encrypts; every key listed decrypts, and each payload names its key id in its
metadata, so a new key can be put first while journeys written under the old one still run.
`dunwell encryption-key` prints a fresh `id:base64key`.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
REFUSED = b"binary/refused-unencrypted"
"""What the worker reads an unencrypted payload as: nothing any converter accepts."""
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SETTING = "DUNWELL_ENCRYPTION_KEYS"


class KeyProblem(ValueError):
    """The keys are missing or malformed, or a payload needs a key we do not have."""


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys; the first encrypts, all decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """Read `id:base64key,...`; every problem names what to fix."""
        entries = [part.strip() for part in value.split(",") if part.strip()]
        if not entries:
            raise KeyProblem(f"{SETTING} is empty: {_HOW_TO_MAKE}")
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(entries, start=1):
            key_id, sep, encoded = entry.partition(":")
            if not sep or not _KEY_ID_PATTERN.match(key_id):
                # By position only: a pasted key without its id must not end up in a log.
                raise KeyProblem(
                    f"{SETTING}: entry {position} of {len(entries)} is not `id:base64key` with an "
                    f"id of letters, digits, '.', '-' or '_'. {_HOW_TO_MAKE}"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyProblem(f"{SETTING}: key {key_id!r} is not valid base64") from None
            if len(key) != 32:
                raise KeyProblem(
                    f"{SETTING}: key {key_id!r} is {len(key)} bytes; AES-256 needs 32. "
                    + _HOW_TO_MAKE
                )
            if any(key_id == known for known, _ in keys):
                raise KeyProblem(f"{SETTING}: key id {key_id!r} is listed twice")
            keys.append((key_id, key))
        return cls(tuple(keys))

    @property
    def current(self) -> str:
        """The id of the key that encrypts."""
        return self.keys[0][0]

    @property
    def ids(self) -> list[str]:
        return [key_id for key_id, _ in self.keys]

    def get(self, key_id: str) -> bytes | None:
        return next((key for known, key in self.keys if known == key_id), None)


_HOW_TO_MAKE = "Make a key with `dunwell encryption-key` (it prints `id:base64key`)."


def new_key(key_id: str | None = None) -> str:
    """A fresh `id:base64key` entry for DUNWELL_ENCRYPTION_KEYS."""
    key_id = key_id or datetime.now(UTC).strftime("k%Y%m%d%H%M%S")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload; the key id travels in the metadata.

    A payload without our encoding passes through decode unchanged (the codec server shows it as
    it is), except with `refuse_plain`, as the worker runs it: there an unencrypted payload, say a
    payment signal typed into the Temporal CLI by someone without our key, becomes one no converter
    reads, so the signal is dropped (the worker logs it) and an update is rejected: it changes
    nothing.
    """

    def __init__(self, keyring: Keyring, refuse_plain: bool = False) -> None:
        self._keyring = keyring
        self._refuse_plain = refuse_plain
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys}

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._keyring.current
        nonce = os.urandom(_NONCE_BYTES)
        # The key id is authenticated too: a payload cannot be relabelled to another key.
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            if self._refuse_plain:
                return Payload(metadata={"encoding": REFUSED})
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyProblem(
                f"a payload is encrypted with key {key_id!r}, which is not in {SETTING} "
                f"(known: {', '.join(self._keyring.ids)}): add that key after the current one"
            )
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise KeyProblem(
                f"a payload marked with key {key_id!r} does not decrypt with that key: "
                "the key was changed under the same id, or the payload was altered"
            ) from None
        return Payload.FromString(plain)
