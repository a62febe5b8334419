"""A real browser walks the officer's upload → review → publish path and the public pages after it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests import live
from tests.policy.conftest import FIXTURES

OFFICER = ("officer", "huiqi-officer-2020")
JIANGSU = FIXTURES / "other_province_opinion.txt"
JIANGSU_TITLE = "关于进一步支持中小微企业纾困发展的实施意见"

pytestmark = pytest.mark.browser


def policy_count() -> int:
    """Policies stored in the live server's database."""
    from huiqi.core.db import session_scope
    from huiqi.policy.models import Policy

    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Policy)) or 0)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live server with the demo accounts and the seed policy (no enterprises)."""
    from huiqi import demo

    with live.live_server(
        tmp_path_factory.mktemp("policy-live"), lambda s: demo.load_all(s, population=0)
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser(live_server: str) -> Iterator[Any]:
    """Headless Chromium."""
    with live.chromium() as b:
        yield b


def log_in(page: Any, base: str) -> None:
    """Log in as the demo officer through the form."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(OFFICER[0])
    page.get_by_label("密码").fill(OFFICER[1])
    page.get_by_label("密码").press("Enter")
    expect(page.locator(".who")).to_have_attribute("data-role", "officer")


def test_officer_uploads_reviews_corrects_publishes_and_the_public_finds_it(
    browser: Any, live_server: str
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, live_server)
    menu = page.get_by_role("navigation", name="主导航")
    menu.get_by_text("政策", exact=True).click()  # open the grouped menu
    menu.get_by_role("link", name="上传政策").click()
    page.get_by_label("文件").set_input_files(str(JIANGSU))
    page.get_by_role("button", name="上传并解析").click()

    # The review page: the source beside the parsed structure.
    # parsing runs in a bounded worker process: allow for its start on a loaded machine
    expect(page).to_have_url(re.compile(r"/policy/\d+/review\?outcome=created$"), timeout=30_000)
    policy_url = page.url.split("/review")[0]
    expect(page.locator("h1")).to_have_text(f"审核:{JIANGSU_TITLE}")
    source = page.locator(".review-source")
    parsed = page.locator(".review-parsed")
    src_box, parsed_box = source.bounding_box(), parsed.bounding_box()
    assert src_box is not None and parsed_box is not None
    assert parsed_box["x"] >= src_box["x"] + src_box["width"], "columns should sit side by side"
    assert abs(parsed_box["y"] - src_box["y"]) < 5
    # Articles are anchored both ways; quantities are marked in both columns.
    expect(page.locator(".source-text a.src-anchor")).to_have_count(5)
    article = page.locator("#art-1")
    expect(article.locator("p.text mark.qty")).to_have_text(["2000万元以下", "50%", "最高50万元"])
    expect(source.locator("mark.qty", has_text="最高50万元")).to_have_count(1)
    # Another province's departments resolve by the document's province (苏工信 → 江苏省),
    # so nothing is left for the officer to map in this article.
    expect(article.locator("a.badge.dept.unknown")).to_have_count(0)
    expect(article.locator("span.badge.dept.lead")).to_have_text("省财政厅")

    # Correct the title of article (一).
    article.get_by_text("更正本条").click()
    article.get_by_label("标题").fill("设立小微企业纾困专项资金")
    article.get_by_role("button", name="保存更正").click()
    expect(page).to_have_url(f"{policy_url}/review#art-1")
    expect(page.locator("#art-1 h4")).to_contain_text("设立小微企业纾困专项资金")
    expect(page.locator("#art-1 h4 .badge")).to_have_text("已更正")

    page.get_by_role("button", name="发布", exact=True).click()
    expect(page).to_have_url(policy_url)
    expect(page.locator(".status")).to_have_text("已发布")
    page.get_by_role("button", name="退出").click()
    expect(page.locator(".who")).to_have_count(0)

    # The public list shows it; search finds a word of it, highlighted.
    page.goto(f"{live_server}/policy")
    expect(page.locator("table.policies a", has_text=JIANGSU_TITLE)).to_be_visible()
    page.get_by_label("关键词").fill("首贷")
    page.get_by_role("button", name="检索").click()
    hit = page.locator("li.hit", has=page.locator("a", has_text=JIANGSU_TITLE)).first
    expect(hit.locator("a").first).to_have_text(JIANGSU_TITLE)
    expect(hit.locator(".snippet mark").first).to_have_text("首贷")
    hit.locator("a").first.click()
    expect(page).to_have_url(f"{policy_url}#art-3")
    expect(page.locator("#art-1 h3")).to_have_text("(一)设立小微企业纾困专项资金")

    # Long results come in pages; the page links work from the keyboard and keep the query.
    page.goto(f"{live_server}/policy?q=企业")
    pager = page.get_by_role("navigation", name="分页")
    pager.locator("a[aria-current=page]").focus()
    page.keyboard.press("Tab")
    expect(pager.get_by_role("link", name="第 2 页")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/policy\?q=%E4%BC%81%E4%B8%9A&page=2$"))
    expect(page.locator("ol.hits")).to_have_attribute("start", "21")
    page.goto(f"{policy_url}#art-1")

    # The department page of a (not yet mapped) name lists its tasks from this policy only.
    page.locator("#art-1 a.dept.lead").click()
    expect(page.locator("h1")).to_contain_text("省财政厅")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("设立小微企业纾困专项资金")
    context.close()


def test_empty_and_unsupported_uploads_show_the_reason_and_store_nothing(
    browser: Any, live_server: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    before = policy_count()
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server}/policy/upload")
    error = page.locator("#upload-error")
    expect(error).to_be_hidden()

    empty = tmp_path / "空白.txt"
    empty.write_bytes(b"")
    page.get_by_label("文件").set_input_files(str(empty))
    page.get_by_role("button", name="上传并解析").click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("空白.txt")
    expect(error).to_contain_text("文件是空的")

    image = tmp_path / "scan.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    page.get_by_label("文件").set_input_files(str(image))
    page.get_by_role("button", name="上传并解析").click()
    expect(error).to_contain_text("scan.png:不支持的格式:这是PNG 图片")
    expect(error).to_contain_text("未能导入")
    expect(page).to_have_url(f"{live_server}/policy/upload")
    expect(page.get_by_role("button", name="上传并解析")).to_be_enabled()

    # A plain form post (as without JavaScript): the server refuses the empty file by itself.
    page.get_by_label("文件").set_input_files(str(empty))
    page.evaluate("document.getElementById('policy-upload').submit()")
    expect(page.locator("#upload-error")).to_contain_text("空白.txt:文件为空")
    assert policy_count() == before
    context.close()


def test_upload_shows_progress_then_opens_the_review(browser: Any, live_server: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    log_in(page, live_server)
    page.goto(f"{live_server}/policy/upload")
    # Hold the upload in flight until the progress indicator has been seen.
    held: list[Any] = []

    def hold_posts(route: Any) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/policy/upload", hold_posts)
    page.get_by_label("文件").set_input_files(str(FIXTURES / "notice.txt"))
    page.get_by_role("button", name="上传并解析").click()
    expect(page.locator("#upload-progress")).to_be_visible()
    expect(page.locator("#upload-status")).to_contain_text("正在上传")
    expect(page.get_by_role("button", name="上传并解析")).to_be_disabled()
    expect(page.locator("#policy-upload")).to_have_attribute("aria-busy", "true")
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("h1")).to_contain_text("审核:关于组织开展2023年度省级")
    context.close()
