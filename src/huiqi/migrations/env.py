"""Alembic environment: runs against the URL given by huiqi (or the configured database)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

import huiqi.models  # noqa: F401  (registers every table on Base.metadata)
from huiqi.core.config import get_settings
from huiqi.core.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    """Run migrations on a connection; SQLite alters go through batch mode."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the database given in the config (or by the settings)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().effective_database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("huiqi migrations run online only (huiqi db upgrade)")
run_migrations_online()
