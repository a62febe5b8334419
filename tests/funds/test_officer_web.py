"""The officer pages and API: a county reviewer's queue and decision through the forms, the
province's award page with its cut line, the dashboard with its chart data, and 404/403 for
reviewers outside the application's region or the call's department."""

from __future__ import annotations

import json
from datetime import date

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.funds import review
from huiqi.funds.review import Decision
from huiqi.funds.schemas import ApplicationStatus, ReviewDecision
from tests.conftest import csrf_from
from tests.funds.officer_fixtures import PASSWORD, World, build

TODAY = date(2025, 4, 1)


@pytest.fixture
def world(db_session: Session) -> World:
    w = build(db_session)
    db_session.commit()
    return w


def login(client: TestClient, name: str) -> str:
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_from(client, "/funds/review")


def test_county_reviewer_queue_page_and_decision_form(client: TestClient, world: World) -> None:
    token = login(client, "county-cg")
    page = BeautifulSoup(client.get("/funds/review").text, "lxml")
    listed = {int(tr["data-app"]) for tr in page.select("tr[data-app]")}
    assert listed == {world.apps["A"].id, world.apps["B"].id}
    detail = client.get(f"/funds/review/{world.apps['A'].id}")
    assert detail.status_code == 200
    soup = BeautifulSoup(detail.text, "lxml")
    assert soup.select_one("#checks li[data-code='duplicate_funding']") is not None
    assert soup.select_one("#return-form") is not None and soup.select_one("#pass-form") is not None
    # another county's file is not found; the JSON API agrees
    assert client.get(f"/funds/review/{world.apps['C'].id}").status_code == 404
    assert client.get(f"/api/v1/funds/applications/{world.apps['C'].id}/reviews").status_code == 404
    # return for correction through the form: a reason is required
    r = client.post(
        f"/funds/review/{world.apps['B'].id}/decide",
        data={"decision": "return", "reasons": "", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 422 and "须填写理由" in r.text
    r = client.post(
        f"/funds/review/{world.apps['B'].id}/decide",
        data={
            "decision": "return",
            "reasons": "请补充审计报告",
            "return_days": "5",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    world.session.expire_all()
    assert world.apps["B"].status == ApplicationStatus.returned
    api = client.get("/api/v1/funds/reviews/queue").json()
    assert [a["id"] for a in api] == [world.apps["A"].id]


def test_province_award_page_dashboard_and_api(client: TestClient, world: World) -> None:
    s, u, apps = world.session, world.users, world.apps
    for key, county, city in (
        ("A", "county", "city"),
        ("B", "county", "city"),
        ("C", "county_qz", "city_ts"),
    ):
        review.decide(s, u[county], apps[key].id, Decision(ReviewDecision.passed), today=TODAY)
        review.decide(s, u[city], apps[key].id, Decision(ReviewDecision.passed), today=TODAY)
    for key, pts in (("A", (55, 35)), ("B", (50, 35)), ("C", (45, 35))):
        review.decide(
            s,
            u["province"],
            apps[key].id,
            Decision(ReviewDecision.scored, "评分", {"innovation": pts[0], "growth": pts[1]}),
            today=TODAY,
        )
    s.commit()
    token = login(client, "province")
    page = BeautifulSoup(client.get(f"/funds/award/{world.call.id}").text, "lxml")
    outcomes = [tr["data-outcome"] for tr in page.select("#ranked tbody tr[data-app]")]
    assert outcomes == ["awarded", "awarded", "cut"]
    assert page.select_one("#cut-line") is not None
    api = client.get(f"/api/v1/funds/calls/{world.call.id}/award").json()
    assert api["cut_rank"] == 3 and api["total_fen"] == 4_000_000
    r = client.post(
        f"/funds/award/{world.call.id}/publicity",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    public = BeautifulSoup(client.get("/funds/publicity").text, "lxml")
    assert len(public.select("tr[data-app]")) == 2
    # approving before the period ends is refused with a clear message
    r = client.post(f"/funds/award/{world.call.id}/approve", data={"csrf_token": token})
    assert r.status_code == 422 and "期满后方可批准" in r.text
    board = client.get("/funds/dashboard")
    assert board.status_code == 200
    soup = BeautifulSoup(board.text, "lxml")
    data = json.loads(soup.select_one("#chart-data").text)
    assert data["calls"]["rows"] == [f"call-{world.call.id}"]
    assert soup.select_one(f"#call-{world.call.id}") is not None  # each bar has its row
    assert not soup.select("script:not([src]):not([type='application/json'])")


def test_other_department_and_enterprise_are_kept_out(client: TestClient, world: World) -> None:
    login(client, "other-dept")
    assert client.get(f"/funds/award/{world.call.id}").status_code == 403
    assert client.get(f"/funds/review/{world.apps['A'].id}").status_code == 404


def test_json_api_decides_at_the_stage_and_refuses_other_regions(
    client: TestClient, world: World
) -> None:
    token = login(client, "county-cg")
    headers = {"x-csrf-token": token}
    app_id = world.apps["A"].id
    r = client.post(
        f"/api/v1/funds/applications/{app_id}/reviews",
        json={"decision": "return", "reasons": "请补充材料", "return_days": 3},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["application"]["status"] == "returned"
    got = client.get(f"/api/v1/funds/applications/{app_id}/reviews").json()
    assert [x["decision"] for x in got["reviews"]] == ["return"]
    assert got["reviews"][0]["return_deadline"] is not None
    # a rejection without a reason is a clear 422 naming the field
    r = client.post(
        f"/api/v1/funds/applications/{world.apps['B'].id}/reviews",
        json={"decision": "reject", "reasons": ""},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "reasons"
    # another county's application is not found; the award API is the province's
    r = client.post(
        f"/api/v1/funds/applications/{world.apps['C'].id}/reviews",
        json={"decision": "pass"},
        headers=headers,
    )
    assert r.status_code == 404
    assert client.get(f"/api/v1/funds/calls/{world.call.id}/award").status_code == 403
