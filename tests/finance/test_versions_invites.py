"""Product versions (editing publishes a new version; applications keep theirs) and a lender's
invitation of an open need that never reveals who posted it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import User
from huiqi.finance import service as svc
from huiqi.finance.models import Application, Product
from huiqi.finance.schemas import NeedIn
from huiqi.notify.models import Notification

from .conftest import DAY, ENT_A, GANSU_BANK
from .test_web import form_post, login

WAN = 1_000_000


def _need(session: Session, user: User, **over: Any) -> Any:
    data: dict[str, Any] = {
        "amount_fen": 300 * WAN,
        "term_months": 12,
        "purpose": "购置数控激光切割设备,补充流动资金",
        "collateral": ["none"],
        "first_loan": True,
    }
    data.update(over)
    return svc.post_need(session, user, NeedIn.model_validate(data), on=DAY)


def test_edit_publishes_a_new_version_and_old_applications_keep_theirs(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    v1 = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    assert (v1.family_id, v1.version) == (v1.id, 1)
    need = _need(s, users["ent_a"])
    (out,) = svc.apply(
        s, users["ent_a"], need.id, [v1.id], ["revenue", "tax_credit_rating"], on=DAY
    )
    assert out.application is not None
    old_rate = out.application.rate_bp

    v2 = svc.revise_product(
        s, users["gsbank"], v1.id, product_data(spread_bp=25, amount_max_fen=2000 * WAN), on=DAY
    )
    assert (v2.family_id, v2.version, v2.status) == (v1.id, 2, "published")
    assert v1.status == "superseded"
    app = s.get(Application, out.application.id)
    assert app is not None and app.product_id == v1.id and app.rate_bp == old_rate
    assert app.product.spread_bp == 45  # the terms it was made against
    # matching and the product list use the latest version only
    ranked = [m.product.id for m in svc.match_need(s, need, on=DAY).matches]
    assert v2.id in ranked and v1.id not in ranked
    assert v1.id not in {p.id for p in svc.visible_products(s, users["gsbank"], on=DAY)}
    # the same need cannot apply to the product again through its new version
    (again,) = svc.apply(
        s, users["ent_a"], need.id, [v2.id], ["revenue", "tax_credit_rating"], on=DAY
    )
    assert again.outcome == "existing" and again.application is not None
    assert again.application.id == app.id
    # a new need is priced on the new version
    other = _need(s, users["ent_a"], amount_fen=1500 * WAN)
    (fresh,) = svc.apply(
        s, users["ent_a"], other.id, [v2.id], ["revenue", "tax_credit_rating"], on=DAY
    )
    assert fresh.outcome == "created" and fresh.application is not None
    assert fresh.application.rate_bp == old_rate - 20  # type: ignore[operator]
    assert [p.version for p in svc.versions_of(s, v1)] == [1, 2]


def test_edit_and_withdraw_are_the_owners_and_only_on_the_latest(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    v1 = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    with pytest.raises(svc.NotFound):
        svc.revise_product(s, users["lzbank"], v1.id, product_data(), on=DAY)
    with pytest.raises(svc.NotFound):
        svc.revise_product(s, users["ent_a"], v1.id, product_data(), on=DAY)
    with pytest.raises(svc.InvalidInput):  # a bad rule is refused; nothing changes
        svc.revise_product(
            s, users["gsbank"], v1.id, product_data(conditions_yaml="- {field: nope}"), on=DAY
        )
    assert v1.status == "published"
    assert s.scalars(select(Product).where(Product.family_id == v1.id)).all() == [v1]
    v2 = svc.revise_product(
        s, users["gsbank"], v1.id, product_data(name="陇原科技信用贷(2026版)"), on=DAY
    )
    with pytest.raises(svc.TransitionError, match="第 2 版"):
        svc.revise_product(s, users["gsbank"], v1.id, product_data(), on=DAY)
    with pytest.raises(svc.TransitionError):
        svc.withdraw_product(s, users["gsbank"], v1.id)
    assert svc.withdraw_product(s, users["gsbank"], v2.id).status == "withdrawn"
    assert svc.match_need(s, _need(s, users["ent_a"]), on=DAY).matches == []
    # a withdrawn product edited again is back on offer as version 3
    v3 = svc.revise_product(s, users["gsbank"], v2.id, product_data(), on=DAY)
    assert (v3.version, v3.status, v2.status) == (3, "published", "superseded")


def test_invitation_reaches_the_enterprise_once_and_tells_the_bank_nothing_more(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    product = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    lz = svc.publish_product(s, users["lzbank"], product_data(name="兰银科创贷"), on=DAY)
    need = _need(s, users["ent_a"])
    assert svc.invite_need(s, users["gsbank"], need.id, product.id, on=DAY) is True
    (note,) = s.scalars(
        select(Notification).where(Notification.dedupe_key.like("finance:invite:%"))
    )
    assert note.credit_code == ENT_A and note.recipient_user_id is None
    assert note.subject == f"{GANSU_BANK}的陇原科技信用贷可能适合您的融资需求"
    assert note.link == f"/finance/needs/{need.id}?product={product.id}#product-{product.id}"
    assert svc.invite_need(s, users["gsbank"], need.id, product.id, on=DAY) is False
    fits = svc.needs_for_lender(s, GANSU_BANK, on=DAY)
    assert svc.invited_needs(s, GANSU_BANK, fits) == {(need.id, product.id)}
    # the bank's own users get nothing, nor does anyone else
    assert s.scalars(select(Notification).where(Notification.credit_code != ENT_A)).all() == []
    # another bank's product, a closed or unknown need, a need that does not fit: all "not found"
    with pytest.raises(svc.NotFound):
        svc.invite_need(s, users["gsbank"], need.id, lz.id, on=DAY)
    with pytest.raises(svc.NotFound):
        svc.invite_need(s, users["gsbank"], 10**9, product.id, on=DAY)
    too_big = _need(s, users["ent_b"], amount_fen=5000 * WAN)
    with pytest.raises(svc.NotFound):
        svc.invite_need(s, users["gsbank"], too_big.id, product.id, on=DAY)
    with pytest.raises(svc.Forbidden):
        svc.invite_need(s, users["ent_a"], need.id, product.id, on=DAY)
    need.status = "closed"
    with pytest.raises(svc.NotFound):
        svc.invite_need(s, users["gsbank"], need.id, product.id, on=DAY)
    # after an edit the invitation still counts: no second message for the new version
    need.status = "open"
    v2 = svc.revise_product(s, users["gsbank"], product.id, product_data(spread_bp=30), on=DAY)
    assert svc.invite_need(s, users["gsbank"], need.id, v2.id, on=DAY) is False


def test_pages_edit_a_product_and_invite_without_naming_the_enterprise(
    client: TestClient,
    users: dict[str, User],
    db_session: Session,
    product_data: Callable[..., Any],
) -> None:
    s = db_session
    product = svc.publish_product(s, users["gsbank"], product_data(valid_from=DAY))
    need = svc.post_need(
        s,
        users["ent_a"],
        NeedIn.model_validate(
            {
                "amount_fen": 300 * WAN,
                "term_months": 12,
                "purpose": "购置设备",
                "collateral": ["none"],
            }
        ),
    )
    s.commit()

    login(client, "lzbank")
    assert client.get(f"/finance/products/{product.id}/edit").status_code == 404
    assert (
        form_post(
            client,
            f"/finance/lender/needs/{need.id}/invite",
            {"product_id": product.id},
            "/finance",
        ).status_code
        == 404
    )

    login(client, "gsbank")
    form = BeautifulSoup(client.get(f"/finance/products/{product.id}/edit").text, "lxml")
    assert form.select_one("input[name=name]")["value"] == "陇原科技信用贷"  # type: ignore[index]
    assert form.select_one("input[name=spread_pct]")["value"] == "0.45"  # type: ignore[index]
    assert form.select_one("input[name=amount_max_wan]")["value"] == "1000"  # type: ignore[index]
    values = {
        i["name"]: i.get("value", "")
        for i in form.select("form.stack input[name]")
        if i.get("type") not in ("checkbox", "hidden")
    }
    values.update(
        {
            "kind": "credit_loan",
            "provider_kind": "bank",
            "rate_base": "lpr_1y",
            "spread_pct": "0.30",
            "collateral": "none",
            "size_classes": ["medium", "small", "micro"],
            "required_fields": ["revenue", "tax_credit_rating"],
            "conditions_yaml": "- {field: tax_credit_rating, op: in, value: [A, B]}",
        }
    )
    r = form_post(
        client,
        f"/finance/products/{product.id}/edit",
        values,
        f"/finance/products/{product.id}/edit",
    )
    assert r.status_code == 303, r.text
    new_url = r.headers["location"]
    page = BeautifulSoup(client.get(new_url).text, "lxml")
    assert page.select_one("[data-version]")["data-version"] == "2"  # type: ignore[index]
    old = BeautifulSoup(client.get(f"/finance/products/{product.id}").text, "lxml")
    assert old.select_one("[data-status]")["data-status"] == "superseded"  # type: ignore[index]
    assert old.select_one("a[data-edit]") is None
    bad = {**values, "conditions_yaml": "- {field: nope, op: '=', value: 1}"}
    r = form_post(client, f"{new_url}/edit", bad, f"{new_url}/edit")
    assert r.status_code == 422 and "nope" in r.text

    new_id = int(new_url.rsplit("/", 1)[1])
    r = form_post(
        client,
        f"/finance/lender/needs/{need.id}/invite",
        {"product_id": new_id},
        "/finance/lender/needs",
    )
    assert r.status_code == 303
    listing = client.get(r.headers["location"])
    soup = BeautifulSoup(listing.text, "lxml")
    assert soup.select_one("#invite-sent") is not None
    row = soup.select_one(f"tr[data-need='{need.id}']")
    assert row is not None and row.select_one("[data-invited]") is not None
    assert ENT_A not in listing.text and "兰州精工" not in listing.text
    r = client.post(f"/api/v1/finance/needs/{need.id}/invite", json={"product_id": new_id})
    assert r.json() == {"need_id": need.id, "product_id": new_id, "sent": False}
    assert (
        client.post(f"/api/v1/finance/needs/{need.id}/invite", json={"product_id": "x"}).status_code
        == 422
    )

    login(client, "ent_a")
    inbox = BeautifulSoup(client.get("/notify/inbox").text, "lxml")
    link = inbox.find("a", string=f"{GANSU_BANK}的陇原科技信用贷可能适合您的融资需求")
    assert link is not None
    detail = BeautifulSoup(client.get(str(link["href"])).text, "lxml")
    target = str(detail.select_one("a[data-link]")["href"])  # type: ignore[index]
    need_page = BeautifulSoup(client.get(target).text, "lxml")
    invited = need_page.select_one("li[data-invited]")
    assert invited is not None and invited["data-match"] == str(new_id)
    assert invited.select_one(f"#pick-{new_id}").has_attr("checked")  # type: ignore[union-attr]
    login(client, "ent_b")
    assert client.get(target).status_code == 404
