"""A real browser (Debian's headless Chromium through Playwright) logs in as each demo role."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The platform on a fresh SQLite file with the demo loaded, served by uvicorn in a thread."""
    if not Path(CHROMIUM).exists():
        message = "browser tests need Debian's chromium (apt-get install chromium)"
        if os.environ.get("HUIQI_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    import uvicorn

    from huiqi import demo
    from huiqi.core import db, migrate
    from huiqi.core.config import Settings
    from huiqi.web.app import create_app

    data = tmp_path_factory.mktemp("live")
    settings = Settings(env="test", data_dir=data, secret_key="browser-test-secret-key-0123456789")
    migrate.upgrade(settings.effective_database_url)
    db.configure(db.make_engine(settings.effective_database_url))
    with db.session_scope() as session:
        demo.load_all(session, population=300)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.mark.parametrize(
    ("username", "password", "role", "heading"),
    [
        ("admin", "huiqi-admin-2020", "admin", "系统管理工作台"),
        ("officer", "huiqi-officer-2020", "officer", "部门工作台"),
        ("enterprise", "huiqi-enterprise-2020", "enterprise", "企业服务首页"),
        ("bank", "huiqi-bank-2020", "bank", "金融机构工作台"),
    ],
)
def test_each_demo_role_logs_in_and_sees_its_home(
    browser: object, live_server: str, username: str, password: str, role: str, heading: str
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server}/login")
    # Keyboard use: the labels lead to the fields.
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_label("密码").press("Enter")
    expect(page.locator(f"h1[data-home='{role}']")).to_have_text(heading)
    expect(page.locator(".who")).to_have_attribute("data-role", role)
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["huiqi_session"]["httpOnly"] is True
    assert cookies["huiqi_session"]["sameSite"] == "Lax"
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("link", name="登录").first).to_be_visible()
    context.close()


def test_wrong_password_in_the_browser(browser: object, live_server: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page = browser.new_page()
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("admin")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#login-error")).to_have_text("用户名或密码错误。")
    page.close()
