"""The finance API and pages as each party uses them, with access checks between banks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.accounts.models import User
from huiqi.finance.demo import load_demo

from ..conftest import csrf_from
from .conftest import GANSU_BANK, PASSWORD

WAN = 1_000_000


def login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def form_post(client: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    token = csrf_from(client, page)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def credit_loan(**over: Any) -> dict[str, Any]:
    body = {
        "name": "陇原科技信用贷",
        "kind": "credit_loan",
        "amount_min_fen": 50 * WAN,
        "amount_max_fen": 1000 * WAN,
        "term_min_months": 6,
        "term_max_months": 36,
        "rate_base": "lpr_1y",
        "spread_bp": 45,
        "collateral": ["none"],
        "region_prefixes": ["62"],
        "required_fields": ["revenue", "tax_credit_rating"],
        "conditions_yaml": "- {field: tax_credit_rating, op: in, value: [A, B]}\n",
        "valid_from": "2025-01-01",
    }
    body.update(over)
    return body


def test_api_whole_path_with_access_checks_and_revocation(
    client: TestClient, users: dict[str, User], db_session: Session
) -> None:
    login(client, "gsbank")
    r = client.post("/api/v1/finance/products", json=credit_loan())
    assert r.status_code == 201, r.text
    gs_product = r.json()
    assert (
        gs_product["institution"] == GANSU_BANK
        and gs_product["rate_bp"] == gs_product["lpr_bp"] + 45
    )
    r = client.post(
        "/api/v1/finance/products",
        json=credit_loan(conditions_yaml="- {field: nope, op: '=', value: 1}"),
    )
    assert r.status_code == 422 and "nope" in r.json()["detail"]

    login(client, "lzbank")
    r = client.post(
        "/api/v1/finance/products",
        json=credit_loan(name="兰银科创贷", spread_bp=70, required_fields=["revenue"]),
    )
    lz_product = r.json()

    login(client, "ent_a")
    assert client.post("/api/v1/finance/products", json=credit_loan()).status_code == 403
    r = client.post(
        "/api/v1/finance/needs",
        json={
            "amount_fen": 300 * WAN,
            "term_months": 12,
            "purpose": "购置设备",
            "collateral": ["none"],
            "first_loan": True,
        },
    )
    assert r.status_code == 201, r.text
    need = r.json()
    matches = client.get(f"/api/v1/finance/needs/{need['id']}/matches").json()
    ranked = [m["product_name"] for m in matches["matches"]]
    assert ranked == ["陇原科技信用贷", "兰银科创贷"]  # both eligible; cheaper first
    assert matches["matches"][0]["reasons"] and matches["matches"][0]["eligibility"] == "eligible"
    body = {
        "product_ids": [gs_product["id"], lz_product["id"]],
        "fields": ["revenue", "tax_credit_rating", "employees"],
    }
    first = client.post(f"/api/v1/finance/needs/{need['id']}/applications", json=body).json()
    assert [o["outcome"] for o in first] == ["created", "created"]
    again = client.post(f"/api/v1/finance/needs/{need['id']}/applications", json=body).json()
    assert [o["outcome"] for o in again] == ["existing", "existing"]
    gs_app, lz_app = (o["application_id"] for o in first)
    assert len(client.get("/api/v1/finance/applications").json()) == 2

    login(client, "gsbank")
    mine = client.get("/api/v1/finance/applications").json()
    assert [a["id"] for a in mine] == [gs_app]
    assert all(a["shared"] is None for a in mine)
    assert client.get(f"/api/v1/finance/applications/{lz_app}").status_code == 404
    r = client.post(f"/api/v1/finance/applications/{lz_app}/transitions", json={"action": "accept"})
    assert r.status_code == 404
    detail = client.get(f"/api/v1/finance/applications/{gs_app}").json()
    shared = {f["field"]: f for f in detail["shared"]}
    assert shared["revenue"]["value"] == 48_000_000_00 and shared["rd_expense"]["value"] is None
    assert not shared["rd_expense"]["shared"]
    r = client.post(
        f"/api/v1/finance/applications/{gs_app}/transitions", json={"action": "disburse"}
    )
    assert r.status_code == 409 and "allowed: accept, decline" in r.json()["detail"]
    assert (
        client.post(
            f"/api/v1/finance/applications/{gs_app}/transitions", json={"action": "accept"}
        ).status_code
        == 200
    )

    login(client, "ent_a")
    r = client.post(
        f"/api/v1/finance/applications/{gs_app}/consent/revoke", json={"fields": ["revenue"]}
    )
    assert r.status_code == 200 and "revenue" not in r.json()["consented_fields"]
    assert (
        client.post(
            f"/api/v1/finance/applications/{gs_app}/transitions", json={"action": "approve"}
        ).status_code
        == 403
    )

    login(client, "gsbank")
    shared = {
        f["field"]: f for f in client.get(f"/api/v1/finance/applications/{gs_app}").json()["shared"]
    }
    assert shared["revenue"]["value"] is None and shared["tax_credit_rating"]["value"] == "A"
    for step in (
        {"action": "approve", "amount_fen": 280 * WAN, "rate_bp": 340},
        {"action": "disburse"},
    ):
        r = client.post(f"/api/v1/finance/applications/{gs_app}/transitions", json=step)
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "disbursed" and r.json()["disbursed_amount_fen"] == 280 * WAN

    login(client, "lzbank")
    r = client.post(
        f"/api/v1/finance/applications/{lz_app}/transitions",
        json={"action": "decline", "reason": "近三年无纳税记录"},
    )
    assert r.json()["status"] == "declined" and r.json()["decline_reason"] == "近三年无纳税记录"

    login(client, "officer1")
    st = client.get("/api/v1/finance/stats").json()
    assert st["approval_rate"] == "0.5000" and st["first_loan_share"] == "1.0000"
    assert st["average_rate_bp"] == "340.00" and st["disbursed_amount_fen"] == 280 * WAN
    lanzhou = next(c for c in st["by_region"] if c["key"] == "620100")
    assert lanzhou["needs"] == 1 and lanzhou["disbursed"] == 1


def test_pages_from_need_to_apply(
    client: TestClient, users: dict[str, User], db_session: Session
) -> None:
    load_demo(db_session)
    db_session.commit()
    login(client, "ent_a")
    r = form_post(
        client,
        "/finance/needs/new",
        {
            "amount_wan": "200",
            "term_months": "12",
            "purpose": "扩大产能",
            "collateral": ["ip"],
            "first_loan": "yes",
        },
        "/finance/needs/new",
    )
    assert r.status_code == 303, r.text
    need_url = r.headers["location"]
    page = BeautifulSoup(client.get(need_url).text, "lxml")
    ranked = [li["data-match"] for li in page.select("li[data-match]")]
    results = [li["data-eligibility"] for li in page.select("li[data-match]")]
    assert results == sorted(results, key=["eligible", "unknown", "ineligible"].index)
    assert "高于甘工信发〔2020〕351号(十八)" in page.text  # the 2% guarantee is flagged
    picks = [i["value"] for i in page.select("input[name=product_id]")][:2]
    assert not page.select("input[name=field][checked]")  # nothing is shared unless ticked
    assert page.select("[data-requires]")  # each product says which data it needs
    ticked = ["revenue", "employees", "rd_expense", "tax_credit_rating", "taxable_income"]
    assert len(ranked) >= 2
    r = form_post(client, f"{need_url}/apply", {"product_id": picks, "field": ticked}, need_url)
    assert r.status_code == 200
    out = BeautifulSoup(r.text, "lxml").select("#apply-outcomes li[data-outcome]")
    assert [li["data-outcome"] for li in out] == ["created", "created"]
    r = form_post(client, f"{need_url}/apply", {"product_id": picks, "field": ticked}, need_url)
    out = BeautifulSoup(r.text, "lxml").select("#apply-outcomes li[data-outcome]")
    assert [li["data-outcome"] for li in out] == ["existing", "existing"]
    r = form_post(
        client,
        "/finance/needs/new",
        {"amount_wan": "abc", "term_months": "12", "purpose": "x"},
        "/finance/needs/new",
    )
    assert r.status_code == 422 and "融资金额" in r.text


def test_product_form_shows_rule_errors_with_lines(
    client: TestClient, users: dict[str, User]
) -> None:
    login(client, "gsbank")
    data = {
        "name": "测试贷",
        "kind": "credit_loan",
        "provider_kind": "bank",
        "amount_min_wan": "10",
        "amount_max_wan": "100",
        "term_min_months": "3",
        "term_max_months": "12",
        "rate_base": "lpr_1y",
        "spread_pct": "0.5",
        "collateral": ["none"],
        "size_classes": ["small", "micro"],
        "region_prefixes": "62",
        "conditions_yaml": "- {field: tax_credit_rating, op: in, value: [A]}\n- {field: employes, op: '>=', value: 5}",
    }
    r = form_post(client, "/finance/products/new", data, "/finance/products/new")
    assert r.status_code == 422 and "准入条件第 2 行" in r.text and "employes" in r.text
    r = form_post(
        client,
        "/finance/products/new",
        {**data, "conditions_yaml": "", "spread_pct": "0.505"},
        "/finance/products/new",
    )
    assert r.status_code == 422 and "0.01%" in r.text
    r = form_post(
        client, "/finance/products/new", {**data, "conditions_yaml": ""}, "/finance/products/new"
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "测试贷" in page and "size_class" in page and "LPR" in page


def test_each_role_opens_its_pages(
    client: TestClient, users: dict[str, User], db_session: Session, login_as: Callable[..., Any]
) -> None:
    load_demo(db_session)
    db_session.commit()
    for name, paths in {
        "gsbank": [
            "/finance",
            "/finance/products",
            "/finance/lender/needs",
            "/finance/products/new",
        ],
        "ent_a": [
            "/finance",
            "/finance/products",
            "/finance/needs/new",
            "/finance/needs/new?rule=gs351-22-graduate-social-insurance",
        ],
        "officer1": ["/finance", "/finance/stats", "/finance/products"],
    }.items():
        login(client, name)
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (name, path, r.text[:300])
    login(client, "ent_a")
    assert client.get("/finance/stats").status_code == 403
    assert client.get("/finance/products/new").status_code == 403
    assert client.get("/api/v1/finance/stats").status_code == 403
    client.cookies.clear()
    assert client.get("/api/v1/finance/products").status_code == 401


def test_need_started_from_a_pushed_policy(client: TestClient, users: dict[str, User]) -> None:
    login(client, "ent_a")
    url = "/finance/needs/new?rule=gs351-22-graduate-social-insurance"
    page = BeautifulSoup(client.get(url).text, "lxml")
    assert "小微企业招用高校毕业生社会保险补贴" in page.select_one("[data-from-rule]").text
    assert page.select_one("#purpose").text.startswith("申请《小微企业招用高校毕业生")
    hidden = page.select_one("input[name=source_rule_id]")["value"]
    assert hidden == "gs351-22-graduate-social-insurance"
    r = form_post(
        client,
        "/finance/needs/new",
        {
            "amount_wan": "30",
            "term_months": "12",
            "purpose": page.select_one("#purpose").text,
            "source_rule_id": hidden,
        },
        url,
    )
    assert r.status_code == 303
    need = client.get("/api/v1/finance/needs").json()[0]
    assert need["source_rule_id"] == "gs351-22-graduate-social-insurance"
    assert need["amount_fen"] == 30 * WAN and need["collateral"] == ["none"]


def test_illegal_step_from_the_page_is_explained(
    client: TestClient, users: dict[str, User], db_session: Session
) -> None:
    from huiqi.finance import service as svc
    from huiqi.finance.schemas import NeedIn, ProductIn

    product = svc.publish_product(
        db_session, users["gsbank"], ProductIn.model_validate(credit_loan())
    )
    need = svc.post_need(
        db_session,
        users["ent_a"],
        NeedIn.model_validate({"amount_fen": 100 * WAN, "term_months": 12, "purpose": "流动资金"}),
    )
    (out,) = svc.apply(
        db_session, users["ent_a"], need.id, [product.id], ["revenue", "tax_credit_rating"]
    )
    assert out.application is not None
    app_id = out.application.id
    db_session.commit()
    login(client, "gsbank")
    url = f"/finance/applications/{app_id}"
    r = form_post(client, f"{url}/action", {"action": "disburse"}, url)
    assert r.status_code == 409
    error = BeautifulSoup(r.text, "lxml").select_one("#action-error").text
    assert "不能「放款」" in error and "受理、拒绝" in error
    r = form_post(client, f"{url}/action", {"action": "approve", "amount_wan": "abc"}, url)
    assert r.status_code == 422 and "金额" in r.text
    assert client.get("/api/v1/finance/applications").json()[0]["status"] == "submitted"
    login(client, "lzbank")
    assert client.get(url).status_code == 404
    assert form_post(client, f"{url}/action", {"action": "accept"}, "/finance").status_code == 404


def test_consent_per_lender_partial_failure_and_deliberate_revocation(
    client: TestClient, users: dict[str, User], db_session: Session
) -> None:
    from sqlalchemy import select

    from huiqi.finance.models import Application, Consent

    load_demo(db_session)
    db_session.commit()
    login(client, "ent_a")
    r = form_post(
        client,
        "/finance/needs/new",
        {"amount_wan": "200", "term_months": "12", "purpose": "扩大产能", "collateral": ["ip"]},
        "/finance/needs/new",
    )
    need_url = r.headers["location"]
    page = BeautifulSoup(client.get(need_url).text, "lxml")
    # each product shows the fields it needs, as its own consent boxes
    boxes = {
        fs["data-consent"]: [i["value"] for i in fs.select("input")]
        for fs in page.select("fieldset[data-consent]")
    }
    needy = [pid for pid, names in boxes.items() if names]
    assert needy, "some demo product needs data"
    first = needy[0]
    other = next(pid for pid in boxes if pid != first)
    # consent to the first product's fields only for the first product
    data = {
        "consent": "per-product",
        "product_id": [first, other],
        f"field-{first}": boxes[first],
    }
    r = form_post(client, f"{need_url}/apply", data, need_url)
    soup = BeautifulSoup(r.text, "lxml")
    outcome = {
        li["data-product"]: li["data-outcome"]
        for li in soup.select("#apply-outcomes li[data-outcome]")
    }
    assert outcome[first] == "created"
    box = soup.select_one("#apply-outcomes")
    if outcome[other] == "refused":  # the other product needed data that was not consented to
        assert box["data-level"] == "warn" and box["role"] == "alert"
    app = db_session.scalar(select(Application).where(Application.product_id == int(first)))
    assert app is not None
    shared = set(db_session.scalars(select(Consent.field).where(Consent.application_id == app.id)))
    assert shared == set(boxes[first])
    others = db_session.scalar(select(Application).where(Application.product_id == int(other)))
    if others is not None:  # the other lender received nothing it was not given
        assert not set(
            db_session.scalars(select(Consent.field).where(Consent.application_id == others.id))
        ) - set(boxes[other])
    # revoking with nothing ticked revokes nothing and asks which
    token = csrf_from(client, f"/finance/applications/{app.id}")
    r = client.post(f"/finance/applications/{app.id}/revoke", data={"csrf_token": token})
    assert r.status_code == 200
    assert BeautifulSoup(r.text, "lxml").select_one("#revoke-error") is not None
    db_session.expire_all()
    active = db_session.scalars(
        select(Consent).where(Consent.application_id == app.id, Consent.revoked_at.is_(None))
    ).all()
    assert len(active) == len(boxes[first])
    r = client.post(
        f"/finance/applications/{app.id}/revoke", data={"csrf_token": token, "all": "1"}
    )
    db_session.expire_all()
    assert not db_session.scalars(
        select(Consent).where(Consent.application_id == app.id, Consent.revoked_at.is_(None))
    ).all()
