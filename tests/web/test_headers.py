"""Security headers on every response (middleware refusals and errors included), the vendored
API docs page, and proxy headers believed only from configured proxies."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import AuditEvent
from huiqi.core.config import Settings
from huiqi.core.db import DatabaseBusy
from huiqi.web.app import STATIC_DIR, create_app
from huiqi.web.headers import CONTENT_SECURITY_POLICY
from tests.conftest import TEST_PASSWORD, csrf_from

TEMPLATES = Path(STATIC_DIR).parent / "templates"


def _assert_secure(response: object, *, hsts: bool = True) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    if hsts:
        assert headers["strict-transport-security"].startswith("max-age=31536000")
    else:
        assert "strict-transport-security" not in headers


def test_pages_api_and_static_files_carry_the_headers(client: TestClient) -> None:
    for path in ("/", "/login", "/api/v1/openapi.json", "/static/js/app.js", "/healthz", "/nope"):
        _assert_secure(client.get(path))


def test_middleware_refusals_carry_the_headers(client: TestClient) -> None:
    # CSRF refusal (403) from the CSRF middleware, before any route runs.
    forged = client.post("/login", data={"username": "a", "password": "b"})
    assert forged.status_code == 403
    _assert_secure(forged)
    # Body over the limit (413), refused by the same middleware.
    big = client.post(
        "/api/v1/auth/token",
        content=b"x" * (3 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    _assert_secure(big)


def test_server_errors_and_unavailable_answers_carry_the_headers(
    settings: Settings, session_maker
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, configure_db=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    @app.get("/busy")
    def busy() -> None:
        raise DatabaseBusy("write lock taken")

    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        r = c.get("/boom")
        assert r.status_code == 500
        _assert_secure(r)
        r = c.get("/busy")
        assert r.status_code == 503
        _assert_secure(r)


def test_hsts_only_when_cookies_are_secure(settings: Settings, session_maker) -> None:  # type: ignore[no-untyped-def]
    plain = create_app(settings.model_copy(update={"cookie_secure": False}), configure_db=False)
    with TestClient(plain) as c:
        _assert_secure(c.get("/login"), hsts=False)


def test_templates_and_pages_have_no_inline_script() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            # External scripts and JSON data blocks only: CSP blocks anything else.
            assert "src=" in tag or 'type="application/json"' in tag, f"{template}: {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template}: inline event handler"
        assert "javascript:" not in text, template


def test_api_docs_are_served_from_vendored_assets(client: TestClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    _assert_secure(page)
    soup = BeautifulSoup(page.text, "lxml")
    sources = [s["src"] for s in soup.find_all("script")] + [
        link["href"] for link in soup.find_all("link")
    ]
    assert sources and all(str(src).startswith("/static/") for src in sources)
    assert not soup.find("script", src=False), "inline script on the docs page"
    for src in sources:
        assert client.get(str(src)).status_code == 200, src
    licence = STATIC_DIR / "vendor" / "swagger-ui" / "LICENSE"
    assert "Apache License" in licence.read_text(encoding="utf-8")
    assert "cdn" not in page.text.lower()


def test_csp_forbids_inline_script_and_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"


def _login_ip(app, client_addr: str, forwarded: str, db_session: Session, name: str) -> str | None:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver", client=(client_addr, 40000)) as c:
        token = csrf_from(c)
        r = c.post(
            "/login",
            data={"username": name, "password": TEST_PASSWORD, "csrf_token": token},
            headers={"X-Forwarded-For": forwarded},
            follow_redirects=False,
        )
        assert r.status_code == 303
    return db_session.scalar(
        select(AuditEvent.ip)
        .where(AuditEvent.event == "login.succeeded", AuditEvent.username == name)
        .order_by(AuditEvent.id.desc())
    )


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    settings: Settings,
    session_maker,
    db_session: Session,
    make_user: Callable[..., object],  # type: ignore[no-untyped-def]
) -> None:
    make_user("uma", "admin")
    # By default nobody is trusted: not even loopback can choose the audited address.
    app = create_app(settings, configure_db=False)
    assert _login_ip(app, "127.0.0.1", "198.51.100.7", db_session, "uma") == "127.0.0.1"
    # With a configured proxy, its forwarded address is the client's ...
    proxied = create_app(
        settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}), configure_db=False
    )
    assert _login_ip(proxied, "10.1.2.3", "198.51.100.7", db_session, "uma") == "198.51.100.7"
    # ... and anyone else's header is still ignored.
    assert _login_ip(proxied, "127.0.0.1", "198.51.100.8", db_session, "uma") == "127.0.0.1"


def test_trusted_proxies_must_be_addresses() -> None:
    from huiqi.core.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="HUIQI_TRUSTED_PROXIES"):
        load_settings(trusted_proxies=["proxy.example"])
