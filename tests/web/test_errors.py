"""One error model: domain refusals and invalid input become one JSON shape or one page, in the
user's language, and the input handler never fails on what validators put in their errors."""

from __future__ import annotations

import sqlite3
from typing import Annotated

import pytest
from bs4 import BeautifulSoup
from fastapi import FastAPI, Form
from fastapi.testclient import TestClient
from pydantic import BaseModel, field_validator
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from huiqi.accounts.models import AuditEvent
from huiqi.core import errors
from huiqi.grants.schemas import GrantError, GrantForbidden
from huiqi.web.deps import SessionDep
from huiqi.web.errors import describe
from tests.conftest import csrf_from


class Budget(BaseModel):
    """A body whose validator raises: pydantic keeps the exception object in the error's ctx."""

    amount_fen: int

    @field_validator("amount_fen")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("须为正数 / must be positive")
        return value


@pytest.fixture
def probe(app: FastAPI) -> FastAPI:
    """The app with a few routes that raise each kind of error."""

    @app.get("/api/v1/test-missing")
    def missing() -> None:
        raise errors.NotFound("申请不存在", "no such application", field="application_id")

    @app.get("/test-conflict")
    def conflict() -> None:
        raise errors.Conflict("申请已撤回,不能再受理", "the application was withdrawn")

    @app.post("/api/v1/test-budget")
    def budget(body: Budget) -> dict[str, int]:
        return {"amount_fen": body.amount_fen}

    @app.post("/api/v1/test-refused-write")
    def refused_write(session: SessionDep) -> None:
        session.add(AuditEvent(event="test.domain-refused", detail={}))
        session.flush()
        raise errors.Forbidden("无权操作", "not allowed")

    @app.post("/api/v1/test-write")
    def write(session: SessionDep) -> dict[str, bool]:
        session.add(AuditEvent(event="test.failed-commit", detail={}))
        return {"saved": True}

    @app.post("/test-write")
    def write_page(session: SessionDep) -> dict[str, bool]:
        session.add(AuditEvent(event="test.failed-commit-page", detail={}))
        return {"saved": True}

    @app.post("/test-year")
    def year(year: Annotated[int, Form(ge=1949, le=2100, title="年度 / Year")]) -> dict[str, int]:
        return {"year": year}

    return app


def test_domain_error_is_json_with_code_message_and_field(
    probe: FastAPI, client: TestClient
) -> None:
    r = client.get("/api/v1/test-missing")
    assert r.status_code == 404
    assert r.json()["error"] == {
        "code": "not_found",
        "message": "申请不存在",
        "field": "application_id",
    }
    english = client.get("/api/v1/test-missing?lang=en").json()["error"]
    assert english["message"] == "no such application"


def test_domain_error_page_speaks_the_users_language(probe: FastAPI, client: TestClient) -> None:
    r = client.get("/test-conflict")
    assert r.status_code == 409
    alert = BeautifulSoup(r.text, "lxml").select_one("[role=alert]")
    assert alert is not None and "申请已撤回,不能再受理" in alert.get_text()
    assert "withdrawn" not in alert.get_text()
    english = BeautifulSoup(client.get("/test-conflict?lang=en").text, "lxml")
    assert "the application was withdrawn" in english.get_text()


def test_refusal_rolls_back_what_the_request_wrote(
    probe: FastAPI, client: TestClient, db_session: Session
) -> None:
    r = client.post("/api/v1/test-refused-write", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    events = set(db_session.scalars(select(AuditEvent.event)).all())
    assert "test.domain-refused" not in events


def test_a_failed_commit_is_a_500_that_says_nothing_was_saved(
    probe: FastAPI,
    client: TestClient,
    db_session: Session,
    session_maker: sessionmaker[Session],
) -> None:
    """The commit meets a locked database (as under load): the client is not told "saved"."""

    def locked(_session: Session) -> None:
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))

    event.listen(session_maker, "before_commit", locked)
    try:
        api = client.post("/api/v1/test-write", json={})
        page = client.post("/test-write", data={"csrf_token": csrf_from(client)})
    finally:
        event.remove(session_maker, "before_commit", locked)
    assert api.status_code == 500 and "nothing was saved" in api.json()["detail"]
    assert "数据未能保存" in api.json()["detail"]
    assert page.status_code == 500 and "nothing was saved" in page.text
    events = set(db_session.scalars(select(AuditEvent.event)).all())
    assert not events & {"test.failed-commit", "test.failed-commit-page"}
    # the failure leaves the server whole: the same request now saves
    assert client.post("/api/v1/test-write", json={}).json() == {"saved": True}
    assert "test.failed-commit" in set(db_session.scalars(select(AuditEvent.event)).all())


def test_validator_exception_in_ctx_does_not_crash_the_handler(
    probe: FastAPI, client: TestClient
) -> None:
    r = client.post("/api/v1/test-budget", json={"amount_fen": -5})
    assert r.status_code == 422  # was a 500: the ValueError in ctx is not JSON
    body = r.json()
    assert body["error"]["code"] == "invalid" and body["error"]["field"] == "amount_fen"
    assert "amount_fen" in body["error"]["message"] and "须为正数" in body["error"]["message"]
    assert body["detail"][0]["loc"] == ["body", "amount_fen"]
    assert body["detail"][0]["ctx"]["error"] == "须为正数 / must be positive"


def test_invalid_form_names_the_label_and_what_is_allowed(
    probe: FastAPI, client: TestClient
) -> None:
    token = csrf_from(client)
    r = client.post("/test-year", data={"year": "1800", "csrf_token": token})
    assert r.status_code == 422
    alert = BeautifulSoup(r.text, "lxml").select_one("[role=alert]")
    assert alert is not None and "年度须不小于 1949" in alert.get_text()
    r = client.post("/test-year?lang=en", data={"year": "soon", "csrf_token": token})
    assert "Year must be a whole number" in r.text
    r = client.post("/test-year?lang=zh", data={"csrf_token": token})
    assert "年度必须填写" in r.text


def test_describe_survives_any_context() -> None:
    odd = {"loc": ("query", "on"), "type": "greater_than", "ctx": {"unexpected": object()}}
    field, message = describe(odd, "zh", {})
    assert field == "on" and "on" in message
    field, message = describe({"type": "weird"}, "en", {})
    assert field == "" and "the request" in message


def test_domain_errors_keep_their_kind_and_stay_value_errors() -> None:
    assert issubclass(GrantError, ValueError) and GrantError("x").status == 422
    refused = GrantForbidden("只能处理本部门政策的项目")
    assert isinstance(refused, GrantError) and refused.status == 403 and refused.code == "forbidden"
    both = errors.Invalid("金额有误", "wrong amount")
    assert str(both) == "金额有误 / wrong amount" and both.localized("en") == "wrong amount"


def test_real_pages_name_their_parameters(client: TestClient) -> None:
    page = BeautifulSoup(client.get("/policy?page=0&lang=zh").text, "lxml")
    alert = page.select_one("[role=alert]")
    assert alert is not None and "页码须不小于 1" in alert.get_text()
    api = client.get("/api/v1/policy/policies", params={"limit": 0, "lang": "en"})
    assert api.status_code == 422
    assert api.json()["error"] == {
        "code": "invalid",
        "message": "Rows per page must be at least 1",
        "field": "limit",
    }
