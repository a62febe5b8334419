"""A real browser walks the enterprise half of the special funds on the demo: the open call from
the call list, a pre-filled application, an upload checked by its content, the declaration and a
submission the platform answers in Chinese — with no CSP violation on the way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import live

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live.live_server(tmp_path_factory.mktemp("live-funds-ent"), demo_population=300) as url:
        yield url


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[object]:
    with live.chromium() as b:
        yield b


def test_enterprise_applies_to_the_open_call(
    browser: object, live_server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    errors = live.watch_csp(browser)
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("enterprise")
    page.get_by_label("密码").fill("huiqi-enterprise-2020")
    page.get_by_label("密码").press("Enter")
    page.goto(f"{live_server}/funds/calls")
    page.locator("#calls tr[data-status=open] a", has_text="专精特新").first.click()
    expect(page.locator("#window")).to_contain_text("—")
    page.locator("#apply-button, #open-application").first.click()
    expect(page.locator("#prefill-table tr[data-field=name]")).to_be_visible()
    # a text file named .pdf is refused: the type is read from the content
    fake = tmp_path / "方案.pdf"
    fake.write_text("not a pdf", encoding="utf-8")
    upload = page.locator("#material-list li").first
    upload.locator("input[type=file]").set_input_files(str(fake))
    upload.locator("button[type=submit]").click()
    expect(page.locator("#form-error")).to_contain_text("文件类型不符合要求")
    page.get_by_label("项目名称").fill("专精特新能力提升项目")
    page.locator("#details-form button").click()
    expect(page.locator("#saved")).to_be_visible()
    # without the required materials the submission says which are missing
    page.locator("#submit-form input[name=declared]").check()
    page.locator("#submit-form button").click()
    expect(page.locator("#form-error")).to_contain_text("缺少必需的申报材料")
    page.goto(f"{live_server}/funds/mine")
    expect(page.locator("ol.timeline").first).to_be_visible()
    assert errors == []
    page.close()


def test_demo_enterprise_finds_the_published_call_on_its_policies_and_in_its_inbox(
    browser: object, live_server: str
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("enterprise")
    page.get_by_label("密码").fill("huiqi-enterprise-2020")
    page.get_by_label("密码").press("Enter")
    # to confirm for the demo enterprise (certificate dates missing): supply data, then apply
    page.goto(f"{live_server}/matching/mine")
    link = page.locator("a.apply-call", has_text="科技经费支持遴选").first
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("h1")).to_contain_text("科技经费支持遴选")
    page.goto(f"{live_server}/notify/inbox")
    expect(page.locator("table.inbox", has_text="申报通知").first).to_be_visible()
    page.close()
