"""Encrypt stored histories with the test key, in place.

    python -m tests.histories.encrypt [FILE...]

Histories recorded by `tests.histories.record` are encrypted already (it records through the test
key's converter); this brings older plain ones (or all, with no argument) in line. Every payload is
encrypted as the codec would have done it, except search attributes, which Temporal must read
and which the codec never sees either. Encrypting twice changes nothing.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload

from encryption import ENCODING, EncryptionCodec
from tests.keys import TEST_KEYRING

HERE = Path(__file__).parent
# Temporal reads search attributes; core reads its own patch markers: the codec sees neither.
_NOT_PAYLOADS = {"searchAttributes", "header", "patch-data"}


def _is_payload(node: dict[str, Any]) -> bool:
    metadata = node.get("metadata")
    return (
        isinstance(metadata, dict) and "encoding" in metadata and set(node) <= {"metadata", "data"}
    )


def _encrypt(node: dict[str, Any], codec: EncryptionCodec) -> dict[str, Any]:
    metadata = {k: base64.b64decode(v) for k, v in node["metadata"].items()}
    if metadata.get("encoding") == ENCODING:
        return node
    plain = Payload(metadata=metadata, data=base64.b64decode(node.get("data", "")))
    sealed = codec.encrypt(plain)
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()},
        "data": base64.b64encode(sealed.data).decode(),
    }


def _walk(node: Any, codec: EncryptionCodec) -> Any:
    if isinstance(node, list):
        return [_walk(item, codec) for item in node]
    if not isinstance(node, dict):
        return node
    if _is_payload(node):
        return _encrypt(node, codec)
    return {k: v if k in _NOT_PAYLOADS else _walk(v, codec) for k, v in node.items()}


def encrypt_file(path: Path) -> None:
    history = json.loads(path.read_text())
    path.write_text(json.dumps(_walk(history, EncryptionCodec(TEST_KEYRING)), indent=1) + "\n")


def main(args: list[str]) -> None:
    paths = [Path(a) for a in args] or sorted(HERE.glob("*.json"))
    for path in paths:
        encrypt_file(path)
        print(f"encrypted {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
