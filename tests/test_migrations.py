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


def test_every_revision_is_applied(engine: Engine) -> None:
    assert migrate.pending_revisions(engine.url.render_as_string(hide_password=False)) == set()


def test_pending_revisions_of_an_empty_database(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    assert "0001_base" in migrate.pending_revisions(url)
