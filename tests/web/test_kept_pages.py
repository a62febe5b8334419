"""Logged-in pages kept in the process: the user behind a cookie and whole pages by stamp.

A kept user must never outlive a log-out, a disabled account or a role change made through the
same process, and a kept page must never reach another user or outlive what it shows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.enterprise import service as registry
from huiqi.matching import service as matching
from huiqi.notify import service as notify
from huiqi.web.deps import SESSION_COOKIE
from tests.conftest import TEST_PASSWORD, csrf_from

CODE = "91620102MA72H8K3X0"  # the default enterprise log-in's credit code
OTHER = "91620102MA72H8K38Y"


def _note(session: Session, code: str, subject: str) -> int:
    note = notify.enqueue(
        session,
        credit_code=code,
        topic="policy",
        subject=subject,
        body="详见政策原文。",
        link="/policy",
        dedupe_key=f"kept-{code}-{subject}",
    )
    assert note is not None
    session.commit()
    return note.id


def _login(client: TestClient, username: str) -> str:
    client.cookies.clear()
    answer = client.post(
        "/login",
        data={"username": username, "password": TEST_PASSWORD, "csrf_token": csrf_from(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return str(client.cookies[SESSION_COOKIE])


def _inbox(client: TestClient, **headers: str) -> Any:
    return client.get("/notify/inbox", headers=headers, follow_redirects=False)


def _subjects(page: Any) -> list[str]:
    soup = BeautifulSoup(page.text, "lxml")
    return [a.text for a in soup.select("table.inbox tbody a")]


def _who(page: Any) -> str:
    found = BeautifulSoup(page.text, "lxml").select_one("a.who")
    return found.text if found is not None else ""


def test_a_logged_out_session_is_refused_at_once(
    client: TestClient, login_as: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    login_as("enterprise")
    cookie = str(client.cookies[SESSION_COOKIE])
    lookups: list[str] = []
    original = accounts.live_session

    def counted(session: Session, token: str) -> Any:
        lookups.append(token)
        return original(session, token)

    monkeypatch.setattr(accounts, "live_session", counted)
    assert _inbox(client).status_code == 200
    assert client.get("/account").status_code == 200
    assert _inbox(client).status_code == 200
    assert lookups == [cookie]  # read once, then kept
    client.post("/logout", data={"csrf_token": csrf_from(client, "/notify/inbox")})
    stale = client.get(
        "/notify/inbox", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}, follow_redirects=False
    )
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login")
    assert client.get("/matching/mine", follow_redirects=False).status_code == 303


def test_a_disabled_user_or_a_new_role_is_seen_at_once(
    client: TestClient, login_as: Callable[..., Any], db_session: Session
) -> None:
    user = login_as("enterprise")
    assert _inbox(client).status_code == 200
    accounts.set_role(db_session, user, "bank", institution="甘肃银行股份有限公司")
    db_session.commit()
    assert client.get("/matching/mine").status_code == 404  # 我的政策 is for enterprises
    user.is_active = False
    db_session.commit()
    assert _inbox(client).status_code == 303


def test_a_bulk_update_of_users_is_seen_at_once(
    client: TestClient, login_as: Callable[..., Any], db_session: Session
) -> None:
    user = login_as("enterprise")
    assert _inbox(client).status_code == 200
    db_session.execute(update(User).where(User.id == user.id).values(is_active=False))
    db_session.commit()
    assert _inbox(client).status_code == 303


def test_a_kept_user_changes_its_password_and_other_browsers_are_refused(
    client: TestClient, make_user: Callable[..., Any]
) -> None:
    make_user("zhao-liu", "enterprise", credit_code=CODE)
    other_browser = _login(client, "zhao-liu")
    _login(client, "zhao-liu")
    assert _inbox(client).status_code == 200  # the user behind both cookies is now kept
    new = "Gansu-Lanzhou-2026!"
    answer = client.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": new,
            "csrf_token": csrf_from(client, "/account"),
        },
    )
    assert answer.status_code == 200 and "密码已修改" in answer.text
    assert _inbox(client).status_code == 200  # this browser got a fresh session
    stale = client.get(
        "/notify/inbox",
        headers={"Cookie": f"{SESSION_COOKIE}={other_browser}"},
        follow_redirects=False,
    )
    assert stale.status_code == 303


def test_a_kept_page_is_never_shown_to_another_user(
    client: TestClient, make_user: Callable[..., Any], db_session: Session
) -> None:
    # two people of the same enterprise: the same inbox and stamp, different pages
    make_user("zhang-san", "enterprise", credit_code=CODE, display_name="张三")
    make_user("li-si", "enterprise", credit_code=CODE, display_name="李四")
    make_user("wang-wu", "enterprise", credit_code=OTHER, display_name="王五")
    _note(db_session, CODE, "稳岗返还已到账")
    _note(db_session, OTHER, "研发费用加计扣除提醒")

    _login(client, "zhang-san")
    first = _inbox(client)
    assert "张三" in _who(first) and _subjects(first) == ["稳岗返还已到账"]
    zhang_token = csrf_from(client, "/notify/inbox")

    _login(client, "li-si")
    second = _inbox(client)
    assert "李四" in _who(second) and "张三" not in second.text
    assert _subjects(second) == ["稳岗返还已到账"]
    assert csrf_from(client, "/notify/inbox") != zhang_token  # li-si's own CSRF token
    # li-si cannot revalidate zhang-san's copy either
    assert _inbox(client, **{"If-None-Match": first.headers["etag"]}).status_code == 200

    _login(client, "wang-wu")
    third = _inbox(client)
    assert "王五" in _who(third) and _subjects(third) == ["研发费用加计扣除提醒"]


def test_the_inbox_page_follows_new_messages_and_read_state(
    client: TestClient, login_as: Callable[..., Any], db_session: Session
) -> None:
    login_as("enterprise")
    first_id = _note(db_session, CODE, "第一条")
    page = _inbox(client)
    tag = page.headers["etag"]
    assert _subjects(page) == ["第一条"]
    assert _inbox(client, **{"If-None-Match": tag}).status_code == 304

    _note(db_session, CODE, "第二条")
    page = _inbox(client, **{"If-None-Match": tag})
    assert page.status_code == 200 and _subjects(page) == ["第二条", "第一条"]
    assert 'data-unread="2"' in page.text

    assert client.get(f"/notify/inbox/{first_id}").status_code == 200  # read it
    page = _inbox(client)
    assert 'data-unread="1"' in page.text
    row = BeautifulSoup(page.text, "lxml").select_one(f'tr[data-id="{first_id}"]')
    assert row is not None and row["class"] == ["read"]
    assert _subjects(_inbox_unread(client)) == ["第二条"]

    client.post(
        f"/notify/inbox/{first_id}/unread", data={"csrf_token": csrf_from(client, "/notify/inbox")}
    )
    assert 'data-unread="2"' in _inbox(client).text


def _inbox_unread(client: TestClient) -> Any:
    return client.get("/notify/inbox?unread=1")


def test_my_policies_follow_the_enterprises_figures(
    client: TestClient, login_as: Callable[..., Any], db_session: Session
) -> None:
    registry.apply_changes(
        db_session,
        CODE,
        {"name": "兰州示例公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    matching.load_rules(db_session)
    db_session.commit()
    login_as("enterprise")
    rule = "gs351-22-graduate-social-insurance"

    def eligible() -> list[str]:
        soup = BeautifulSoup(client.get("/matching/mine").text, "lxml")
        return [str(a["data-rule"]) for a in soup.select("#eligible article")]

    assert rule not in eligible()
    assert rule not in eligible()  # kept
    registry.apply_changes(
        db_session,
        CODE,
        {"employees": 40, "revenue": 1900 * 1_000_000, "total_assets": 1000 * 1_000_000},
        source="税务",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    registry.apply_changes(
        db_session,
        CODE,
        {"graduate_hires": 2, "graduate_insurance_paid": 1_600_000},
        source="人社",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    db_session.commit()
    assert rule in eligible()


def test_a_reload_within_the_interval_asks_the_database_nothing(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login_as("enterprise")
    _note(db_session, CODE, "第一条")
    stamps: list[int] = []
    original = notify.inbox_stamp

    def counted(session: Session, user: User) -> Any:
        stamps.append(user.id)
        return original(session, user)

    monkeypatch.setattr(notify, "inbox_stamp", counted)
    first = _inbox(client)
    again = _inbox(client)
    assert len(stamps) == 1  # the second view came from memory
    assert again.headers["etag"] == first.headers["etag"]
    assert _subjects(again) == ["第一条"]
    _note(db_session, CODE, "第二条")  # a write in this process forgets the stamp at once
    assert _subjects(_inbox(client)) == ["第二条", "第一条"] and len(stamps) == 2


def test_a_page_asked_for_by_many_at_once_is_made_once() -> None:
    from huiqi.web import kept

    started = threading.Event()
    release = threading.Event()
    made: list[int] = []

    def make() -> str:
        made.append(1)
        started.set()
        release.wait(5)
        return "<p>page</p>"

    key = ("test-page", uuid.uuid4().hex)
    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(kept.pages.get_or_make(key, make)))
    first.start()
    assert started.wait(5)
    others = [
        threading.Thread(target=lambda: answers.append(kept.pages.get_or_make(key, make)))
        for _ in range(4)
    ]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == ["<p>page</p>"] * 5 and made == [1]
