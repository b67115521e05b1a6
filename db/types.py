"""Column types of the read model: exact money, timezone-aware UTC moments, JSON (JSONB on
PostgreSQL), the same on SQLite as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, Inexact, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

MONEY_SCALE = 4
"""Decimal places kept: enough for every ISO 4217 currency (the most precise have 3)."""
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Money(sa.types.TypeDecorator[Decimal]):
    """An exact amount: NUMERIC(20,4) on PostgreSQL, text on SQLite (whose numbers are floats).

    Amounts are kept with four decimals on both, so they read back the same everywhere
    (`Decimal("1250.10")` reads back as `Decimal("1250.1000")`, which is equal). An amount with
    more decimals is refused rather than rounded: money is never changed silently.
    """

    impl = sa.Numeric(20, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"money must be a Decimal, not the float {value!r}")
        exact = _quantize(Decimal(value))
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return _quantize(Decimal(value))


def _quantize(amount: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.traps[Inexact] = True
        try:
            return amount.quantize(_QUANTUM)
        except Inexact:
            raise ValueError(
                f"amount {amount} has more than {MONEY_SCALE} decimals; it would be rounded"
            ) from None


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A moment in time, stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL keeps it as `timestamptz`; SQLite has no time zones, so the UTC wall time is stored.
    A naive datetime is refused: which zone it meant cannot be known.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} has no time zone; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON, as JSONB on PostgreSQL; Python `None` is stored as SQL NULL, not JSON `null`."""
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
