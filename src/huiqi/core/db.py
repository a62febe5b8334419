"""Database engine, declarative base and the transaction boundary helpers."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from huiqi.core import clock

if TYPE_CHECKING:
    from huiqi.core.config import Settings

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


READ_OPTION = "huiqi_read_only"
# Statements that need SQLite's write lock (a CTE may wrap a write, hence the second look).
_WRITE_START = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|SAVEPOINT)\b", re.I)
_WITH_WRITE = re.compile(r"\s*WITH\b.*\b(INSERT|UPDATE|DELETE)\b", re.I | re.S)
_TX_KIND = "huiqi_sqlite_tx"
BUSY_RETRIES = 3


class DatabaseBusy(Exception):
    """SQLite's write lock stayed taken through every retry; the caller should try again later."""


WAL_CHECKPOINT_PAGES = 10_000
"""SQLite checkpoints its write-ahead log into the database once the log holds this many pages."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, busy_timeout_ms: int) -> None:
    """Enforce foreign keys and let readers and one writer work side by side.

    pysqlite's own transaction handling breaks SAVEPOINTs, so it is switched off and
    SQLAlchemy emits BEGIN itself (see _sqlite_begin).
    """
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    # a bulk batch dirties thousands of index pages: checkpointing after every 1,000 pages (the
    # default) copies many of them back to the database once per batch, while ~40 MB of WAL lets
    # a page written by several batches be copied once (an import into a large registry: a
    # quarter more rows a second)
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cur.close()


def _begin_immediate(dbapi_conn: Any) -> None:
    """BEGIN IMMEDIATE with a bounded retry when the busy timeout runs out (SQLITE_BUSY)."""
    for attempt in range(BUSY_RETRIES):
        try:
            dbapi_conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == BUSY_RETRIES - 1:
                raise DatabaseBusy(
                    "数据库繁忙,请稍后重试 / the database is busy, try again shortly"
                ) from exc
            time.sleep(0.05 * (attempt + 1))


def _sqlite_begin(conn: Any) -> None:
    """Start SQLite transactions explicitly (pairs with isolation_level=None).

    Writers start IMMEDIATE, taking the write lock up front: a deferred transaction that
    reads, sees another process commit, then writes fails at once with SQLITE_BUSY_SNAPSHOT,
    which the busy timeout cannot wait out. Sessions bound with the read-only option (web
    requests that only read) start DEFERRED and take no lock, so in WAL mode they never
    queue behind a writer; should such a transaction write after all, _sqlite_upgrade
    restarts it as IMMEDIATE before its first write.
    """
    if conn.get_execution_options().get(READ_OPTION):
        conn.exec_driver_sql("BEGIN")
        conn.info[_TX_KIND] = "deferred"
        return
    _begin_immediate(conn.connection.dbapi_connection)
    conn.info[_TX_KIND] = "immediate"


def _sqlite_upgrade(
    conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    """Turn a deferred (reading) transaction into an IMMEDIATE one at its first write.

    The transaction has written nothing yet, so it is ended and begun again IMMEDIATE: what
    it read before came from an earlier snapshot (the guarantee PostgreSQL's READ COMMITTED
    gives as well), and SQLITE_BUSY_SNAPSHOT cannot occur.
    """
    if conn.info.get(_TX_KIND) != "deferred":
        return
    if not (_WRITE_START.match(statement) or _WITH_WRITE.match(statement)):
        return
    dbapi_conn = conn.connection.dbapi_connection
    dbapi_conn.execute("ROLLBACK")
    _begin_immediate(dbapi_conn)
    conn.info[_TX_KIND] = "immediate"


def _sqlite_end(conn: Any) -> None:
    """Forget the kind of the finished transaction."""
    conn.info.pop(_TX_KIND, None)


def make_engine(url: str, *, busy_timeout_ms: int = 30_000, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets its parent folder created and sane pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms=busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_upgrade)
        event.listen(engine, "commit", _sqlite_end)
        event.listen(engine, "rollback", _sqlite_end)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


def engine_options(settings: Settings) -> dict[str, Any]:
    """Pool and lock-wait options for the server's engine, from the settings."""
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
        "busy_timeout_ms": int(settings.db_busy_timeout_seconds * 1000),
    }


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


def read_session() -> Session:
    """A session for work that normally only reads (a web GET): on SQLite it takes no lock.

    Should it write after all, its transaction becomes IMMEDIATE at the first write.
    """
    factory = session_factory()
    bind = factory.kw.get("bind")
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        return factory(bind=bind.execution_options(**{READ_OPTION: True}))
    return factory()


WROTE = "huiqi_wrote"


def _note_flush(session: Session, _context: Any) -> None:
    """Remember that the session wrote (see has_writes)."""
    session.info[WROTE] = True


def _note_statement(state: Any) -> None:
    """Remember statements run through the session that are not plain SELECTs."""
    if not state.is_select:
        state.session.info[WROTE] = True


def _forget_writes(session: Session, transaction: Any) -> None:
    """A finished outermost transaction starts the record afresh."""
    if transaction.parent is None:
        session.info.pop(WROTE, None)


event.listen(Session, "after_flush", _note_flush)
event.listen(Session, "do_orm_execute", _note_statement)
event.listen(Session, "after_transaction_end", _forget_writes)


def note_write(session: Session) -> None:
    """Record a write made past the ORM (COPY, driver SQL), so that the request commits it."""
    session.info[WROTE] = True


def has_writes(session: Session) -> bool:
    """Whether the session's transaction wrote or has changes pending (a commit would save)."""
    return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)


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


# Tables of the current schema whose live rows (as last counted, plus this transaction's
# inserts less its deletes) reached twice what their last analysis saw, and at least ANALYSE_FROM.
_GROWN = """
SELECT s.relname
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
LEFT JOIN pg_stat_xact_user_tables x ON x.relid = s.relid
WHERE s.schemaname = current_schema()
  AND s.n_live_tup + coalesce(x.n_tup_ins, 0) - coalesce(x.n_tup_del, 0)
      >= greatest(2 * c.reltuples, :least)
ORDER BY s.relname
"""
ANALYSE_FROM = 50  # rows; a smaller table is read whole whatever the planner thinks


def refresh_statistics(session: Session) -> list[str]:
    """Let PostgreSQL's planner see the tables a bulk job has grown; the tables it analysed.

    An import or a first match run grows tables from nothing within minutes. Until they are
    analysed the planner takes them for empty and scans them whole for every batch's IN-list,
    which makes the job quadratic (an import fell to 166 enterprises a second at 85,000), whether
    autovacuum is switched off or only behind. Only a table whose rows doubled since its last
    analysis is analysed (so at 1, 2, 4, 8, … times its first size): a whole-database ANALYZE
    costs about a second however little changed, and a job calls this after every batch.
    SQLite keeps no statistics of its own: nothing to do there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return []
    grown = [str(n) for n in session.scalars(text(_GROWN), {"least": ANALYSE_FROM})]
    if grown:
        prep = session.get_bind().dialect.identifier_preparer
        session.execute(text("ANALYZE " + ", ".join(prep.quote(n) for n in grown)))
    return grown
