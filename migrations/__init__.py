"""Alembic migrations of the read model; `db.session.migrate` finds them through this package."""
