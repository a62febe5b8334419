"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at huiqi's migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at `url` up to the given revision (all heads by default)."""
    command.upgrade(alembic_config(url), revision)


def current_heads(url: str) -> set[str]:
    """The revisions the database at `url` is at."""
    from alembic.runtime.migration import MigrationContext

    from huiqi.core.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    return heads


def script_heads() -> set[str]:
    """The head revisions the code ships."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def pending_revisions(url: str) -> set[str]:
    """Revisions the code ships that the database at `url` has not applied.

    Compared as sets of revisions rather than heads: a branch that another branch
    depends on stops being a head in the database once both are applied.
    """
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    every = {rev.revision for rev in script.walk_revisions()}
    heads = current_heads(url)
    applied = (
        {rev.revision for rev in script.iterate_revisions(tuple(heads), "base")} if heads else set()
    )
    return every - applied
