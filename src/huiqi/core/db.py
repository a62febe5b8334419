"""Database engine, declarative base and the transaction boundary helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from huiqi.core import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every huiqi table; constraint names are stable across backends."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (the one clock, `huiqi.core.clock.now`)."""
    return clock.now()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Enforce foreign keys and let readers and one writer work side by side.

    pysqlite's own transaction handling breaks SAVEPOINTs, so it is switched off and
    SQLAlchemy emits BEGIN itself (see _sqlite_begin).
    """
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    """Start SQLite transactions explicitly (pairs with isolation_level=None).

    IMMEDIATE takes the write lock up front: a deferred transaction that reads, sees another
    process commit, then writes fails at once with SQLITE_BUSY_SNAPSHOT, which the busy
    timeout cannot wait out. The web server and the dispatcher are separate processes, and
    huiqi keeps transactions short (imports commit per batch), so waiting is cheap.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets its parent folder created and sane pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None


def configure(engine: Engine) -> None:
    """Install the process-wide engine (the web app and CLI call this once)."""
    global _engine, _factory
    _engine = engine
    _factory = sessionmaker(bind=engine, expire_on_commit=False)


def install_session_factory(factory: sessionmaker[Session]) -> None:
    """Use a ready-made session factory (tests bind one to a connection in a transaction)."""
    global _factory
    _factory = factory


def get_engine() -> Engine:
    """The process-wide engine, created from settings on first use."""
    if _engine is None:
        from huiqi.core.config import get_settings

        configure(make_engine(get_settings().effective_database_url))
    assert _engine is not None
    return _engine


def session_factory() -> sessionmaker[Session]:
    """The process-wide session factory."""
    if _factory is None:
        get_engine()
    assert _factory is not None
    return _factory


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
