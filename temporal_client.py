"""The one place a Temporal client is built, so the data converter never drifts.

The API, the worker, the tests, the benchmark and the replayer all use `data_converter` (through
`connect` where they connect): pydantic for the payloads, then the AES-256-GCM codec of
encryption.py over every payload, and failure messages and stack traces moved into an encrypted
payload too (a failure's message can quote a debtor's address).
"""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from encryption import SETTING, EncryptionCodec, KeyProblem, Keyring


def data_converter(keyring: Keyring, refuse_plain: bool = False) -> DataConverter:
    """dunwell's converter: pydantic, encrypted with `keyring` (`refuse_plain`: the worker's)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring, refuse_plain=refuse_plain),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def keyring_from(value: str | None) -> Keyring:
    """The keys from DUNWELL_ENCRYPTION_KEYS; without them nothing may write to Temporal."""
    if not value:
        raise KeyProblem(
            f"{SETTING} is not set: dunwell encrypts every payload it writes to Temporal. "
            "Make a key with `dunwell encryption-key` and set "
            f"{SETTING}=<that id:key> (`dunwell dev` makes one for you in DUNWELL_HOME)."
        )
    return Keyring.parse(value)


async def connect(
    target: str, namespace: str, keyring: Keyring, refuse_plain: bool = False
) -> Client:
    """Connect to Temporal with dunwell's data converter."""
    converter = data_converter(keyring, refuse_plain)
    return await Client.connect(target, namespace=namespace, data_converter=converter)
