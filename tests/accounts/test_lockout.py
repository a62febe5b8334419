"""Log-in throttling that cannot be turned against the owner, token lifetime and reuse, and the
password policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from huiqi.accounts import service
from huiqi.accounts.models import ApiToken, AuditEvent, User
from huiqi.accounts.passwords import WeakPassword, check_password, common_passwords
from huiqi.core.db import utcnow
from huiqi.notify.models import Notification
from tests.conftest import TEST_PASSWORD, csrf_from


def _count(session: Session, event: str, username: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.event == event, AuditEvent.username == username)
        )
        or 0
    )


def _login(client: TestClient, username: str, password: str) -> int:
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return r.status_code


def _token_login(client: TestClient, username: str, password: str, **headers: str) -> int:
    r = client.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password},
        headers=headers,
    )
    return r.status_code


def test_anonymous_failures_on_the_token_endpoint_do_not_lock_out_a_known_browser(
    client: TestClient, app, make_user: Callable[..., object], db_session: Session
) -> None:
    make_user("olga", "officer", department="甘肃省财政厅")
    # The owner logged in once from this browser, which now carries the signed device cookie.
    assert _login(client, "olga", TEST_PASSWORD) == 303
    assert client.cookies.get("huiqi_device")
    client.post("/logout", data={"csrf_token": csrf_from(client)})
    # An attacker (no cookies, same address as far as the server can tell) fails five times.
    with TestClient(app, base_url="https://testserver") as attacker:
        for _ in range(5):
            assert _token_login(attacker, "olga", "guess-guess-guess") == 401
        # The attacker's client is now backed off, even with the right password.
        assert _token_login(attacker, "olga", TEST_PASSWORD) == 429
    # The owner's browser still logs in with the right password.
    assert _login(client, "olga", TEST_PASSWORD) == 303
    assert _count(db_session, "login.failed", "olga") == 5
    assert _count(db_session, "login.throttled", "olga") == 1


def test_a_forged_device_cookie_is_not_a_known_browser(
    client: TestClient, app, make_user: Callable[..., object]
) -> None:
    make_user("pavel", "admin")
    for _ in range(5):
        assert _token_login(client, "pavel", "guess-guess-guess") == 401
    client.cookies.set("huiqi_device", "eyJ1IjoicGF2ZWwiLCJkIjoieCJ9.forged.sig", "testserver")
    assert _login(client, "pavel", TEST_PASSWORD) == 429


def test_back_off_doubles_with_each_further_failure(
    db_session: Session, make_user: Callable[..., object]
) -> None:
    make_user("quinn", "admin")
    throttle = service.Throttle(max_failures=3, window=timedelta(minutes=10), burst=100)
    for _ in range(3):
        with pytest.raises(service.LoginFailed):
            service.authenticate(
                db_session, "quinn", "nope-nope-nope", ip="10.0.0.9", throttle=throttle
            )
    with pytest.raises(service.ThrottledError) as first:
        service.authenticate(db_session, "quinn", TEST_PASSWORD, ip="10.0.0.9", throttle=throttle)
    assert 9 * 60 < first.value.retry_after <= 10 * 60

    def age_failures(minutes: int) -> None:
        for row in db_session.scalars(select(AuditEvent).where(AuditEvent.username == "quinn")):
            row.at = row.at - timedelta(minutes=minutes)
        db_session.flush()

    # After the wait, one more failure doubles the back-off to 20 minutes.
    age_failures(11)
    with pytest.raises(service.LoginFailed):
        service.authenticate(
            db_session, "quinn", "nope-nope-nope", ip="10.0.0.9", throttle=throttle
        )
    with pytest.raises(service.ThrottledError) as second:
        service.authenticate(db_session, "quinn", TEST_PASSWORD, ip="10.0.0.9", throttle=throttle)
    assert 19 * 60 < second.value.retry_after <= 20 * 60
    # Another address is throttled on its own failures only.
    assert service.authenticate(
        db_session, "quinn", TEST_PASSWORD, ip="10.0.0.7", throttle=throttle
    )
    # Once the back-off has passed, the right password works and resets the count.
    age_failures(21)
    assert service.authenticate(
        db_session, "quinn", TEST_PASSWORD, ip="10.0.0.9", throttle=throttle
    )
    with pytest.raises(service.LoginFailed):
        service.authenticate(
            db_session, "quinn", "nope-nope-nope", ip="10.0.0.9", throttle=throttle
        )
    assert service.authenticate(
        db_session, "quinn", TEST_PASSWORD, ip="10.0.0.9", throttle=throttle
    )


def test_a_burst_alerts_the_administrators_and_holds_back_unknown_clients(
    db_session: Session, make_user: Callable[..., object], client: TestClient, app
) -> None:
    admin = make_user("root-admin", "admin")
    make_user("rita", "officer", department="甘肃省财政厅")
    assert _login(client, "rita", TEST_PASSWORD) == 303  # rita's own browser is known
    # Many clients failing a few times each (a botnet) never reach one client's back-off.
    app.state.settings.login_max_failures = 50
    app.state.settings.login_burst_failures = 6
    with TestClient(app, base_url="https://testserver") as botnet:
        statuses = [_token_login(botnet, "rita", f"spray-{n}-password") for n in range(6)]
        assert statuses == [401] * 6
        # The burst is reached: clients that never logged in as rita are held back ...
        assert _token_login(botnet, "rita", TEST_PASSWORD) == 429
    assert _count(db_session, "login.burst", "rita") == 1
    assert isinstance(admin, User)
    alerts = db_session.scalars(
        select(Notification).where(Notification.recipient_user_id == admin.id)
    ).all()
    assert len(alerts) == 1 and "rita" in alerts[0].subject and alerts[0].link == "/admin/audit"
    # ... but the owner's known browser is not.
    assert _login(client, "rita", TEST_PASSWORD) == 303


def test_token_login_reuses_a_valid_token_and_tokens_expire(
    client: TestClient, make_user: Callable[..., object], db_session: Session
) -> None:
    make_user("sven", "admin")
    body = {"username": "sven", "password": TEST_PASSWORD, "name": "ci"}
    first = client.post("/api/v1/auth/token", json=body).json()["token"]
    second = client.post("/api/v1/auth/token", json=body).json()["token"]
    assert first == second
    rows = db_session.scalars(select(ApiToken).where(ApiToken.name == "ci")).all()
    assert len(rows) == 1 and rows[0].expires_at is not None
    assert rows[0].seed is not None and first not in (rows[0].seed, rows[0].token_digest)
    auth = {"Authorization": f"Bearer {first}"}
    assert client.get("/api/v1/me", headers=auth).status_code == 200
    # Past its expiry the token is refused, and the next token log-in mints a new one.
    db_session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db_session.commit()
    assert client.get("/api/v1/me", headers=auth).status_code == 401
    third = client.post("/api/v1/auth/token", json=body).json()["token"]
    assert third != first
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {third}"}).status_code == 200


def test_tokens_per_user_are_capped(
    client: TestClient, app, make_user: Callable[..., object]
) -> None:
    make_user("tara", "admin")
    app.state.settings.api_tokens_per_user = 2
    for name in ("a", "b"):
        r = client.post(
            "/api/v1/auth/token", json={"username": "tara", "password": TEST_PASSWORD, "name": name}
        )
        assert r.status_code == 200
    r = client.post(
        "/api/v1/auth/token", json={"username": "tara", "password": TEST_PASSWORD, "name": "c"}
    )
    assert r.status_code == 409
    assert "最多持有 2 个" in r.json()["detail"]
    # The existing ones are still handed out again.
    r = client.post(
        "/api/v1/auth/token", json={"username": "tara", "password": TEST_PASSWORD, "name": "a"}
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-pw", "至少需要 10 个字符"),
        ("1234567890", "最常见的一万个密码"),
        ("qwertyuiop", "最常见的一万个密码"),
        ("my-Victor-2026!", "不能包含用户名"),
    ],
)
def test_the_password_policy_refuses_weak_passwords(password: str, message: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password(password, "victor")
    assert message in refused.value.zh
    assert refused.value.en


def test_the_common_password_list_is_shipped_whole() -> None:
    common = common_passwords()
    assert len(common) == 10_000
    assert {"password", "123456", "1234567890", "iloveyou"} <= common


def test_the_policy_applies_on_creation_and_on_change(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    with pytest.raises(service.AccountError, match="不能包含用户名"):
        service.create_user(
            db_session, username="wendy", password="wendy-wendy-wendy", role="admin"
        )
    with pytest.raises(service.AccountError, match="最常见"):
        service.create_user(db_session, username="xena", password="1234567890", role="admin")
    user = login_as("enterprise", username="yusuf")
    assert isinstance(user, User)
    token = csrf_from(client, "/account")
    weak = client.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "yusuf-2026-pass",
            "csrf_token": token,
        },
    )
    assert weak.status_code == 400 and "不能包含用户名" in weak.text
    wrong = client.post(
        "/account/password",
        data={
            "current_password": "not-my-password",
            "new_password": "Lanzhou-Yellow-River-9",
            "csrf_token": token,
        },
    )
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    ok = client.post(
        "/account/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "Lanzhou-Yellow-River-9",
            "csrf_token": token,
        },
    )
    assert ok.status_code == 200 and "密码已修改" in ok.text
    assert client.get("/account").status_code == 200  # this browser stays logged in
    db_session.expire_all()
    assert service.authenticate(db_session, "yusuf", "Lanzhou-Yellow-River-9", ip="10.1.1.1")
