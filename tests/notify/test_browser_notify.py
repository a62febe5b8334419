"""Push and 免申即享 end to end in a real browser (Debian's headless Chromium through Playwright):
the demo enterprise reads its inbox and sets up its notifications; an officer of the rule's
department reviews grants in a batch, exports the disbursement file, and checks the ledger, the
public notice and the delivery dashboard (ECharts from the vendored file, no network)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import live

pytestmark = pytest.mark.browser

RST_OFFICER = ("rst-officer", "huiqi-renshe-zhao-2020")  # 省人社厅 runs the graduate subsidy
# Four eyes: the payment file is made by another officer than the one who approved.
RST_PAYER = ("rst-payer", "huiqi-renshe-sun-2020")
GRAD_RULE = "gs351-22-graduate-social-insurance"
REJECT_REASON = "经核查,该企业高校毕业生社保缴费记录与申报不一致"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo (small population) served live, with an officer of 省人社厅 and two grant
    enterprises that have recorded their receiving accounts."""
    facts: dict[str, Any] = {}

    def setup(session: Session) -> None:
        from huiqi.accounts import service as accounts
        from huiqi.grants import service as grants
        from huiqi.grants.schemas import BankAccountInput
        from huiqi.notify.service import sync_subscriptions_from_registry

        sync_subscriptions_from_registry(session)
        accounts.create_user(
            session,
            username=RST_OFFICER[0],
            password=RST_OFFICER[1],
            role="officer",
            display_name="省人社厅 赵科长",
            department="甘肃省人力资源和社会保障厅",
        )
        accounts.create_user(
            session,
            username=RST_PAYER[0],
            password=RST_PAYER[1],
            role="officer",
            display_name="省人社厅 拨付经办",
            department="甘肃省人力资源和社会保障厅",
        )
        pending = list(reversed(grants.grants(session, status="pending", rule_id=GRAD_RULE)))
        assert len(pending) >= 3, "the demo population should yield graduate-subsidy grants"
        approve, reject = pending[:2], pending[2]
        for i, grant in enumerate(approve):
            grants.set_bank_account(
                session,
                grant.credit_code,
                BankAccountInput.parse("甘肃银行", grant.enterprise_name, f"62170012345678{i:02d}"),
                actor="setup",
            )
        session.flush()
        facts["approve"] = [(g.id, g.credit_code, g.enterprise_name) for g in approve]
        facts["reject"] = reject.id
        facts["flagged"] = all(g.risk_flags for g in approve)

    with live.live_server(
        tmp_path_factory.mktemp("notify-live"), setup, demo_population=300
    ) as url:
        facts["url"] = url
        yield facts


@pytest.fixture(scope="module")
def browser(demo: dict[str, Any]) -> Iterator[Any]:
    """Headless Chromium."""
    with live.chromium() as b:
        yield b


def offline_context(browser: Any, base: str, blocked: list[str]) -> Any:
    """A browser context that may reach only the live server; anything else is recorded."""
    context = browser.new_context(locale="zh-CN", accept_downloads=True)

    def only_local(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    return context


def log_in(page: Any, base: str, username: str, password: str, role: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_label("密码").press("Enter")
    expect(page.locator(f"h1[data-home='{role}']")).to_be_visible()


def test_enterprise_reads_its_inbox_and_sets_up_notifications(
    browser: Any, demo: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    from huiqi.accounts.models import User
    from huiqi.core import db
    from huiqi.notify.models import ConsentEvent, Notification, ReadReceipt, Subscription

    base, blocked = demo["url"], []
    context = offline_context(browser, base, blocked)
    page = context.new_page()
    log_in(page, base, "enterprise", "huiqi-enterprise-2020", "enterprise")

    page.goto(f"{base}/notify/inbox")
    unread = page.locator("table.inbox tbody tr.unread")
    expect(unread.first).to_be_visible()
    before = unread.count()
    first = unread.first
    note_id = int(first.get_attribute("data-id"))
    subject = first.locator("a").inner_text()
    first.locator("a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    page.get_by_role("link", name="返回消息列表").click()
    expect(page.locator(f"table.inbox tr[data-id='{note_id}']")).to_have_class("read")
    expect(page.locator("table.inbox tbody tr.unread")).to_have_count(before - 1)
    with db.session_scope() as session:
        receipt = session.scalar(select(ReadReceipt).where(ReadReceipt.notification_id == note_id))
        assert receipt is not None and receipt.via == "inbox"
        assert session.get(Notification, note_id).read_at is not None  # type: ignore[union-attr]
        code = session.scalar(select(User.credit_code).where(User.username == "enterprise"))

    def subscription_state() -> tuple[object, ...] | None:
        with db.session_scope() as session:
            sub = session.scalar(select(Subscription).where(Subscription.credit_code == code))
            return None if sub is None else (sub.email, sub.email_consent_at, sub.daily_cap)

    # the registry may already hold a contact for the firm; a refused save must change nothing
    before_refusal = subscription_state()
    page.get_by_role("link", name="推送设置").click()
    email = page.get_by_label("邮箱地址")
    # the browser itself refuses what is not an address at all…
    email.fill("not-an-email")
    assert email.evaluate("e => e.validity.valid") is False
    # …and the server refuses what the browser lets through
    email.fill("caiwu@localhost")
    page.get_by_label("同意接收邮件推送").check()
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator("#settings-error")).to_contain_text("邮箱地址")
    assert subscription_state() == before_refusal

    page.get_by_label("邮箱地址").fill("caiwu@lzjx.example.cn")
    page.get_by_label("同意接收邮件推送").check()
    page.locator("#ns-qs").fill("22:00")
    page.locator("#ns-qe").fill("07:30")
    page.locator("#ns-cap").fill("3")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="已保存")).to_be_visible()
    # newest first: the grant made on the settings page heads the history
    newest = page.locator("#consent-history tbody tr").first.locator("td")
    expect(newest.nth(2)).to_have_text("同意")
    expect(newest.nth(3)).to_have_text("推送设置页")
    with db.session_scope() as session:
        sub = session.scalar(select(Subscription).where(Subscription.credit_code == code))
        assert sub is not None and sub.email == "caiwu@lzjx.example.cn"
        assert sub.email_consent_at is not None
        assert (sub.quiet_start, sub.quiet_end, sub.daily_cap) == (22 * 60, 7 * 60 + 30, 3)
        events = session.scalars(
            select(ConsentEvent).where(
                ConsentEvent.credit_code == code, ConsentEvent.via == "settings"
            )
        )
        # a consent given for the registry's address ends when the firm names another one
        ended = [("email", False, "settings")] if before_refusal and before_refusal[1] else []
        assert [(e.channel, e.granted, e.via) for e in events] == [
            *ended,
            ("email", True, "settings"),
        ]
        recorded = session.scalars(select(ConsentEvent).where(ConsentEvent.credit_code == code))
        shown = len(recorded.all())
    expect(page.locator("#consent-history tbody tr")).to_have_count(shown)

    page.goto(f"{base}/grants/mine")
    expect(page.get_by_role("heading", level=1)).to_have_text("免申即享")
    expect(page.locator("#my-grants")).to_be_visible()
    expect(page.get_by_label("开户银行")).to_be_visible()
    assert blocked == []
    context.close()


def test_officer_reviews_disburses_and_checks_notice_ledger_and_dashboard(
    browser: Any, demo: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, blocked = demo["url"], []
    context = offline_context(browser, base, blocked)
    page = context.new_page()
    log_in(page, base, *RST_OFFICER, "officer")

    page.goto(f"{base}/grants")
    expect(page.locator("#scope")).to_contain_text("甘肃省人力资源和社会保障厅")
    approve_ids = [gid for gid, _, _ in demo["approve"]]
    for gid in approve_ids:
        row = page.locator(f"#queue tr[data-id='{gid}']")
        expect(row.locator("[data-flag]").first).to_be_visible()  # flagged: needs acknowledgement
        row.locator("input[name=grant_id]").check()
    # without acknowledging the risk flags nothing is approved
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#review-message")).to_contain_text("已批准 0 项")
    expect(page.locator("#review-message")).to_contain_text("未勾选“已核实风险提示”")
    expect(page.locator("#review-message")).to_have_attribute("data-level", "error")
    for gid in approve_ids:
        page.locator(f"#queue tr[data-id='{gid}'] input[name=grant_id]").check()
    page.get_by_label("我已核实风险提示,仍批准有提示的项目").check()
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#review-message")).to_have_text("已批准 2 项。")
    for gid in approve_ids:
        expect(page.locator(f"#queue tr[data-id='{gid}']")).to_have_count(0)

    page.locator(f"#queue tr[data-id='{demo['reject']}'] input[name=grant_id]").check()
    page.get_by_role("radio", name="驳回").check()
    page.get_by_label("理由(驳回必填)").fill(REJECT_REASON)
    page.get_by_role("button", name="提交").click()
    expect(page.locator("#review-message")).to_have_text("已驳回 1 项。")

    page.get_by_role("link", name="拨付清单").click()
    expect(page.locator("#ready tbody tr[data-id]")).to_have_count(2)
    # the approver may not make the payment file of what it approved
    expect(page.get_by_role("button", name="生成拨付批次并通知企业")).to_have_count(0)
    payer_context = offline_context(browser, base, blocked)
    payer = payer_context.new_page()
    log_in(payer, base, *RST_PAYER, "officer")
    payer.goto(f"{base}/grants/disbursements")
    expect(payer.locator("#ready tbody tr[data-id]")).to_have_count(2)
    payer.get_by_role("button", name="生成拨付批次并通知企业").click()
    batch = payer.locator("#batches tbody tr").first
    expect(batch.locator("td").nth(3)).to_have_text("2")
    with payer.expect_download() as info:
        batch.get_by_role("link", name="CSV").click()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_bytes().decode("utf-8-sig"))))
    assert rows[0][:3] == ["序号", "统一社会信用代码", "企业名称"]
    assert sorted(r[1] for r in rows[1:]) == sorted(code for _, code, _ in demo["approve"])
    assert all(r[5].startswith("621700123456780") for r in rows[1:])
    with payer.expect_download() as info:
        batch.get_by_role("link", name="XLSX").click()
    assert info.value.suggested_filename.endswith(".xlsx")
    payer_context.close()

    page.goto(f"{base}/grants/ledger")
    expect(page.locator("#ledger-ok")).to_be_visible()
    events = page.locator("#ledger tbody tr td:nth-of-type(4)").all_inner_texts()
    assert {"生成", "批准", "驳回", "拨付"} <= set(events)  # ledger events by their Chinese names
    rejected = page.locator(f"#ledger tbody tr:has(a[href='/grants/{demo['reject']}'])").first
    expect(rejected.locator("td").nth(4)).to_have_text(RST_OFFICER[0])

    page.goto(f"{base}/grants/public")
    notice = page.locator("#notice tbody")
    for _, code, name in demo["approve"]:
        expect(notice).to_contain_text(name)
        assert code not in page.content()

    page.goto(f"{base}/notify/dashboard?rule={GRAD_RULE}")
    expect(page.locator("#funnel-chart canvas")).to_have_count(1)
    expect(page.locator("#channel-chart canvas")).to_have_count(1)
    assert page.evaluate("typeof window.echarts.init") == "function"
    applied = page.locator(
        f"#funnel tr[data-rule='{GRAD_RULE}'][data-channel='all'] td[data-stage='applied']"
    )
    expect(applied).to_have_text("2")
    assert blocked == [], blocked
    context.close()
