"""The enterprise's pages and API for calls and applications, as a browser and a client use
them: from 我的政策 to the call, the pre-filled form, checked uploads, the declaration, the
timeline; and what others may not open."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.funds import service as funds
from tests.conftest import TEST_PASSWORD, csrf_from
from tests.funds.enterprise_world import PDF, PNG, World, build


@pytest.fixture
def world(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, engine: object, tmp_path: Path
) -> World:
    w = build(db_session, monkeypatch, tmp_path)
    funds.publish_call(db_session, w.officer, w.call.id)
    db_session.commit()
    return w


def login(client: TestClient, username: str) -> str:
    """Log in as an existing user; returns a CSRF token for forms."""
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": TEST_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_from(client, "/funds/calls")


def open_application(client: TestClient, world: World, token: str) -> int:
    r = client.post(
        f"/funds/calls/{world.call.id}/apply", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303
    found = re.search(r"/funds/applications/(\d+)$", r.headers["location"])
    assert found is not None
    return int(found.group(1))


def test_from_my_policies_to_a_submitted_application(client: TestClient, world: World) -> None:
    token = login(client, "ent-eligible")
    mine = client.get("/matching/mine").text
    assert f'href="/funds/calls/{world.call.id}" class="apply-call"' in mine
    listing = client.get("/funds/calls").text
    assert f'id="call-{world.call.id}"' in listing and world.call.title in listing
    page = client.get(f"/funds/calls/{world.call.id}").text
    assert 'id="apply-button"' in page and "项目实施方案" in page

    app_id = open_application(client, world, token)
    form = client.get(f"/funds/applications/{app_id}").text
    assert 'data-field="revenue@2024"' in form and "税务" in form and "2025-05-31" in form
    assert 'data-eligibility="eligible"' in form

    r = client.post(
        f"/funds/applications/{app_id}/save",
        data={"csrf_token": token, "project_name": "扩产项目", "requested_yuan": "3000"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # a PNG is refused for the plan, with the reason shown on the form
    r = client.post(
        f"/funds/applications/{app_id}/materials",
        data={"csrf_token": token, "key": "plan"},
        files={"file": ("方案.pdf", PNG, "application/pdf")},
    )
    assert r.status_code == 422 and "文件类型不符合要求" in r.text
    r = client.post(
        f"/funds/applications/{app_id}/materials",
        data={"csrf_token": token, "key": "plan"},
        files={"file": ("方案.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # without the declaration the submission is refused
    r = client.post(
        f"/funds/applications/{app_id}/submit", data={"csrf_token": token, "submit_key": "k1"}
    )
    assert r.status_code == 422 and "真实性承诺" in r.text
    r = client.post(
        f"/funds/applications/{app_id}/submit",
        data={"csrf_token": token, "submit_key": "k1", "declared": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    # the same form sent again (a double click) changes nothing
    r = client.post(
        f"/funds/applications/{app_id}/submit",
        data={"csrf_token": token, "submit_key": "k1", "declared": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    timeline = client.get("/funds/mine").text
    assert f'id="application-{app_id}" data-status="submitted"' in timeline
    assert 'data-step="stage-0" data-state="current"' in timeline
    assert "预计" in timeline
    material = client.get(f"/funds/applications/{app_id}").text
    href = re.search(rf'href="(/funds/applications/{app_id}/materials/\d+)"', material)
    assert href is not None
    assert client.get(href.group(1)).content == PDF


def test_other_enterprises_and_strangers_are_kept_out(client: TestClient, world: World) -> None:
    token = login(client, "ent-eligible")
    app_id = open_application(client, world, token)
    client.post("/logout", data={"csrf_token": token})
    token = login(client, "ent-confirm")
    assert client.get(f"/funds/applications/{app_id}").status_code == 404
    assert client.get(f"/api/v1/funds/applications/{app_id}").status_code == 404
    r = client.post(
        f"/funds/applications/{app_id}/materials",
        data={"csrf_token": token, "key": "plan"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 404
    assert client.get("/api/v1/funds/applications").json() == {"applications": []}


def test_a_late_submission_is_refused_in_chinese(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch, db_session: Session
) -> None:
    # the call closes a minute from now, so the log-in stays valid past its deadline
    world.call.closes_at = clock.now() + timedelta(minutes=1)
    db_session.commit()
    token = login(client, "ent-eligible")
    app_id = open_application(client, world, token)
    client.post(
        f"/funds/applications/{app_id}/save",
        data={"csrf_token": token, "project_name": "项目", "requested_yuan": "10"},
    )
    client.post(
        f"/funds/applications/{app_id}/materials",
        data={"csrf_token": token, "key": "plan"},
        files={"file": ("a.pdf", PDF, "application/pdf")},
    )
    late = clock.now() + timedelta(minutes=2)
    monkeypatch.setattr(clock, "now", lambda: late)
    r = client.post(
        f"/funds/applications/{app_id}/submit",
        data={"csrf_token": token, "submit_key": "late", "declared": "1"},
    )
    assert r.status_code == 409 and "截止" in r.text and "不再受理" in r.text


def test_api_applies_and_submits_once(client: TestClient, world: World) -> None:
    token = login(client, "ent-eligible")
    assert client.get("/api/v1/funds/calls").json()["calls"][0]["id"] == world.call.id
    r = client.post("/api/v1/funds/applications", json={"call_id": world.call.id})
    assert r.status_code == 201
    body = r.json()
    assert body["prefill"]["name"]["source"] == "市场监管" and body["eligibility"] == "eligible"
    app_id = body["id"]
    r = client.put(
        f"/api/v1/funds/applications/{app_id}",
        json={"project_name": "扩产项目", "requested_fen": 300_000},
    )
    assert r.status_code == 200
    r = client.post(
        f"/api/v1/funds/applications/{app_id}/materials",
        data={"key": "plan"},
        files={"file": ("plan.docx", b"not a word file", "application/octet-stream")},
        headers={"x-csrf-token": token},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"
    client.post(
        f"/api/v1/funds/applications/{app_id}/materials",
        data={"key": "plan"},
        files={"file": ("plan.pdf", PDF, "application/pdf")},
        headers={"x-csrf-token": token},
    )
    first = client.post(
        f"/api/v1/funds/applications/{app_id}/submit",
        json={"declared": True},
        headers={"Idempotency-Key": "api-1"},
    )
    again = client.post(
        f"/api/v1/funds/applications/{app_id}/submit",
        json={"declared": True},
        headers={"Idempotency-Key": "api-1"},
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["submitted_at"] == again.json()["submitted_at"]
    steps = [s["step"] for s in again.json()["timeline"]]
    assert steps[0] == "submitted" and steps[-1] == "paid"


def test_officers_create_calls_by_api_within_their_department(
    client: TestClient, world: World
) -> None:
    login(client, "other-officer")
    body = {
        "fund_id": world.fund.id,
        "budget_line_id": world.fund.lines[0].id,
        "title": "另一批次",
        "legal_basis": "甘工信发〔2020〕351号 第(二十三)条",
        "opens_at": "2025-03-01T09:00:00+08:00",
        "closes_at": "2025-03-31T17:00:00+08:00",
        "budget_fen": 100_000,
        "stages": [{"level": "province", "days": 10}],
    }
    assert client.post("/api/v1/funds/calls", json=body).status_code == 403


def test_officer_sees_the_drafts_of_its_department(
    client: TestClient, world: World, db_session: Session
) -> None:
    login(client, "funds-officer")
    body = {
        "fund_id": world.fund.id,
        "budget_line_id": world.fund.lines[0].id,
        "title": "第二批规下转规上奖励",
        "legal_basis": "甘工信发〔2020〕351号 第(二十三)条",
        "opens_at": "2025-03-01T09:00:00+08:00",
        "closes_at": "2025-03-31T17:00:00",
        "budget_fen": 100_000,
        "stages": [{"level": "province", "days": 10}],
    }
    r = client.post("/api/v1/funds/calls", json=body)
    assert r.status_code == 422 and "时区" in r.json()["error"]["message"]
    body["closes_at"] = "2025-03-31T17:00:00+08:00"
    r = client.post("/api/v1/funds/calls", json=body)
    assert r.status_code == 201 and r.json()["status"] == "draft"
    call_id = r.json()["id"]
    assert "发布并推送" in client.get(f"/funds/calls/{call_id}").text
    client.cookies.clear()
    assert client.get(f"/funds/calls/{call_id}").status_code == 404


def test_an_officer_sets_up_a_call_in_the_browser(client: TestClient, world: World) -> None:
    token = login(client, "funds-officer")
    page = client.get("/funds/calls/new").text
    line = f"{world.fund.id}:{world.fund.lines[0].id}"
    assert f'value="{line}"' in page and "gs351-23-above-scale-upgrade" in page
    form = {
        "csrf_token": token,
        "fund_line": line,
        "title": "第二批规下转规上奖励申报",
        "legal_basis": "甘工信发〔2020〕351号 第(二十三)条",
        "rule_id": "gs351-23-above-scale-upgrade",
        "opens_at": "2025-03-03T09:00",
        "closes_at": "2025-03-31T17:00",
        "budget_yuan": "5000",
        "materials": "plan|项目实施方案|pdf,exe|10|必需",
        "stages": "county|5\nprovince|10",
        "criteria": "growth|成长性|100",
    }
    r = client.post("/funds/calls/new", data=form)
    assert r.status_code == 422 and "文件类型" in r.text and "第二批" in r.text
    form["materials"] = "plan|项目实施方案|pdf,docx|10|必需"
    r = client.post("/funds/calls/new", data=form, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "第二批规下转规上奖励申报" in page and 'id="publish-form"' in page
    # 17:00 in Beijing is stored as 09:00 UTC and shown again as Beijing time
    assert "2025-03-31 17:00" in page
