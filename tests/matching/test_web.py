"""Matching pages and JSON API: 我的政策, rule page, editor with validation and sandbox, explain API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.enterprise import service as registry
from huiqi.matching import service
from huiqi.rules.library import load_library

from ..conftest import csrf_from

CODE = "91620102MA72H8K3X0"  # the default enterprise log-in's credit code


def _populate(session: Session) -> None:
    registry.apply_changes(
        session,
        CODE,
        {"name": "兰州示例公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    registry.apply_changes(
        session,
        CODE,
        {"employees": 40, "revenue": 1900 * 1_000_000, "total_assets": 1000 * 1_000_000},
        source="税务",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    registry.apply_changes(
        session,
        CODE,
        {"graduate_hires": 2, "graduate_insurance_paid": 1_600_000},
        source="人社",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    registry.apply_changes(
        session,
        CODE,
        {"revenue": 1500 * 1_000_000},
        source="税务",
        as_of=date(2023, 5, 31),
        year=2022,
    )
    service.load_rules(session)


def test_my_policies_page_groups_results(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    _populate(db_session)
    login_as("enterprise")
    page = client.get("/matching/mine")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    eligible = [a["data-rule"] for a in soup.select("#eligible article")]
    assert "gs351-22-graduate-social-insurance" in eligible
    assert (
        "2 人"
        in soup.select_one('#eligible article[data-rule="gs351-22-graduate-social-insurance"]').text
    )
    near = {a["data-rule"]: a.text for a in soup.select("#near-misses article")}
    assert "营业收入 1,900万元 → 2,000万元" in near["gs351-23-above-scale-upgrade"]
    assert soup.select("#to-confirm article .missing")


def test_explain_api_and_access(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    _populate(db_session)
    login_as("enterprise")
    body = client.get(
        f"/api/v1/matching/explain/{CODE}/gs351-22-graduate-social-insurance?on=2024-06-30"
    ).json()
    assert body["result"] == "eligible" and body["amount_fen"] == 1_600_000
    assert {"reasons", "missing", "near_miss"} <= set(body)
    other = client.get(
        "/api/v1/matching/explain/91620503MA7TJH0200/gs351-22-graduate-social-insurance"
    )
    assert other.status_code in (403, 404)


def test_rule_page_and_editor(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    _populate(db_session)
    login_as("officer", department="甘肃省人力资源和社会保障厅")
    page = client.get("/rules/gs351-22-graduate-social-insurance")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert "甘工信发〔2020〕351号 (二十二)" in soup.select_one("#legal-basis").text
    assert "1" in soup.select_one("#totals").text
    source = (
        load_library()
        .rules["gs351-22-graduate-social-insurance"]
        .source.replace("id: gs351-22-graduate-social-insurance", "id: draft-grad")
    )
    token = csrf_from(client, "/rules/editor")
    bad = client.post(
        "/rules/editor",
        data={
            "text": source.replace('op: ">=", value: 1', 'op: ">=", value: one'),
            "csrf_token": token,
            "action": "publish",
        },
    )
    assert bad.status_code == 422
    assert "draft.yaml:" in BeautifulSoup(bad.text, "html.parser").select_one("#errors").text
    ok = client.post(
        "/rules/editor",
        data={"text": source, "csrf_token": token, "action": "check", "on": "2024-06-30"},
    )
    soup = BeautifulSoup(ok.text, "html.parser")
    assert soup.select_one("#count-eligible").text == "1"
    assert "16,000.00" in soup.select_one("#exposure").text
    assert service.latest_version(db_session, "draft-grad") is None  # a check publishes nothing
    pub = client.post(
        "/rules/editor", data={"text": source, "csrf_token": token, "action": "publish"}
    )
    assert pub.status_code == 200
    soup = BeautifulSoup(pub.text, "html.parser")
    assert soup.select_one("#submitted") is not None  # an auto_grant rule waits for review
    stored = service.latest_version(db_session, "draft-grad")
    assert stored is not None and stored.status == "review"
