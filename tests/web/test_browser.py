"""A real browser (Debian's headless Chromium through Playwright) logs in as each demo role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import live

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The platform with the demo loaded (a small population), served by uvicorn in a thread."""
    with live.live_server(tmp_path_factory.mktemp("live"), demo_population=300) as url:
        yield url


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[object]:
    """Headless Chromium."""
    with live.chromium() as b:
        yield b


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
