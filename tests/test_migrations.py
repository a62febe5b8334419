"""The migrations are the schema: after `upgrade heads` the database matches the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

import huiqi.models  # noqa: F401  (all tables on Base.metadata)
from huiqi.core import migrate
from huiqi.core.db import Base


def test_database_matches_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_database_is_at_every_head(engine: Engine) -> None:
    with engine.connect() as conn:
        have = set(MigrationContext.configure(conn).get_current_heads())
    assert have == migrate.script_heads()
