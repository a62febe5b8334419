"""The region facet of scopes: a city officer (`huiqi user scope NAME --region-prefix 6201`)
sees and acts on Lanzhou's enterprises, grants and matches only — never Jiuquan's — in every
domain: the grant queue, decisions and detail pages, registry pages, search and API,
matching's reverse queries, financing applications, needs and statistics, the push outbox and
funnel (and its CSV), the officer's home figures and the cockpit. A province officer (no
prefix) keeps seeing both."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts import service as accounts
from huiqi.core.clock import today
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.finance import service as finance
from huiqi.finance import todo as finance_todo
from huiqi.finance.models import Application, AppStatus
from huiqi.finance.schemas import NeedIn, ProductIn
from huiqi.grants.models import Grant
from huiqi.matching import service as matching
from huiqi.notify.models import OutboxMessage
from huiqi.web import workbench
from tests.conftest import csrf_from
from tests.grants.conftest import GRAD_RULE, ON, RST, add

LANZHOU = make_credit_code("9", "1", "620102", "MA7REG01")  # 兰州市城关区
JIUQUAN = make_credit_code("9", "1", "620902", "MA7REG02")  # 酒泉市肃州区
LANZHOU_NAME, JIUQUAN_NAME = "兰州地区甲机械有限公司", "酒泉地区乙机械有限公司"


@pytest.fixture
def two_regions(db_session: Session) -> dict[str, int]:
    """One eligible enterprise in Lanzhou and one in Jiuquan, matched, with their grants; both
    gave an e-mail address for pushes, so matching queues a message to each."""
    for code, name, mail in (
        (LANZHOU, LANZHOU_NAME, "caiwu@lanzhou-jia.example.cn"),
        (JIUQUAN, JIUQUAN_NAME, "caiwu@jiuquan-yi.example.cn"),
    ):
        add(db_session, code, name, 40, 2500, 3)
        registry.apply_changes(
            db_session,
            code,
            {"contact_email": mail, "consent_email": True},
            source="self-reported",
            as_of=date(2024, 1, 1),
        )
    matching.load_rules(db_session)
    matching.run_matching(db_session, ON)
    db_session.commit()
    ids = {
        code: db_session.scalars(select(Grant.id).where(Grant.credit_code == code)).one()
        for code in (LANZHOU, JIUQUAN)
    }
    return {"lanzhou": ids[LANZHOU], "jiuquan": ids[JIUQUAN]}


@pytest.fixture
def city_officer(db_session: Session, login_as: Callable[..., Any]) -> Any:
    """A reviewer of the graduate rule's department, limited to Lanzhou (6201), logged in."""
    user = login_as("officer", department=RST)
    scopes.set_region_prefix(db_session, user, "6201")
    db_session.commit()
    return user


@pytest.fixture
def financing(db_session: Session, two_regions: dict[str, int]) -> dict[str, int]:
    """A need of each enterprise sent to one lender's product, both past their deadline."""
    product = finance.create_product(
        db_session,
        "甘肃银行股份有限公司",
        ProductIn.model_validate(
            {
                "name": "陇原科技信用贷",
                "kind": "credit_loan",
                "amount_min_fen": 50 * 1_000_000,
                "amount_max_fen": 1000 * 1_000_000,
                "term_min_months": 6,
                "term_max_months": 36,
                "rate_base": "lpr_1y",
                "spread_bp": 45,
                "collateral": ["none"],
                "size_classes": ["medium", "small", "micro"],
                "region_prefixes": ["62"],
                "required_fields": ["revenue"],
                "valid_from": date(2024, 1, 1),
            }
        ),
    )
    ids: dict[str, int] = {}
    for place, code, amount_wan in (("lanzhou", LANZHOU, 300), ("jiuquan", JIUQUAN, 700)):
        owner = accounts.create_user(
            db_session, username=f"ent-{place}", password="x" * 12, role="enterprise",
            credit_code=code, check_policy=False,
        )  # fmt: skip
        need = finance.post_need(
            db_session,
            owner,
            NeedIn(amount_fen=amount_wan * 1_000_000, term_months=12, purpose="购置数控机床"),
        )
        app = Application(
            need_id=need.id,
            product_id=product.id,
            credit_code=code,
            institution=product.institution,
            status=AppStatus.submitted,
            amount_fen=need.amount_fen,
            term_months=12,
            eligibility="eligible",
            submitted_on=today() - timedelta(days=30),
            due_on=today() - timedelta(days=10),
        )
        db_session.add(app)
        db_session.flush()
        ids[place], ids[f"{place}_need"] = app.id, need.id
    db_session.commit()
    return ids


def test_grants_queue_decisions_and_detail_stay_in_the_region(
    client: TestClient, two_regions: dict[str, int], city_officer: Any
) -> None:
    queue = client.get("/grants").text
    assert LANZHOU_NAME in queue and JIUQUAN_NAME not in queue
    assert client.get(f"/grants/{two_regions['lanzhou']}").status_code == 200
    other = client.get(f"/grants/{two_regions['jiuquan']}")
    assert other.status_code == 403 and JIUQUAN_NAME not in other.text
    # a decision on a grant of another region refuses the whole batch, before any change
    refused = client.post(
        "/grants/review",
        data={
            "grant_id": [str(two_regions["lanzhou"]), str(two_regions["jiuquan"])],
            "decision": "reject",
            "reason": "测试",
            "csrf_token": csrf_from(client),
        },
        follow_redirects=False,
    )
    assert refused.status_code == 403
    done = client.post(
        "/grants/review",
        data={
            "grant_id": str(two_regions["lanzhou"]),
            "decision": "reject",
            "reason": "测试",
            "csrf_token": csrf_from(client),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303


def test_registry_pages_search_and_api_stay_in_the_region(
    client: TestClient, two_regions: dict[str, int], city_officer: Any
) -> None:
    listing = client.get("/enterprise").text
    assert LANZHOU_NAME in listing and JIUQUAN_NAME not in listing
    # asking for Jiuquan's prefecture gives nothing, not Jiuquan's enterprises
    assert JIUQUAN_NAME not in client.get("/enterprise", params={"region": "6209"}).text
    items = client.get("/api/v1/enterprise").json()["items"]
    assert [i["credit_code"] for i in items] == [LANZHOU]
    assert client.get(f"/enterprise/{LANZHOU}").status_code == 200
    assert client.get(f"/enterprise/{JIUQUAN}").status_code == 404
    assert client.get(f"/api/v1/enterprise/{JIUQUAN}").status_code == 404
    found = client.get("/search", params={"q": "地区"}).text
    assert LANZHOU_NAME in found and JIUQUAN_NAME not in found


def test_reverse_queries_stay_in_the_region(
    client: TestClient, two_regions: dict[str, int], city_officer: Any
) -> None:
    report = client.get(f"/api/v1/rules/{GRAD_RULE}/enterprises").json()
    assert LANZHOU in report["eligible"] and JIUQUAN not in report["eligible"]
    assert report["totals"]["eligible"] == 1
    page = client.get(f"/rules/{GRAD_RULE}").text  # counts by city: Lanzhou's only
    assert "<td>6201</td>" in page and "<td>6209</td>" not in page


def test_a_province_officer_sees_both_regions(
    client: TestClient, login_as: Callable[..., Any], two_regions: dict[str, int]
) -> None:
    login_as("officer", department=RST)
    assert JIUQUAN_NAME in client.get("/grants").text
    assert client.get(f"/grants/{two_regions['jiuquan']}").status_code == 200
    assert {i["credit_code"] for i in client.get("/api/v1/enterprise").json()["items"]} == {
        LANZHOU,
        JIUQUAN,
    }
    report = client.get(f"/api/v1/rules/{GRAD_RULE}/enterprises").json()
    assert {LANZHOU, JIUQUAN} <= set(report["eligible"])
    assert {r["credit_code"] for r in client.get("/api/v1/notify/outbox").json()} == {
        LANZHOU,
        JIUQUAN,
    }
    assert "酒泉市" in client.get("/cockpit").text


def test_financing_applications_needs_and_statistics_stay_in_the_region(
    client: TestClient, db_session: Session, financing: dict[str, int], city_officer: Any
) -> None:
    listed = [a["id"] for a in client.get("/api/v1/finance/applications").json()]
    assert listed == [financing["lanzhou"]]
    assert client.get(f"/finance/applications/{financing['lanzhou']}").status_code == 200
    assert client.get(f"/finance/applications/{financing['jiuquan']}").status_code == 404
    assert client.get(f"/finance/needs/{financing['jiuquan_need']}").status_code == 404
    stats = client.get("/api/v1/finance/stats").json()
    assert stats["applications"] == 1
    assert [(c["key"], c["needs"]) for c in stats["by_region"]] == [("620100", 1)]
    assert "酒泉市" not in client.get("/finance/stats").text
    # the overdue-application to-do counts the region's one, not Jiuquan's
    (overdue,) = finance_todo.todo(db_session, city_officer)
    assert overdue.count == 1


def test_push_outbox_stays_in_the_region(
    client: TestClient, db_session: Session, two_regions: dict[str, int], city_officer: Any
) -> None:
    queued = set(db_session.scalars(select(OutboxMessage.credit_code)))
    assert queued == {LANZHOU, JIUQUAN}  # both were told, by e-mail
    assert {r["credit_code"] for r in client.get("/api/v1/notify/outbox").json()} == {LANZHOU}
    outbox = client.get("/notify/outbox").text
    assert LANZHOU in outbox and JIUQUAN not in outbox


def test_push_funnel_report_stays_in_the_region(
    client: TestClient, two_regions: dict[str, int], city_officer: Any
) -> None:
    funnel = {(r["rule_id"], r["channel"]): r for r in client.get("/api/v1/notify/funnel").json()}
    assert funnel[(GRAD_RULE, "all")]["eligible"] == 1
    assert funnel[(GRAD_RULE, "email")]["notified"] == 1


def test_push_funnel_export_stays_in_the_region(
    client: TestClient, two_regions: dict[str, int], city_officer: Any
) -> None:
    exported = client.get("/notify/dashboard.csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    grad = next(r for r in rows if r[0] == GRAD_RULE and r[2] == "all")
    assert grad[3:5] == ["1", "1"]  # eligible, notified: Lanzhou's only


def test_cockpit_and_home_figures_stay_in_the_region(
    client: TestClient, db_session: Session, two_regions: dict[str, int], city_officer: Any
) -> None:
    page = BeautifulSoup(client.get("/cockpit").text, "lxml")
    data = page.select_one("#cockpit-data")
    assert data is not None
    chart = json.loads(str(data["data-chart"]))
    assert chart["cities"] == ["兰州市"] and chart["series"]["firms"] == [1]
    figures = {f.en: f.value for f in workbench.officer_figures(db_session, city_officer)}
    city_officer.region_prefix = None  # the same officer over the whole province, for comparison
    everywhere = {f.en: f.value for f in workbench.officer_figures(db_session, city_officer)}
    pairs = "Eligible enterprise–policy pairs"
    assert int(everywhere[pairs]) == 2 * int(figures[pairs]) > 0
