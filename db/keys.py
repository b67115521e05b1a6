"""API keys stored hashed: created and revoked by `dunwell keys`, checked on every request.

A key reads `dw_<key id>_<secret>`. The key id finds the row; the SHA-256 of the whole key is
compared in constant time with the stored hash. The key itself is shown once, at creation, and never
stored: a lost key is revoked and replaced. Keys are random (190 bits), so a plain hash is enough;
a slow password hash would only slow every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.models import ApiKeyRow, utcnow

PREFIX = "dw_"


class Role(StrEnum):
    """Who may do what: the one list of roles (the API, the key store and the CLI use it)."""

    integration = "integration"
    agent = "agent"
    admin = "admin"


ROLES = tuple(role.value for role in Role)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_KEY = re.compile(r"^dw_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{32})$")
LAST_USE_EVERY = timedelta(minutes=1)
"""Last use is written at most this often per key, so a busy key costs no write per request."""


class KeyView(BaseModel):
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyProblem(ValueError):
    """A key command that cannot be done, with the reason for the operator."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _view(row: ApiKeyRow) -> KeyView:
    return KeyView.model_validate(row, from_attributes=True)


class KeyStore:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def create(self, name: str, role: str) -> tuple[KeyView, str]:
        """A new key: its view and the key itself, which is not stored and cannot be shown again."""
        if not NAME.match(name):
            raise KeyProblem("a key name is letters, digits, '.', '_' or '-' (at most 100)")
        if role not in ROLES:
            raise KeyProblem(f"the role must be one of {', '.join(ROLES)}")
        key_id = "".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(12))
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
        row = ApiKeyRow(
            key_id=key_id, name=name, role=role, secret_hash=_hash(key), created_at=self._clock()
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
                session.flush()
                view = _view(row)
        except IntegrityError:
            raise KeyProblem(
                f"there is already a key named {name!r}; revoke it or pick another name"
            ) from None
        return view, key

    def revoke(self, name: str) -> KeyView:
        with self._sessions.begin() as session:
            row = session.scalars(sa.select(ApiKeyRow).where(ApiKeyRow.name == name)).first()
            if row is None:
                raise KeyProblem(f"there is no key named {name!r}; `dunwell keys list` shows them")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return _view(row)

    def list(self) -> list[KeyView]:
        with self._sessions() as session:
            rows = session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [_view(r) for r in rows]

    def authenticate(self, presented: str) -> KeyView | None:
        """The key's view when it is a live key of ours; None otherwise. Records its last use."""
        match = _KEY.match(presented)
        if match is None:
            return None
        with self._sessions() as session:
            row = session.get(ApiKeyRow, match.group(1))
            if row is None or not hmac.compare_digest(row.secret_hash, _hash(presented)):
                return None
            if row.revoked_at is not None:
                return None
            view = _view(row)
        now = self._clock()
        if view.last_used_at is None or now - view.last_used_at >= LAST_USE_EVERY:
            with self._sessions.begin() as session:
                session.execute(
                    sa.update(ApiKeyRow)
                    .where(ApiKeyRow.key_id == view.key_id)
                    .values(last_used_at=now)
                )
        return view
