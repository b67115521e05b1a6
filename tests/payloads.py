"""The payloads in a history's JSON: what Temporal keeps, and which of it must be encrypted."""

from __future__ import annotations

from typing import Any


def payloads(node: Any, *, bookkeeping: bool = False) -> list[dict[str, Any]]:
    """Every payload under `node`; Temporal's own bookkeeping only when `bookkeeping`.

    The bookkeeping is what Temporal itself must read and our codec never sees: search attributes,
    the SDK's patch markers (a patch's name, e.g. `withdraw-send-on-hold`) and the SDK core's own
    data in a local activity's marker (its sequence number, attempt, activity type and times; the
    record's result beside it goes through the codec).
    """
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for item in node:
            found += payloads(item, bookkeeping=bookkeeping)
    elif isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
            return [node]
        local = node.get("markerName") == "core_local_activity"
        for key, value in node.items():
            if not bookkeeping and key in ("searchAttributes", "patch-data"):
                continue
            if not bookkeeping and local and key == "details":
                value = {k: v for k, v in value.items() if k != "data"}
            found += payloads(value, bookkeeping=bookkeeping)
    return found
