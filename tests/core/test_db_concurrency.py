"""SQLite under concurrency: readers take no lock, writers start IMMEDIATE, busy is bounded."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core import db, migrate
from huiqi.core.db import DatabaseBusy, make_engine


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite file with a short lock wait, installed as the process engine."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate.upgrade(url)
    engine = make_engine(url, busy_timeout_ms=200)
    old_engine, old_factory = db._engine, db._factory
    db.configure(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("INSERT INTO probe (id, v) VALUES (1, 0)"))
    yield engine
    db._engine, db._factory = old_engine, old_factory
    engine.dispose()


def _hold_write_lock(engine: Engine) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """Another connection that takes the write lock and keeps it until released."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE probe SET v = v + 1 WHERE id = 1"))
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(5)
    return taken, release, thread


def test_reader_does_not_wait_for_a_writer(file_engine: Engine) -> None:
    _, release, thread = _hold_write_lock(file_engine)
    try:
        with db.read_session() as session:
            # the committed value, read without the lock the writer holds
            assert session.scalar(text("SELECT v FROM probe WHERE id = 1")) == 0
            session.commit()
        with pytest.raises(DatabaseBusy), db.session_factory()() as writer:
            writer.execute(text("SELECT 1"))
    finally:
        release.set()
        thread.join()


def test_reader_that_writes_becomes_immediate_without_busy_snapshot(file_engine: Engine) -> None:
    with db.read_session() as session:
        assert session.scalar(text("SELECT v FROM probe WHERE id = 1")) == 0
        # another process commits after our snapshot: an in-place upgrade would fail with
        # SQLITE_BUSY_SNAPSHOT; the restart as IMMEDIATE does not
        with file_engine.begin() as other:
            other.execute(text("UPDATE probe SET v = 5 WHERE id = 1"))
        session.execute(text("UPDATE probe SET v = v + 1 WHERE id = 1"))
        session.commit()
    with file_engine.connect() as conn:
        assert conn.scalar(text("SELECT v FROM probe WHERE id = 1")) == 6


def test_upgrading_reader_gives_up_after_bounded_retries(file_engine: Engine) -> None:
    with db.read_session() as session:
        session.execute(text("SELECT v FROM probe"))
        _, release, thread = _hold_write_lock(file_engine)
        try:
            with pytest.raises(DatabaseBusy):
                session.execute(text("UPDATE probe SET v = 9 WHERE id = 1"))
            session.rollback()
        finally:
            release.set()
            thread.join()
    with file_engine.connect() as conn:
        assert conn.scalar(text("SELECT v FROM probe WHERE id = 1")) == 1


def test_busy_database_is_503_with_retry_after(app: object, client: TestClient) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.get("/api/v1/test-busy")
    def busy() -> None:
        raise DatabaseBusy("locked")

    r = client.get("/api/v1/test-busy")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    page = client.get("/api/v1/test-busy", headers={"accept": "text/html"})
    assert page.status_code == 503


def test_token_use_is_remembered_not_written(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    from huiqi.accounts.models import ApiToken
    from huiqi.accounts.usage import token_usage
    from tests.conftest import TEST_PASSWORD

    make_user("tina", "admin")
    r = client.post(
        "/api/v1/auth/token", json={"username": "tina", "password": TEST_PASSWORD, "name": "ci"}
    )
    token = r.json()["token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).is_success
    row = db_session.scalars(select(ApiToken).where(ApiToken.name == "ci")).one()
    assert row.last_used_at is None
    assert row.id in token_usage.pending()
    assert token_usage.flush(db_session) >= 1
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(ApiToken, row.id).last_used_at is not None  # type: ignore[union-attr]
    assert row.id not in token_usage.pending()


def test_sessions_on_the_test_connection_stay_joined(session_maker: sessionmaker[Session]) -> None:
    # tests bind the factory to a connection: read_session must not open another one
    with db.read_session() as session:
        assert session.get_bind() is session_maker.kw["bind"]


def test_a_token_revoked_before_the_flush_does_not_block_the_others(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    from huiqi.accounts.models import ApiToken
    from huiqi.accounts.usage import TokenUsage
    from tests.conftest import TEST_PASSWORD

    make_user("rita", "admin")
    r = client.post(
        "/api/v1/auth/token", json={"username": "rita", "password": TEST_PASSWORD, "name": "live"}
    )
    assert r.is_success
    live = db_session.scalars(select(ApiToken).where(ApiToken.name == "live")).one()
    usage = TokenUsage()
    usage.record(live.id)
    usage.record(live.id + 10_000)  # revoked (deleted) after its use
    assert usage.flush(db_session) == 2
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(ApiToken, live.id).last_used_at is not None  # type: ignore[union-attr]


def test_sqlite_checkpoints_its_log_after_many_pages(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'ck.db'}")
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert pages == db.WAL_CHECKPOINT_PAGES > 1000
