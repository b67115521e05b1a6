"""API keys from `DUNWELL_API_KEYS` (`role:key,...`): who is calling, and may they."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    integration = "integration"
    agent = "agent"
    admin = "admin"


@dataclass(frozen=True)
class Actor:
    role: Role
    name: str
    """Recorded on the timeline as who did it; never the key itself."""

    def may(self, *roles: Role) -> bool:
        return self.role == Role.admin or not roles or self.role in roles


@dataclass(frozen=True)
class ApiKey:
    role: Role
    secret: bytes
    name: str


def parse_keys(spec: str) -> list[ApiKey]:
    """Parse `role:key` pairs; a malformed entry is an error naming it, not a silent skip."""
    keys = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        role, sep, secret = entry.partition(":")
        if not sep or not secret or role not in Role.__members__:
            raise ValueError(
                f"DUNWELL_API_KEYS entry {entry.split(':')[0]!r}... is not `role:key` with role "
                "integration, agent or admin"
            )
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:8]
        keys.append(ApiKey(Role(role), secret.encode(), f"{role}-key-{fingerprint}"))
    return keys


def authenticate(keys: list[ApiKey], presented: str) -> Actor | None:
    """Compare against every key in constant time, so timing reveals nothing."""
    found: Actor | None = None
    candidate = presented.encode()
    for key in keys:
        if hmac.compare_digest(key.secret, candidate):
            found = Actor(key.role, key.name)
    return found
