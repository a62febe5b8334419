"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

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


def autogenerate(url: str, message: str, directory: Path | None = None) -> list[str]:
    """Write a new migration from the difference between the models and the database at `url`.

    The models include the enterprise attribute catalogue, so a field added there becomes a
    column here. Each domain has its own branch; the new revision follows the first head and
    depends on the others, so it runs after all of them. Returns the paths written.
    """
    from alembic.script import ScriptDirectory

    cfg = alembic_config(url)
    if directory is not None:
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option(
            "version_locations", f"{MIGRATIONS / 'versions'}{os.pathsep}{directory}"
        )
    heads = sorted(ScriptDirectory.from_config(cfg).get_heads())

    def skip_when_empty(_context: object, _revision: object, directives: list[Any]) -> None:
        """Write no file when the models and the database already agree."""
        if directives and directives[0].upgrade_ops.is_empty():
            directives[:] = []

    written = command.revision(
        cfg,
        message=message,
        autogenerate=True,
        head=heads[0],
        # Alembic takes a list here although its annotation says str.
        depends_on=cast(str | None, heads[1:] or None),
        version_path=str(directory) if directory is not None else None,
        process_revision_directives=skip_when_empty,
    )
    scripts = written if isinstance(written, list) else [written]
    return [str(script.path) for script in scripts if script is not None]
