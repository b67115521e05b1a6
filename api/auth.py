"""API keys from `DUNWELL_API_KEYS` (`role:key,...`): who is calling, and may they."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from db.keys import Role


@dataclass(frozen=True)
class Actor:
    role: Role
    name: str
    """Recorded on the timeline as who did it; never the key itself."""
    stored: bool = False
    """A key from `dunwell keys create` (kept hashed in the database), not DUNWELL_API_KEYS."""

    def may(self, *roles: Role) -> bool:
        return self.role == Role.admin or not roles or self.role in roles


@dataclass(frozen=True)
class ApiKey:
    role: Role
    secret: bytes
    name: str


MIN_KEY_LENGTH = 24


def parse_keys(spec: str) -> list[ApiKey]:
    """Parse `role:key` pairs; a bad entry is an error naming its position, never its content.

    Each key's actor is `<role>-key-<position>` (`agent-key-2`): who did it, with nothing of the
    key in it.
    """
    keys = []
    entries = [e.strip() for e in spec.split(",")]
    for position, entry in enumerate(entries, start=1):
        if not entry:
            continue
        role, sep, secret = entry.partition(":")
        if not sep or not secret or role not in Role.__members__:
            raise ValueError(
                f"DUNWELL_API_KEYS entry {position} of {len(entries)} is not `role:key` with "
                "role integration, agent or admin"
            )
        if len(secret) < MIN_KEY_LENGTH:
            raise ValueError(
                f"DUNWELL_API_KEYS entry {position} ({role}) is shorter than {MIN_KEY_LENGTH} "
                "characters: use a long random key (`dunwell keys create` makes one)"
            )
        keys.append(ApiKey(Role(role), secret.encode(), f"{role}-key-{position}"))
    return keys


def authenticate(keys: list[ApiKey], presented: str) -> Actor | None:
    """Compare against every key in constant time, so timing reveals nothing."""
    found: Actor | None = None
    candidate = presented.encode()
    for key in keys:
        if hmac.compare_digest(key.secret, candidate):
            found = Actor(key.role, key.name)
    return found
