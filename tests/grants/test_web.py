"""Grant pages: review queue, batch decision, detail, disbursement files, public notice, and an
enterprise that sees only its own grants."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role
from huiqi.events import ResultChange
from huiqi.grants import service
from huiqi.grants.models import Grant
from huiqi.grants.schemas import GrantForbidden
from huiqi.notify.models import Notification
from tests.conftest import csrf_from
from tests.grants.conftest import RST, A, B, grants_for


def test_officer_reviews_disburses_and_public_sees_notice(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, b = grants_for(db_session, matched)
    login_as("officer", department=RST)
    page = BeautifulSoup(client.get("/grants").text, "lxml")
    rows = {tr["data-id"]: tr for tr in page.select("#queue tbody tr")}
    assert set(rows) == {str(a.id), str(b.id)}
    assert rows[str(b.id)].select_one("[data-flag=high_amount]") is not None
    assert rows[str(b.id)].select_one("[data-flag=no_bank_account]") is not None
    token = csrf_from(client, "/grants")
    r = client.post(
        "/grants/review",
        data={
            "csrf_token": token,
            "grant_id": [str(a.id), str(b.id)],
            "decision": "approve",
            "ack_risk": "on",
        },
    )
    assert r.status_code == 200
    message = BeautifulSoup(r.text, "lxml").find(id="review-message")
    assert message is not None
    assert message.get_text() == "已批准 1 项;跳过 1 项:未登记银行账户 1 项 — 已通知企业补充。"
    assert message["data-level"] == "warn"
    # the enterprise without an account is told what to supply, once
    asked = db_session.scalars(
        select(Notification).where(
            Notification.credit_code == B, Notification.link == "/grants/mine#account"
        )
    ).all()
    assert len(asked) == 1 and "收款" in asked[0].subject
    r = client.post(
        "/grants/review", data={"csrf_token": token, "grant_id": str(b.id), "decision": "reject"}
    )
    assert r.status_code == 422

    detail = BeautifulSoup(client.get(f"/grants/{a.id}").text, "lxml")
    assert detail.find(id="recomputed")["data-fen"] == str(a.amount_fen)  # type: ignore[index]
    assert [td.get_text() for td in detail.select("#ledger tbody tr td:nth-of-type(2)")] == [
        "批准",
        "生成",
    ]

    # four-eyes: the approver sees the grant as someone else's to pay and cannot build the file
    page = BeautifulSoup(client.get("/grants/disbursements").text, "lxml")
    assert page.select_one(f'#ready tr[data-id="{a.id}"][data-own="1"]') is not None
    assert page.select_one('form[action="/grants/disbursements"]') is None
    r = client.post("/grants/disbursements", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 403
    refusal = BeautifulSoup(r.text, "lxml").find(id="disburse-error")
    assert refusal is not None and f"#{a.id}" in refusal.get_text()
    client.post("/logout", data={"csrf_token": token})
    login_as("officer", department=RST)  # a second officer of the department pays
    token = csrf_from(client, "/grants/disbursements")
    r = client.post("/grants/disbursements", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    batch = BeautifulSoup(client.get("/grants/disbursements").text, "lxml").select(
        "#batches tbody tr"
    )[0]
    batch_id = batch["id"].removeprefix("batch-")
    xlsx = client.get(f"/grants/disbursements/{batch_id}.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet["B2"].value == A and sheet["H2"].value == a.amount_fen
    csv_text = client.get(f"/grants/disbursements/{batch_id}.csv").content.decode("utf-8-sig")
    assert "6217001234567890" in csv_text and "36450.00" in csv_text
    assert BeautifulSoup(client.get("/grants/ledger").text, "lxml").find(id="ledger-ok") is not None

    client.post("/logout", data={"csrf_token": token})
    public = client.get("/grants/public")
    assert public.status_code == 200
    cells = [td.get_text() for td in BeautifulSoup(public.text, "lxml").select("#notice tbody td")]
    assert cells[:2] == ["兰州甲机械有限公司", "小微企业招用高校毕业生社会保险补贴(免申即享)"]
    assert "36,450.00 元" in cells
    assert (
        A not in public.text and "6217001234567890" not in public.text and "7890" not in public.text
    )


def test_enterprise_sees_only_its_own(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, b = grants_for(db_session, matched)
    login_as("enterprise", credit_code=A)
    page = BeautifulSoup(client.get("/grants/mine").text, "lxml")
    assert [tr["id"] for tr in page.select("#my-grants tbody tr")] == [f"grant-{a.id}"]
    assert "7890" in page.find(id="account").get_text() and "6217001234567890" not in page.text  # type: ignore[union-attr]
    assert client.get(f"/grants/{a.id}").status_code == 200
    assert client.get(f"/grants/{b.id}").status_code == 404
    assert [g["id"] for g in client.get("/api/v1/grants/mine").json()] == [a.id]
    assert client.get("/grants").status_code == 403
    token = csrf_from(client, "/grants/mine")
    bad = client.post(
        "/grants/mine/account",
        data={
            "csrf_token": token,
            "bank_name": "甘肃银行",
            "account_name": "甲公司",
            "account_no": "abc",
        },
    )
    assert bad.status_code == 422 and BeautifulSoup(bad.text, "lxml").find(id="account-error")


def test_review_is_limited_to_the_rules_department(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, b = grants_for(db_session, matched)
    assert a.department == "省人社厅"
    assert service.review_scope(db_session, role=Role.officer, department=RST) == {"省人社厅"}
    assert service.review_scope(db_session, role=Role.admin, department=None) is None
    assert service.review_scope(db_session, role=Role.bank, department=RST) == frozenset()

    # a batch holding another department's grant is refused whole, before any change
    with pytest.raises(GrantForbidden, match=f"#{a.id}"):
        service.review(
            db_session, [a.id, b.id], "reject", actor="x", reason="r", departments={"省工信厅"}
        )
    assert (a.status, b.status) == ("pending", "pending")

    # an officer of another department sees none of them and may act on none
    login_as("officer")  # 甘肃省工业和信息化厅
    page = BeautifulSoup(client.get("/grants").text, "lxml")
    assert page.select("#queue tbody tr[data-id]") == []
    assert client.get("/api/v1/grants").json() == []
    assert client.get(f"/grants/{a.id}").status_code == 403
    token = csrf_from(client, "/grants")
    r = client.post(
        "/grants/review",
        data={"csrf_token": token, "grant_id": str(a.id), "decision": "approve", "ack_risk": "on"},
    )
    assert r.status_code == 403
    r = client.post(f"/grants/{a.id}/confirm", data={"csrf_token": token, "reason": "核实无误"})
    assert r.status_code == 403
    assert client.post("/grants/disbursements", data={"csrf_token": token}).status_code == 422
    db_session.expire_all()
    assert db_session.get(Grant, a.id).status == "pending"  # type: ignore[union-attr]
    client.post("/logout", data={"csrf_token": token})

    # the department's own officer, written with a registry alias, reviews them
    login_as("officer", department="省人力资源和社会保障厅")
    page = BeautifulSoup(client.get("/grants").text, "lxml")
    assert {tr["data-id"] for tr in page.select("#queue tbody tr[data-id]")} == {
        str(a.id),
        str(b.id),
    }
    assert page.find(id="scope") is not None
    token = csrf_from(client, "/grants")
    r = client.post(
        "/grants/review",
        data={"csrf_token": token, "grant_id": str(a.id), "decision": "approve", "ack_risk": "on"},
    )
    assert r.status_code == 200
    client.post("/logout", data={"csrf_token": token})

    # admin reviews every department
    login_as("admin")
    token = csrf_from(client, "/grants")
    r = client.post(
        "/grants/review",
        data={"csrf_token": token, "grant_id": str(b.id), "decision": "reject", "reason": "核查"},
    )
    assert r.status_code == 200
    db_session.expire_all()
    assert [db_session.get(Grant, g.id).status for g in (a, b)] == ["approved", "rejected"]  # type: ignore[union-attr]
