"""A real browser walks the officer half of the special funds on the demo: a county reviewer
returns an application for correction, the province opens the ranked list with its cut line,
and the dashboard draws its charts (the page's CSP allows no inline script)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import live

pytestmark = pytest.mark.browser
SHOTS = os.environ.get("HUIQI_FUNDS_SHOTS")  # a folder to keep screenshots in, when set


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live.live_server(tmp_path_factory.mktemp("live-funds"), demo_population=300) as url:
        yield url


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[object]:
    with live.chromium() as b:
        yield b


def _login(page: object, url: str, username: str) -> None:
    page.goto(f"{url}/login")  # type: ignore[attr-defined]
    page.get_by_label("用户名").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("密码").fill("huiqi-officer-2020")  # type: ignore[attr-defined]
    page.get_by_label("密码").press("Enter")  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_county_reviewer_returns_an_application(browser: object, live_server: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    errors = live.watch_csp(browser)
    page = browser.new_page(locale="zh-CN")
    _login(page, live_server, "reviewer-county")
    page.goto(f"{live_server}/funds/review")
    rows = page.locator("tr[data-app]")
    expect(rows.first).to_be_visible()
    _shot(page, "funds-queue-county")
    rows.first.locator("a").click()
    expect(page.locator("#checks li").first).to_be_visible()
    _shot(page, "funds-review-page")
    page.get_by_label("退回修改的原因(企业可见)").fill("请补充上年度审计报告")
    page.locator("#return-form button").click()
    expect(page.locator("#review-done")).to_be_visible()
    assert errors == []
    page.close()


def test_province_sees_the_cut_line_and_the_dashboard(browser: object, live_server: str) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    errors = live.watch_csp(browser)
    page = browser.new_page(locale="zh-CN")
    _login(page, live_server, "officer")
    page.goto(f"{live_server}/funds/review")
    page.locator("#award-calls a", has_text="贴息").click()
    expect(page.locator("#call-status")).to_have_attribute("data-status", "paid")
    expect(page.locator("#awards tr[data-app]")).not_to_have_count(0)
    _shot(page, "funds-award-paid")
    page.goto(f"{live_server}/funds/dashboard")
    expect(page.locator("#chart-calls canvas")).to_have_count(1)
    page.locator("#chart-calls canvas").click(position={"x": 80, "y": 200})
    _shot(page, "funds-dashboard")
    assert errors == []
    page.close()
