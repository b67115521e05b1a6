"""Escalation policies: the shipped ones, versions, edits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from db.models import (
    PolicyRow,
    PolicyVersionRow,
)
from db.store.base import StoreBase, _insert_ignore, _policy
from workflows.policy import Policy


class PolicyStore(StoreBase):
    def ensure_shipped_policies(self, policies: Iterable[Policy]) -> None:
        """Add each policy that is not there yet; one already there (perhaps edited) is kept."""
        with self._sessions.begin() as session:
            for policy in policies:
                values = self._policy_values(policy, "system")
                if _insert_ignore(session, PolicyRow, values, "name"):
                    session.execute(sa.insert(PolicyVersionRow), values)

    def get_policy(self, name: str) -> Policy | None:
        with self._sessions() as session:
            row = session.get(PolicyRow, name)
            return None if row is None else _policy(row)

    def list_policies(self) -> list[Policy]:
        with self._sessions() as session:
            rows = session.scalars(sa.select(PolicyRow).order_by(PolicyRow.name))
            return [_policy(row) for row in rows]

    def put_policy(self, policy: Policy, actor: str) -> Policy:
        """Store `policy` as the next version of its name (1 when new); returns what was stored."""
        with self._sessions.begin() as session:
            first = policy.model_copy(update={"version": 1})
            values = self._policy_values(first, actor)
            if _insert_ignore(session, PolicyRow, values, "name"):
                session.execute(sa.insert(PolicyVersionRow), values)
                return first
            # Bumping in the UPDATE itself locks the row, so two concurrent edits get two versions.
            version = session.execute(
                sa.update(PolicyRow)
                .where(PolicyRow.name == policy.name)
                .values(version=PolicyRow.version + 1)
                .returning(PolicyRow.version)
            ).scalar_one()
            stored = policy.model_copy(update={"version": version})
            values = self._policy_values(stored, actor)
            session.execute(
                sa.update(PolicyRow).where(PolicyRow.name == policy.name).values(values)
            )
            session.execute(sa.insert(PolicyVersionRow), values)
            return stored

    def policy_versions(self, name: str) -> list[tuple[int, str, datetime]]:
        """Each stored version of a policy, newest first: (version, who, when)."""
        query = (
            sa.select(PolicyVersionRow.version, PolicyVersionRow.updated_by,
                      PolicyVersionRow.updated_at)
            .where(PolicyVersionRow.name == name)
            .order_by(PolicyVersionRow.version.desc())
        )  # fmt: skip
        with self._sessions() as session:
            return [(v, by, at) for v, by, at in session.execute(query)]

    def policy_version(self, name: str, version: int) -> Policy | None:
        """The policy as it was at `version` (None when that version was never stored)."""
        with self._sessions() as session:
            row = session.get(PolicyVersionRow, (name, version))
            if row is None:
                return None
            return Policy.model_validate({**row.document, "version": row.version})

    def _policy_values(self, policy: Policy, actor: str) -> dict[str, Any]:
        return {
            "name": policy.name,
            "version": policy.version,
            "document": policy.model_dump(mode="json"),
            "updated_at": self._clock(),
            "updated_by": actor,
        }

    # ---- invoices and their timelines ----------------------------------------------------------
