"""Log-in, throttling, CSRF, sessions, API tokens, roles and the audit log."""

from __future__ import annotations

from collections.abc import Callable

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts import service
from huiqi.accounts.models import AuditEvent, User, WebSession
from tests.conftest import TEST_PASSWORD, csrf_from


def _events(session: Session, event: str, username: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.event == event, AuditEvent.username == username)
        )
        or 0
    )


def test_password_is_hashed_with_argon2(
    db_session: Session, make_user: Callable[..., object]
) -> None:
    user = make_user("alice", "admin")
    assert isinstance(user, User)
    assert user.password_hash.startswith("$argon2id$")
    assert TEST_PASSWORD not in user.password_hash


def test_login_sets_secure_httponly_samesite_cookie(
    client: TestClient, make_user: Callable[..., object]
) -> None:
    make_user("bob", "officer", department="甘肃省财政厅")
    token = csrf_from(client)
    response = client.post(
        "/login",
        data={"username": "bob", "password": TEST_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "huiqi_session=" in cookie
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    home = BeautifulSoup(client.get("/").text, "lxml")
    assert home.find("h1", attrs={"data-home": "officer"}) is not None


def test_wrong_password_and_unknown_user_get_the_same_message(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    make_user("carol", "admin")
    token = csrf_from(client)
    wrong = client.post(
        "/login", data={"username": "carol", "password": "nope-nope-nope", "csrf_token": token}
    )
    unknown = client.post(
        "/login", data={"username": "nobody", "password": "nope-nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    msg_wrong = BeautifulSoup(wrong.text, "lxml").find(id="login-error")
    msg_unknown = BeautifulSoup(unknown.text, "lxml").find(id="login-error")
    assert msg_wrong is not None and msg_unknown is not None
    assert msg_wrong.get_text() == msg_unknown.get_text() == "用户名或密码错误。"
    assert _events(db_session, "login.failed", "carol") == 1
    assert _events(db_session, "login.failed", "nobody") == 1


def test_repeated_failures_are_throttled_and_audited(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    make_user("dave", "admin")
    token = csrf_from(client)
    for _ in range(5):
        r = client.post(
            "/login", data={"username": "dave", "password": "bad-password!", "csrf_token": token}
        )
        assert r.status_code == 401
    # Even the right password is refused while throttled.
    r = client.post(
        "/login", data={"username": "dave", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429
    assert "分钟后再试" in r.text
    assert _events(db_session, "login.throttled", "dave") == 1
    assert db_session.scalar(select(func.count()).select_from(WebSession)) == 0


def test_post_without_csrf_is_rejected_and_changes_nothing(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    login_as("admin")
    before = db_session.scalar(select(func.count()).select_from(User))
    r = client.post(
        "/admin/users",
        data={"username": "mallory", "password": "0123456789ab", "role": "admin"},
    )
    assert r.status_code == 403
    r = client.post(
        "/admin/users",
        data={
            "username": "mallory",
            "password": "0123456789ab",
            "role": "admin",
            "csrf_token": "forged",
        },
    )
    assert r.status_code == 403
    assert db_session.scalar(select(func.count()).select_from(User)) == before
    # With the page's token the same form works.
    token = csrf_from(client, "/admin/users")
    r = client.post(
        "/admin/users",
        data={
            "username": "mallory",
            "password": "0123456789ab",
            "role": "admin",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert db_session.scalar(select(func.count()).select_from(User)) == before + 1


def test_csrf_token_of_another_browser_is_rejected(
    app: object, client: TestClient, make_user: Callable[..., object]
) -> None:
    make_user("erin", "admin")
    other = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    foreign_token = csrf_from(other)
    r = client.post(
        "/login", data={"username": "erin", "password": TEST_PASSWORD, "csrf_token": foreign_token}
    )
    assert r.status_code == 403


def test_logout_ends_the_session(client: TestClient, login_as: Callable[..., object]) -> None:
    login_as("bank")
    assert client.get("/account").status_code == 200
    token = csrf_from(client, "/account")
    client.post("/logout", data={"csrf_token": token})
    r = client.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_role_pages_are_forbidden_to_other_roles(
    client: TestClient, login_as: Callable[..., object]
) -> None:
    login_as("enterprise")
    r = client.get("/admin/users")
    assert r.status_code == 403
    assert "无权访问" in r.text
    assert client.get("/api/v1/users").status_code == 403


def test_api_token_flow_and_audit(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    make_user("frank", "admin")
    r = client.post(
        "/api/v1/auth/token", json={"username": "frank", "password": TEST_PASSWORD, "name": "ci"}
    )
    assert r.status_code == 200
    token = r.json()["token"]
    assert token.startswith("hq_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "frank"
    assert "password_hash" not in me.json()
    # A bearer request needs no CSRF token, and an admin can create users through the API.
    created = client.post(
        "/api/v1/users",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "username": "grace",
            "password": "0123456789ab",
            "role": "bank",
            "institution": "兰州银行",
        },
    )
    assert created.status_code == 201, created.text
    assert _events(db_session, "token.created", "frank") == 1
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer hq_not-a-token"})
    assert bad.status_code == 401


def test_api_without_credentials_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_role_change_is_audited(db_session: Session, make_user: Callable[..., object]) -> None:
    user = make_user("heidi", "bank", institution="兰州银行")
    assert isinstance(user, User)
    service.set_role(db_session, user, "officer", department="甘肃省财政厅")
    db_session.flush()
    assert user.institution is None and user.department == "甘肃省财政厅"
    assert _events(db_session, "user.role_changed", "heidi") == 1


def test_bindings_are_required_and_credit_codes_checked(db_session: Session) -> None:
    import pytest

    with pytest.raises(service.AccountError, match="department"):
        service.create_user(db_session, username="ivan", password=TEST_PASSWORD, role="officer")
    with pytest.raises(service.AccountError, match="credit code"):
        service.create_user(
            db_session,
            username="judy",
            password=TEST_PASSWORD,
            role="enterprise",
            credit_code="91620102MA72H8K3X1",
        )
    with pytest.raises(service.AccountError, match="at least"):
        service.create_user(db_session, username="kim", password="short", role="admin")


def test_revoked_token_stops_working(client: TestClient, login_as: Callable[..., object]) -> None:
    login_as("officer")
    token = csrf_from(client, "/account")
    page = client.post("/account/tokens", data={"name": "script", "csrf_token": token})
    soup = BeautifulSoup(page.text, "lxml")
    value = soup.find(id="new-token")
    assert value is not None
    plain = value.get_text()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 200
    form = soup.find("form", action=lambda a: bool(a) and a.endswith("/revoke"))
    assert form is not None
    client.post(str(form["action"]), data={"csrf_token": token})
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
