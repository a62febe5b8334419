"""The migrations are the schema: after `upgrade heads` the database matches the models."""

from __future__ import annotations

from pathlib import Path

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


def test_a_new_catalogue_field_becomes_a_generated_migration(tmp_path: Path) -> None:
    """Adding a field to the catalogue is a data change plus a migration generated from it."""
    url = f"sqlite:///{tmp_path}/gen.db"
    migrate.upgrade(url)
    from sqlalchemy import Column, Integer

    from huiqi.enterprise.models import enterprise_current

    # Stand-in for a new catalogue field: the current-frame table gains its column.
    column = Column("patents_granted", Integer, nullable=True)
    enterprise_current.append_column(column)
    try:
        written = migrate.autogenerate(url, "add patents_granted", directory=tmp_path)
    finally:
        enterprise_current._columns.remove(column)  # restore the shared metadata for other tests
    assert len(written) == 1
    text = Path(written[0]).read_text(encoding="utf-8")
    assert "patents_granted" in text and "add_column" in text
    assert "depends_on" in text
    # With nothing new, nothing is written.
    assert migrate.autogenerate(url, "no change", directory=tmp_path / "none") == []
