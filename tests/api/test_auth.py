"""Keys from DUNWELL_API_KEYS: long enough, named by position, never echoed."""

from __future__ import annotations

import pytest

from api.auth import parse_keys


def test_environment_keys_are_named_by_position_and_never_echoed() -> None:
    keys = parse_keys(
        "integration:billing-system-key-0123456789, agent:agents-shared-key-0123456789"
    )
    assert [(k.role.value, k.name) for k in keys] == [
        ("integration", "integration-key-1"),
        ("agent", "agent-key-2"),
    ]
    for spec, says in (
        ("admin:short-but-secret", "entry 1 (admin) is shorter than 24 characters"),
        ("agent:agents-shared-key-0123456789,boss:a-secret-of-thirty-characters-x",
         "entry 2 of 2 is not `role:key`"),
        ("admin-without-a-colon-but-a-long-secret", "entry 1 of 1 is not `role:key`"),
    ):  # fmt: skip
        with pytest.raises(ValueError) as refused:
            parse_keys(spec)
        assert says in str(refused.value)
        for secret in ("short-but-secret", "a-secret-of-thirty", "long-secret"):
            assert secret not in str(refused.value)  # reported by position, not content
