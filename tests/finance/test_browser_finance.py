"""A real browser walks the whole financing path: a bank publishes, an enterprise posts a need,
compares ranked products, applies to two lenders in one step (the bank finds the application in
its inbox), revokes part of its consent, one bank approves and disburses, the other declines, an
officer reads the statistics, and a bank invites the need's enterprise to another product
without learning who it is; the enterprise follows the invitation and applies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import live

from .conftest import ENT_A, profile_a, register

pytestmark = pytest.mark.browser
SECOND_BANK = ("lzbank", "huiqi-lanzhou-bank-2020", "兰州银行股份有限公司")


def _setup(session: Session) -> None:
    """Demo accounts and products, a second bank user, and the demo enterprise in the registry."""
    from huiqi import demo
    from huiqi.accounts import service as accounts
    from huiqi.enterprise.models import Enterprise
    from huiqi.finance.demo import load_demo

    demo.load_all(session, population=0)
    load_demo(session)
    name, password, institution = SECOND_BANK
    accounts.create_user(
        session, username=name, password=password, role="bank", institution=institution
    )
    if session.scalar(select(Enterprise).where(Enterprise.credit_code == ENT_A)) is None:
        register(session, ENT_A, profile_a())
    demo.load_accounts(session, ENT_A)


@pytest.fixture(scope="module")
def finance_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The platform on a fresh SQLite file set up by _setup."""
    with live.live_server(tmp_path_factory.mktemp("finance-live"), _setup) as url:
        yield url


def _login(browser: Any, base: str, username: str, password: str) -> Any:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_label("密码").press("Enter")
    page.wait_for_url(f"{base}/")
    return page


def test_need_to_disbursement_in_the_browser(finance_server: str) -> None:
    from playwright.sync_api import expect

    base = finance_server
    with live.chromium() as browser:
        # 1. Gansu Bank publishes a product through the form.
        bank = _login(browser, base, "bank", "huiqi-bank-2020")
        bank.goto(f"{base}/finance/products/new")
        bank.get_by_label("产品名称").fill("陇原小微快贷")
        bank.get_by_label("额度下限(万元)").fill("10")
        bank.get_by_label("额度上限(万元)").fill("500")
        bank.get_by_label("最短期限(月)").fill("3")
        bank.get_by_label("最长期限(月)").fill("24")
        bank.get_by_label("LPR 加点(%,可为负)").fill("0.40")
        bank.locator("input[name=required_fields][value=revenue]").check()
        bank.get_by_label("其他准入条件(规则语言 YAML,可留空)").fill(
            "- {field: tax_credit_rating, op: in, value: [A, B]}"
        )
        bank.get_by_role("button", name="发布产品").click()
        expect(bank.locator("h1")).to_have_text("陇原小微快贷")
        expect(bank.locator("pre[data-rule]")).to_contain_text("tax_credit_rating")

        # 2. The enterprise posts a need and sees ranked products with reasons.
        ent = _login(browser, base, "enterprise", "huiqi-enterprise-2020")
        ent.goto(f"{base}/finance/needs/new")
        ent.get_by_label("融资金额(万元)").fill("200")
        ent.get_by_label("期限(月)").fill("12")
        ent.get_by_label("资金用途").fill("采购原材料,补充流动资金")
        ent.locator("input[name=collateral][value=none]").check()
        ent.get_by_label("是否首次获得银行贷款(首贷)").select_option("yes")
        ent.get_by_role("button", name="发布并匹配产品").click()
        expect(ent.locator("h1[data-need]")).to_be_visible()
        need_id = ent.locator("h1[data-need]").get_attribute("data-need")
        first = ent.locator("li[data-match]").first
        expect(first).to_have_attribute("data-eligibility", "eligible")
        quick = ent.locator("li[data-match]", has_text="陇原小微快贷")
        expect(quick).to_contain_text("纳税信用等级 A级")
        expect(quick).to_contain_text("年利率")
        expect(ent.locator("li[data-match]", has_text="流动资金贷款担保")).to_contain_text("(十八)")

        # 3. One step: apply to Gansu Bank's new product and Lanzhou Bank's tax-credit loan.
        ent.get_by_label("选择 陇原小微快贷").check()
        ent.get_by_label("选择 银税互动·税融贷").check()
        # consent per lender: each chosen product's own boxes
        for product in (quick, ent.locator("li[data-match]", has_text="银税互动·税融贷")):
            for field in ("revenue", "tax_credit_rating", "taxable_income", "employees"):
                product.locator(f"fieldset[data-consent] input[value={field}]").check()
        ent.get_by_role("button", name="一键提交申请").click()
        outcomes = ent.locator("#apply-outcomes li[data-outcome]")
        expect(outcomes).to_have_count(2)
        for i in range(2):
            expect(outcomes.nth(i)).to_have_attribute("data-outcome", "created")
        links = ent.locator("#apply-outcomes a")
        urls = [links.nth(i).get_attribute("href") for i in range(2)]
        gs_url, lz_url = (u for u in urls if u)

        # 4. Gansu Bank finds the new application in its inbox (and only its own messages),
        # follows it, accepts; it sees only the consented fields.
        bank.goto(f"{base}/notify/inbox")
        rows = bank.locator("table.inbox tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_class(re.compile(r"\bunread\b"))
        rows.first.get_by_role("link", name=re.compile(r"^新的融资申请 #\d+:陇原小微快贷$")).click()
        expect(bank.locator("article.notification")).to_contain_text("200 万元")
        bank.locator("a[data-link]").click()
        bank.wait_for_url(f"{base}{gs_url}")
        bank.goto(f"{base}/finance")
        expect(bank.locator("table[data-table=applications] tr[data-application]")).to_have_count(1)
        bank.goto(f"{base}{gs_url}")
        expect(bank.locator("#shared-fields tr[data-field=revenue]")).to_contain_text("万元")
        expect(bank.locator("#shared-fields tr[data-field=rd_expense]")).to_have_count(0)
        bank.locator("form[data-action=accept] button").click()
        expect(bank.locator("#status")).to_have_attribute("data-status", "accepted")
        # Lanzhou Bank's application is not Gansu Bank's to open.
        assert bank.goto(f"{base}{lz_url}").status == 404

        # 5. The enterprise revokes the revenue field mid-way.
        ent.goto(f"{base}{gs_url}")
        ent.locator("#revoke-form input[value=revenue]").check()
        ent.get_by_role("button", name="撤回所选授权").click()
        expect(ent.locator("#revoke-form input[value=revenue]")).to_have_count(0)
        bank.goto(f"{base}{gs_url}")
        expect(bank.locator("#shared-fields tr[data-field=revenue]")).to_have_count(0)
        expect(bank.locator("#shared-fields tr[data-field=tax_credit_rating]")).to_be_visible()

        # 6. Gansu Bank approves 180万元 and disburses.
        bank.get_by_label("批准金额(万元)").fill("180")
        bank.locator("form[data-action=approve] button").click()
        expect(bank.locator("#status")).to_have_attribute("data-status", "approved")
        bank.locator("form[data-action=disburse] button").click()
        expect(bank.locator("#status")).to_have_attribute("data-status", "disbursed")
        expect(bank.locator("#history")).to_contain_text("已放款")

        # 7. Lanzhou Bank declines with a reason; it cannot open Gansu Bank's application.
        lz = _login(browser, base, *SECOND_BANK[:2])
        assert lz.goto(f"{base}{gs_url}").status == 404
        lz.goto(f"{base}{lz_url}")
        lz.locator("form[data-action=decline] button").click()  # empty reason: the browser refuses
        expect(lz.locator("#status")).to_have_attribute("data-status", "submitted")
        lz.get_by_label("拒绝理由").fill("应纳税所得额低于授信要求")
        lz.locator("form[data-action=decline] button").click()
        expect(lz.locator("#status")).to_have_attribute("data-status", "declined")
        expect(lz.locator("#decline-reason")).to_have_text("应纳税所得额低于授信要求")

        # 8. The enterprise sees both outcomes; the officer sees the statistics.
        ent.goto(f"{base}/finance")
        statuses = ent.locator("table[data-table=applications] [data-status]")
        texts = sorted(statuses.nth(i).get_attribute("data-status") or "" for i in range(2))
        assert texts == ["declined", "disbursed"]
        officer = _login(browser, base, "officer", "huiqi-officer-2020")
        officer.goto(f"{base}/finance/stats")
        expect(officer.locator("#approval-rate")).to_have_text("50.0%")
        expect(officer.locator("#first-loan-share")).to_have_text(re.compile(r"^100\.0%"))
        # (十八) caps the average fee: 1.0% and 2.0% average 1.5%, within it; the 2.0% product is listed.
        expect(officer.locator("#fee-verdict")).to_have_text("符合")
        expect(officer.locator("#over-cap")).to_contain_text("流动资金贷款担保")

        # 9. Gansu Bank invites the open need to another of its products; it is told only that
        # the invitation went out, never who posted the need.
        bank.goto(f"{base}/finance/lender/needs")
        row = bank.locator(f"tr[data-need='{need_id}']")
        expect(row).to_be_visible()
        row.get_by_role("button", name=f"邀请申请 #{need_id} 陇原惠企信用贷").click()
        expect(bank.locator("#invite-sent")).to_be_visible()
        expect(
            bank.locator(f"tr[data-need='{need_id}'] [data-fit-product]", has_text="陇原惠企信用贷")
        ).to_contain_text("已邀请")
        expect(bank.locator("body")).not_to_contain_text("兰州精工机械")
        expect(bank.locator("body")).not_to_contain_text(ENT_A)

        # 10. The enterprise opens the invitation, lands on its need with the product marked and
        # ticked, and applies in one step.
        ent.goto(f"{base}/notify/inbox")
        ent.get_by_role(
            "link", name="甘肃银行股份有限公司的陇原惠企信用贷可能适合您的融资需求"
        ).click()
        ent.locator("a[data-link]").click()
        invited = ent.locator("li[data-invited]")
        expect(invited).to_contain_text("陇原惠企信用贷")
        expect(invited.locator("[data-invitation]")).to_be_visible()
        expect(invited.locator("input[name=product_id]")).to_be_checked()
        for field in ("revenue", "tax_credit_rating"):
            invited.locator(f"fieldset[data-consent] input[value={field}]").check()
        ent.get_by_role("button", name="一键提交申请").click()
        expect(ent.locator("#apply-outcomes li[data-outcome]")).to_have_attribute(
            "data-outcome", "created"
        )
        bank.goto(f"{base}/notify/inbox")
        expect(bank.locator("table.inbox tbody tr").first).to_contain_text("陇原惠企信用贷")
