"""Aged kept answers: one background read renews them while they still answer (huiqi.web.renew).

The request that finds a stamp (or the user behind its cookie) aged used to wait for the
database; now it is answered from what is kept, like every other request, for a bounded time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from huiqi.accounts.models import User
from huiqi.core.config import Settings
from huiqi.notify import service as notify
from huiqi.policy import cache
from huiqi.policy.cache import STALE_GRACE_SECONDS, Stamps
from huiqi.web import renew, sessions
from huiqi.web.app import create_app
from tests.conftest import TEST_PASSWORD, RenewalsSettled, csrf_from
from tests.web.test_kept_pages import CODE, _inbox, _note, _subjects


class Clock:
    """time.monotonic that a test moves forward by hand."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(cache, "time", moved)
    monkeypatch.setattr(sessions, "time", moved)
    return moved


@pytest.fixture
def app(settings: Settings, session_maker: sessionmaker[Session]) -> FastAPI:
    """The app as served: renewals stay in the background, and these tests wait for them."""
    return create_app(settings, configure_db=False)


def _renewals_done() -> None:
    """Wait until the background reads under way are over (they run on the client's loop)."""
    for _ in range(2000):
        if renew.running() == 0:
            return
        time.sleep(0.005)
    raise AssertionError("a renewal never finished")


def test_an_aged_stamp_answers_while_one_caller_reads_it_again(clock: Clock) -> None:
    stamps = Stamps(2.0)
    assert stamps.lookup("k") == (None, False)
    stamps.put("k", "v1")
    assert stamps.lookup("k") == ("v1", False)
    clock.offset += 2.5
    assert stamps.lookup("k") == ("v1", True)  # this caller renews it
    assert stamps.lookup("k") == ("v1", False)  # the rest keep answering meanwhile
    assert stamps.get("k") == "v1"
    clock.offset += 2.0
    assert stamps.lookup("k") == ("v1", True)  # the first renewal never came back: again
    clock.offset += STALE_GRACE_SECONDS
    assert stamps.lookup("k") == (None, False)  # too old to answer: read it before answering
    stamps.put("k", "v2")
    assert stamps.lookup("k") == ("v2", False)
    stamps.forget("k")
    assert stamps.lookup("k") == (None, False)


def test_the_old_get_still_sends_one_caller_to_the_database(clock: Clock) -> None:
    stamps = Stamps(2.0)
    stamps.put("k", "v1")
    clock.offset += 2.5
    assert stamps.get("k") is None
    assert stamps.get("k") == "v1"


def test_an_aged_page_is_answered_without_waiting_for_its_stamp(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    login_as("enterprise")
    _note(db_session, CODE, "第一条")
    first = _inbox(client)
    assert first.status_code == 200
    reading = threading.Event()
    release = threading.Event()
    read: list[int] = []
    original = notify.inbox_stamp

    def slow(session: Session, user: User) -> Any:
        reading.set()
        release.wait(10)
        read.append(user.id)
        return original(session, user)

    monkeypatch.setattr(notify, "inbox_stamp", slow)
    clock.offset += 2.5  # the user and the stamp have both aged
    again = _inbox(client)
    try:
        # answered from the kept page while its stamp is still being read
        assert again.status_code == 200 and _subjects(again) == ["第一条"]
        assert again.headers["etag"] == first.headers["etag"]
        assert reading.wait(10) and read == []
    finally:
        release.set()
        _renewals_done()
    assert len(read) == 1
    # renewed: the next view is fresh again and asks nothing
    monkeypatch.setattr(notify, "inbox_stamp", original)
    assert _inbox(client).headers["etag"] == first.headers["etag"]


def test_many_views_of_an_aged_page_start_one_read(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    login_as("enterprise")
    _note(db_session, CODE, "第一条")
    _inbox(client)
    release = threading.Event()
    read: list[int] = []
    original = notify.inbox_stamp

    def slow(session: Session, user: User) -> Any:
        release.wait(10)
        read.append(user.id)
        return original(session, user)

    monkeypatch.setattr(notify, "inbox_stamp", slow)
    clock.offset += 2.5
    try:
        assert all(_inbox(client).status_code == 200 for _ in range(5))
    finally:
        release.set()
        _renewals_done()
    assert len(read) == 1


def test_a_user_logged_out_by_another_process_is_refused_after_one_renewal(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    clock: Clock,
) -> None:
    login_as("enterprise")
    _note(db_session, CODE, "第一条")
    assert _inbox(client).status_code == 200
    # another worker ends the session: a write this process's engine never sees
    raw = db_session.connection().connection.dbapi_connection
    assert raw is not None
    raw.cursor().execute("DELETE FROM web_session")
    clock.offset += 2.5
    assert _inbox(client).status_code == 200  # the kept answer, while the renewal reads
    _renewals_done()
    refused = _inbox(client)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")


def test_a_kept_user_never_answers_past_the_grace(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    clock: Clock,
) -> None:
    login_as("enterprise")
    _note(db_session, CODE, "第一条")
    assert _inbox(client).status_code == 200
    token = client.cookies["huiqi_session"]
    assert sessions.users.lookup(token)[0] is not None
    clock.offset += 2.0 + STALE_GRACE_SECONDS
    assert sessions.users.lookup(token) == (None, False)
    assert sessions.users.peek(token) is None


def test_healthz_answers_from_the_last_probe_while_the_next_one_runs(
    monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    import asyncio

    from huiqi.web import app as web_app

    monkeypatch.setattr(web_app, "time", clock)
    answers = ["first", "second", "third"]
    asked: list[str] = []
    release = threading.Event()

    def ask() -> str:
        if asked:  # the probes after the first wait until the test lets them answer
            release.wait(10)
        asked.append(answers[len(asked)])
        return asked[-1]

    monkeypatch.setattr(web_app.HealthProbe, "_ask", staticmethod(ask))

    async def scenario() -> list[str | None]:
        probe = web_app.HealthProbe(2.0)
        seen = [await probe.database_error()]  # nothing kept yet: waited for
        clock.offset += 2.5
        seen.append(await probe.database_error())  # the kept answer; a probe starts
        seen.append(await probe.database_error())
        release.set()
        while renew.running():
            await asyncio.sleep(0.005)
        seen.append(await probe.database_error())  # the renewed answer
        release.clear()
        clock.offset += 2.5 + STALE_GRACE_SECONDS  # kept too long: waited for again
        release.set()
        seen.append(await probe.database_error())
        return seen

    assert asyncio.run(scenario()) == ["first", "first", "first", "second", "third"]


def test_the_test_apps_requests_end_with_the_renewals_they_started(
    settings: Settings,
    session_maker: sessionmaker[Session],
    make_user: Callable[..., Any],
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
) -> None:
    """The other tests' sessions share one connection: there a renewal never outlives its request."""
    settled = create_app(settings, configure_db=False)
    settled.add_middleware(RenewalsSettled)
    user = make_user("settled", "enterprise", credit_code=CODE)
    _note(db_session, CODE, "第一条")
    read: list[int] = []
    original = notify.inbox_stamp

    def slow(session: Session, who: User) -> Any:
        time.sleep(0.3)  # a read still under way long after the kept answer was ready
        read.append(who.id)
        return original(session, who)

    with TestClient(settled, base_url="https://testserver") as client:
        token = csrf_from(client)
        data = {"username": "settled", "password": TEST_PASSWORD, "csrf_token": token}
        assert client.post("/login", data=data, follow_redirects=False).status_code == 303
        first = _inbox(client)
        assert first.status_code == 200
        monkeypatch.setattr(notify, "inbox_stamp", slow)
        clock.offset += 2.5
        again = _inbox(client)  # the kept answer; its stamp is read again meanwhile
        assert again.headers["etag"] == first.headers["etag"]
        assert read == [user.id] and renew.running() == 0
