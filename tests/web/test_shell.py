"""The web shell: health, OpenAPI, error pages, language switch, vendored assets, upload limit."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

import huiqi.web
from tests.conftest import csrf_from

WEB = Path(huiqi.web.__file__).parent


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "ok"


def test_openapi_lists_the_api(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/v1/auth/token", "/api/v1/me", "/api/v1/users"} <= paths
    assert all(p.startswith("/api/v1/") for p in paths)


def test_404_page_is_friendly_chinese(client: TestClient) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404
    soup = BeautifulSoup(r.text, "lxml")
    assert soup.html is not None and soup.html["lang"] == "zh-CN"
    h1 = soup.find("h1")
    assert h1 is not None and "页面不存在" in h1.get_text()
    assert soup.find("a", href="/") is not None


def test_api_404_is_json(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


def test_500_page_hides_the_traceback(app: object, client: TestClient) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    @app.get("/boom-test")
    def boom() -> None:
        raise RuntimeError("secret internals")

    r = client.get("/boom-test")
    assert r.status_code == 500
    assert "服务器内部错误" in r.text
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_english_switch_persists(client: TestClient) -> None:
    r = client.get("/lang/en?next=/login", follow_redirects=True)
    soup = BeautifulSoup(r.text, "lxml")
    assert soup.html is not None and soup.html["lang"] == "en"
    h1 = soup.find("h1")
    assert h1 is not None and h1.get_text() == "Log in"
    again = BeautifulSoup(client.get("/").text, "lxml")
    assert again.html is not None and again.html["lang"] == "en"
    client.get("/lang/zh")
    zh = BeautifulSoup(client.get("/login").text, "lxml")
    h1 = zh.find("h1")
    assert h1 is not None and h1.get_text() == "登录"


def test_lang_switch_does_not_redirect_off_site(client: TestClient) -> None:
    r = client.get("/lang/en?next=//evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/"


def test_login_next_does_not_redirect_off_site(
    client: TestClient, make_user: Callable[..., object]
) -> None:
    make_user("nina", "admin")
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={
            "username": "nina",
            "password": "correct-horse-battery",
            "csrf_token": token,
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_login_form_is_accessible(client: TestClient) -> None:
    soup = BeautifulSoup(client.get("/login").text, "lxml")
    for field in soup.select("form input:not([type=hidden])"):
        assert soup.find("label", attrs={"for": field["id"]}) is not None, field
    assert soup.find("a", class_="skip") is not None
    assert soup.find("main", id="main") is not None


def test_pages_reference_no_external_assets() -> None:
    external = re.compile(r"""(src|href)=["'](https?:)?//""")
    for template in WEB.joinpath("templates").rglob("*.html"):
        assert not external.search(template.read_text(encoding="utf-8")), template
    assert (WEB / "static" / "vendor" / "htmx.min.js").stat().st_size > 10_000


def test_static_asset_is_served(client: TestClient) -> None:
    r = client.get("/static/vendor/htmx.min.js")
    assert r.status_code == 200 and "htmx" in r.text[:2000]


def test_oversized_body_is_refused(client: TestClient) -> None:
    token = csrf_from(client)
    big = "x" * (3 * 1024 * 1024)  # the test settings allow 2 MB
    r = client.post("/login", data={"username": big, "password": "p", "csrf_token": token})
    assert r.status_code == 413


def test_anonymous_page_redirects_to_login(client: TestClient) -> None:
    r = client.get("/account", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account"


def test_navigation_depends_on_role(client: TestClient, login_as: Callable[..., object]) -> None:
    anonymous = BeautifulSoup(client.get("/").text, "lxml")
    assert anonymous.find("a", href="/admin/users") is None
    login_as("admin")
    admin = BeautifulSoup(client.get("/").text, "lxml")
    nav = admin.find("nav")
    assert nav is not None and nav.find("a", href="/admin/users") is not None
    assert admin.find("h1", attrs={"data-home": "admin"}) is not None


def test_security_headers(client: TestClient) -> None:
    r = client.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_request_commits_before_response_and_failed_commit_is_500(
    app: object, client: TestClient, db_session: object
) -> None:
    from fastapi import Depends, FastAPI
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from huiqi.accounts.models import AuditEvent
    from huiqi.web.deps import get_session

    assert isinstance(app, FastAPI) and isinstance(db_session, Session)

    @app.post("/api/v1/test-write")
    def write(session: Session = Depends(get_session)) -> dict[str, str]:
        session.add(AuditEvent(event="test.write", detail={}))
        return {"ok": "yes"}

    @app.post("/api/v1/test-bad-write")
    def bad_write(session: Session = Depends(get_session)) -> dict[str, str]:
        # Violates NOT NULL on event: the failure surfaces only at commit time.
        session.add(AuditEvent(event=None, detail={}))
        return {"ok": "yes"}

    @app.post("/api/v1/test-refused-write")
    def refused(session: Session = Depends(get_session)) -> None:
        from fastapi import HTTPException

        session.add(AuditEvent(event="test.refused", detail={}))
        session.flush()
        raise HTTPException(status_code=400, detail="refused")

    assert client.post("/api/v1/test-write", json={}).status_code == 200
    assert client.post("/api/v1/test-bad-write", json={}).status_code == 500
    assert client.post("/api/v1/test-refused-write", json={}).status_code == 400
    events = set(db_session.scalars(select(AuditEvent.event)).all())
    assert "test.write" in events
    assert "test.refused" not in events
