"""The region facet of scopes: a city officer (`huiqi user scope NAME --region-prefix 6201`)
sees and acts on Lanzhou's enterprises, grants and matches only — never Jiuquan's — in every
domain: the grant queue, decisions and detail pages, registry pages, search and API, and
matching's reverse queries. A province officer (no prefix) keeps seeing both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.core.codes import make_credit_code
from huiqi.grants.models import Grant
from huiqi.matching import service as matching
from tests.conftest import csrf_from
from tests.grants.conftest import GRAD_RULE, ON, RST, add

LANZHOU = make_credit_code("9", "1", "620102", "MA7REG01")  # 兰州市城关区
JIUQUAN = make_credit_code("9", "1", "620902", "MA7REG02")  # 酒泉市肃州区
LANZHOU_NAME, JIUQUAN_NAME = "兰州地区甲机械有限公司", "酒泉地区乙机械有限公司"


@pytest.fixture
def two_regions(db_session: Session) -> dict[str, int]:
    """One eligible enterprise in Lanzhou and one in Jiuquan, matched, with their grants."""
    add(db_session, LANZHOU, LANZHOU_NAME, 40, 2500, 3)
    add(db_session, JIUQUAN, JIUQUAN_NAME, 40, 2500, 3)
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
