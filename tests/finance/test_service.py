"""Financing matchmaking service: products, needs, ranked matches, one-step application, the
state machine with working-day deadlines, field-level consent and reminders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import User
from huiqi.finance import eligibility as elig
from huiqi.finance import service as svc
from huiqi.finance.models import Application, ApplicationEvent, Consent, Disclosure
from huiqi.finance.schemas import NeedIn
from huiqi.notify.models import Notification
from huiqi.rules.library import load_base

from .conftest import DAY, ENT_A, ENT_B, GANSU_BANK, OTHER_BANK

WAN = 1_000_000


def need_for(session: Session, user: User, **over: Any) -> Any:
    data = {
        "amount_fen": 300 * WAN,
        "term_months": 12,
        "purpose": "购置数控激光切割设备,补充流动资金",
        "collateral": ["ip", "receivables"],
        "first_loan": True,
    }
    data.update(over)
    return svc.post_need(session, user, NeedIn.model_validate(data), on=DAY)


@pytest.fixture
def market(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> dict[str, Any]:
    """Three lenders' products: a cheap credit loan, an IP-pledge loan and a guarantee."""
    s = db_session
    credit = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    ip = svc.publish_product(
        s,
        users["lzbank"],
        product_data(
            name="知识产权质押贷",
            kind="ip_pledge",
            spread_bp=85,
            collateral=["ip"],
            required_fields=["revenue"],
            conditions_yaml="all:\n  - {cert: high_tech}\n",
        ),
        on=DAY,
    )
    guarantee = svc.publish_product(
        s,
        users["guarantor"],
        product_data(
            name="惠企担保",
            kind="guarantee",
            provider_kind="guarantee",
            rate_base=None,
            spread_bp=None,
            guarantee_fee_bp=100,
            collateral=["none"],
            required_fields=[],
            conditions_yaml="",
        ),
        on=DAY,
    )
    retail_only = svc.publish_product(
        s,
        users["gsbank"],
        product_data(name="商贸流水贷", industry_prefixes=["F"], spread_bp=30, required_fields=[]),
        on=DAY,
    )
    return {"credit": credit, "ip": ip, "guarantee": guarantee, "retail": retail_only}


def test_lpr_is_a_dated_parameter_with_sources() -> None:
    params = elig.default_params()
    assert params.bp_on("lpr_1y", date(2024, 7, 21)) == 345
    assert params.bp_on("lpr_1y", date(2024, 7, 22)) == 335
    assert params.bp_on("lpr_1y", date(2024, 10, 21)) == 310
    assert params.bp_on("lpr_1y", date(2025, 5, 19)) == 310
    assert params.bp_on("lpr_1y", date(2025, 5, 20)) == 300
    assert params.bp_on("lpr_5y", date(2025, 5, 20)) == 350
    assert params.bp_on("lpr_1y", date(2019, 8, 19)) is None  # before the LPR reform
    lpr = params.param("lpr_1y")
    assert lpr is not None
    assert all(src.doc_number for *_rest, src in lpr.periods)
    assert params.fee_cap_bp(DAY) == 150  # 甘工信发〔2020〕351号 (十八)


def test_publish_refuses_bad_conditions_with_the_line(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    bad = product_data(
        conditions_yaml="- {field: tax_credit_rating, op: in, value: [A]}\n- {field: revenu, op: '>=', value: 100万元}\n"
    )
    with pytest.raises(svc.InvalidInput) as err:
        svc.publish_product(db_session, users["gsbank"], bad, on=DAY)
    assert any("第 2 行" in p and "revenu" in p for p in err.value.problems)
    with pytest.raises(svc.InvalidInput):
        svc.publish_product(
            db_session, users["gsbank"], product_data(region_prefixes=["6"]), on=DAY
        )
    with pytest.raises(svc.Forbidden):
        svc.publish_product(db_session, users["ent_a"], product_data(), on=DAY)
    with pytest.raises(svc.InvalidInput, match="unknown required fields"):
        svc.publish_product(
            db_session, users["gsbank"], product_data(required_fields=["password"]), on=DAY
        )


def test_guarantee_fee_above_ceiling_is_flagged(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    dear = svc.publish_product(
        db_session,
        users["guarantor"],
        product_data(
            name="高费率担保",
            kind="guarantee",
            provider_kind="guarantee",
            rate_base=None,
            spread_bp=None,
            guarantee_fee_bp=200,
            conditions_yaml="",
            required_fields=[],
        ),
        on=DAY,
    )
    flag = svc.fee_flag(dear, DAY)
    assert flag is not None and "(十八)" in flag.zh and "2.00%" in flag.zh
    fair = svc.publish_product(
        db_session,
        users["guarantor"],
        product_data(
            name="普惠担保",
            kind="guarantee",
            provider_kind="guarantee",
            rate_base=None,
            spread_bp=None,
            guarantee_fee_bp=150,
            conditions_yaml="",
            required_fields=[],
        ),
        on=DAY,
    )
    assert svc.fee_flag(fair, DAY) is None  # exactly 1.5% is allowed


def test_matches_are_ranked_with_reasons(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_a"])
    assert (need.region_code, need.industry_code, need.size_class) == ("620102", "3424", "small")
    result = svc.match_need(db_session, need, on=DAY)
    order = [m.product.name for m in result.matches]
    # eligible first, cheapest first among them; the retail-only loan is ineligible (industry C)
    assert order == ["惠企担保", "陇原科技信用贷", "知识产权质押贷", "商贸流水贷"]
    credit = result.by_product()[market["credit"].id]
    assert credit.eligibility == "eligible"
    assert credit.rate_bp == 300 + 45 and credit.lpr_bp == 300
    assert any("纳税信用等级 A级" in r.zh for r in credit.reasons())
    assert any("年利率 3.45%" in r.zh for r in credit.fit)
    ip = result.by_product()[market["ip"].id]
    assert ip.eligibility == "eligible"
    assert any("高新技术企业" in r.zh for r in ip.reasons())
    retail = result.by_product()[market["retail"].id]
    assert retail.eligibility == "ineligible" and not retail.applicable
    assert any("3424" in b.zh for b in retail.blockers)


def test_unknown_data_ranks_below_eligible_and_explains_what_is_missing(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_b"], amount_fen=60 * WAN, collateral=["none"])
    result = svc.match_need(db_session, need, on=DAY)
    credit = result.by_product()[market["credit"].id]
    assert credit.eligibility == "unknown"
    assert "tax_credit_rating" in credit.explanation.missing
    assert credit.applicable  # the lender decides with the shared data
    names = [m.product.name for m in result.matches]
    assert names.index("惠企担保") < names.index("陇原科技信用贷")


def test_amount_and_term_outside_the_range_are_refused_with_reason(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_a"], amount_fen=2000 * WAN, term_months=48)
    outcomes = svc.apply(
        db_session,
        users["ent_a"],
        need.id,
        [market["credit"].id],
        ["revenue", "tax_credit_rating"],
        on=DAY,
    )
    assert outcomes[0].outcome == "refused"
    text = " ".join(r.zh for r in outcomes[0].reasons)
    assert "超过额度上限" in text and "2,000 万元" in text and "长于最长期限" in text
    assert db_session.scalar(select(func.count()).select_from(Application)) == 0


def test_unevaluable_product_is_not_shown(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    no_lpr = elig.load_params(
        "parameters:\n"
        "  - id: lpr_1y\n    title: {zh: 一年期LPR, en: 1y LPR}\n    unit: ratio\n    values:\n"
        "      - {from: 2019-08-20, to: 2024-12-31, value: 4.25%, source: {doc_number: x, article: y}}\n"
        "  - id: lpr_5y\n    title: {zh: 五年期LPR, en: 5y LPR}\n    unit: ratio\n    values:\n"
        "      - {from: 2019-08-20, value: 4.85%, source: {doc_number: x, article: y}}\n"
        "  - id: finance_accept_working_days\n    title: {zh: 受理, en: accept}\n    unit: count\n"
        "    values: [{from: 2020-01-01, value: 2, source: {doc_number: x, article: y}}]\n",
        "test",
        load_base(),
    )
    need = need_for(db_session, users["ent_a"])
    result = svc.match_need(db_session, need, on=DAY, params=no_lpr)
    shown = {m.product.id for m in result.matches}
    hidden = {u.product.id for u in result.unevaluable}
    assert market["credit"].id in hidden and market["credit"].id not in shown
    assert market["guarantee"].id in shown  # a guarantee has no LPR to look up
    outcome = svc.apply(
        db_session,
        users["ent_a"],
        need.id,
        [market["credit"].id],
        ["revenue", "tax_credit_rating"],
        on=DAY,
        params=no_lpr,
    )
    assert outcome[0].outcome == "refused" and "无法评估" in outcome[0].reasons[0].zh


def test_one_step_application_to_two_lenders_is_idempotent(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_a"])
    ids = [market["credit"].id, market["ip"].id]
    first = svc.apply(
        db_session, users["ent_a"], need.id, ids, ["revenue", "tax_credit_rating"], on=DAY
    )
    assert [o.outcome for o in first] == ["created", "created"]
    again = svc.apply(
        db_session, users["ent_a"], need.id, ids, ["revenue", "tax_credit_rating"], on=DAY
    )
    assert [o.outcome for o in again] == ["existing", "existing"]
    assert {o.application.id for o in again if o.application} == {
        o.application.id for o in first if o.application
    }
    assert db_session.scalar(select(func.count()).select_from(Application)) == 2
    app = first[0].application
    assert app is not None
    assert (app.institution, app.rate_bp, app.lpr_bp, app.status) == (
        GANSU_BANK,
        345,
        300,
        "submitted",
    )
    # two working days after Monday 2025-09-29, with 10-01…10-08 the National Day holiday
    assert app.due_on == date(2025, 10, 9)
    notes = db_session.scalars(select(Notification).where(Notification.credit_code == ENT_A)).all()
    assert len(notes) == 2 and all(n.topic == "financing" for n in notes)


def test_required_fields_must_be_shared(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_a"])
    out = svc.apply(
        db_session,
        users["ent_a"],
        need.id,
        [market["credit"].id, market["guarantee"].id],
        ["revenue"],
        on=DAY,
    )
    assert [o.outcome for o in out] == ["refused", "created"]
    assert "纳税信用等级" in out[0].reasons[0].zh
    with pytest.raises(svc.InvalidInput):
        svc.apply(
            db_session, users["ent_a"], need.id, [market["guarantee"].id], ["password_hash"], on=DAY
        )


def test_other_enterprise_cannot_use_a_need(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    need = need_for(db_session, users["ent_a"])
    with pytest.raises(svc.NotFound):
        svc.apply(db_session, users["ent_b"], need.id, [market["guarantee"].id], [], on=DAY)


def test_whole_path_and_illegal_transitions(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    s = db_session
    need = need_for(s, users["ent_a"])
    out = svc.apply(
        s,
        users["ent_a"],
        need.id,
        [market["credit"].id, market["ip"].id],
        ["revenue", "tax_credit_rating", "employees"],
        on=DAY,
    )
    gs, lz = (o.application for o in out)
    assert gs is not None and lz is not None
    # the other bank cannot see or act on Gansu Bank's application
    with pytest.raises(svc.NotFound):
        svc.transition(s, users["lzbank"], gs.id, "accept", on=DAY)
    with pytest.raises(svc.Forbidden):
        svc.transition(s, users["ent_a"], gs.id, "accept", on=DAY)
    with pytest.raises(svc.TransitionError, match="cannot approve; allowed: accept, decline"):
        svc.transition(s, users["gsbank"], gs.id, "approve", on=DAY)
    svc.transition(s, users["gsbank"], gs.id, "accept", on=date(2025, 9, 30))
    assert gs.due_on == date(
        2025, 10, 21
    )  # ten working days, holiday skipped, 10-11 a make-up workday
    with pytest.raises(svc.InvalidInput):
        svc.transition(
            s, users["gsbank"], gs.id, "approve", amount_fen=400 * 1_000_000, on=date(2025, 10, 9)
        )
    svc.transition(
        s,
        users["gsbank"],
        gs.id,
        "approve",
        amount_fen=250 * WAN,
        rate_bp=340,
        on=date(2025, 10, 9),
    )
    svc.transition(s, users["gsbank"], gs.id, "disburse", on=date(2025, 10, 10))
    assert (gs.status, gs.disbursed_amount_fen, gs.disbursed_on) == (
        "disbursed",
        250 * WAN,
        date(2025, 10, 10),
    )
    with pytest.raises(svc.TransitionError, match="none"):
        svc.transition(s, users["gsbank"], gs.id, "decline", reason="x", on=date(2025, 10, 10))
    with pytest.raises(svc.InvalidInput, match="reason"):
        svc.transition(s, users["lzbank"], lz.id, "decline", reason="  ", on=DAY)
    svc.transition(
        s, users["lzbank"], lz.id, "decline", reason="知识产权评估价值不足", on=date(2025, 10, 9)
    )
    assert lz.decline_reason == "知识产权评估价值不足"
    steps = [(e.from_status, e.to_status) for e in svc.events_of(s, gs) if e.kind == "transition"]
    assert steps == [
        (None, "submitted"),
        ("submitted", "accepted"),
        ("accepted", "approved"),
        ("approved", "disbursed"),
    ]
    subjects = [n.subject for n in s.scalars(select(Notification).order_by(Notification.id))]
    assert any(x.startswith("贷款已发放") for x in subjects)
    assert any(x.startswith("融资申请未获批准") for x in subjects)
    # each message, to the enterprise or to a lender's users, is also written in English
    english = [
        (n.subject_en, n.body_en) for n in s.scalars(select(Notification).order_by(Notification.id))
    ]
    assert len(english) == len(subjects) and all(a and b for a, b in english)
    assert any((a or "").startswith("Loan paid out") for a, _ in english)
    assert any((a or "").startswith("New financing application #") for a, _ in english)


def test_consent_limits_what_the_lender_sees_and_revoking_stops_sharing(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    s = db_session
    need = need_for(s, users["ent_a"])
    (out,) = svc.apply(
        s, users["ent_a"], need.id, [market["credit"].id], ["revenue", "tax_credit_rating"], on=DAY
    )
    app = out.application
    assert app is not None
    view = {f.name: f for f in svc.shared_view(s, users["gsbank"], app)}
    assert view["revenue"].shared and view["revenue"].value == 48_000_000_00
    assert view["name"].value == "兰州精工机械有限公司"
    assert not view["employees"].shared and view["employees"].value is None
    assert not view["rd_expense"].shared and view["rd_expense"].value is None
    svc.revoke_consent(s, users["ent_a"], app.id, ["revenue"], on=DAY)
    view = {f.name: f for f in svc.shared_view(s, users["gsbank"], app)}
    assert not view["revenue"].shared and view["revenue"].value is None
    assert view["tax_credit_rating"].value == "A"
    disclosed = [d.fields for d in s.scalars(select(Disclosure).order_by(Disclosure.id))]
    assert disclosed == [["revenue", "tax_credit_rating"], ["tax_credit_rating"]]
    with pytest.raises(svc.InvalidInput):
        svc.revoke_consent(s, users["ent_a"], app.id, ["revenue"], on=DAY)
    with pytest.raises(svc.NotFound):
        svc.revoke_consent(s, users["ent_b"], app.id, [], on=DAY)
    svc.transition(s, users["ent_a"], app.id, "withdraw", on=DAY)
    assert svc.active_consents(s, app) == []
    assert (
        s.scalar(select(func.count()).select_from(Consent).where(Consent.revoked_at.is_(None))) == 0
    )


def test_remind_notifies_once_per_deadline(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    s = db_session
    need = need_for(s, users["ent_a"])
    (out,) = svc.apply(s, users["ent_a"], need.id, [market["guarantee"].id], [], on=DAY)
    app = out.application
    assert app is not None and app.due_on == date(2025, 10, 9)
    assert svc.remind(s, on=date(2025, 10, 9)) == []  # the deadline day itself is in time
    assert [a.id for a in svc.remind(s, on=date(2025, 10, 10))] == [app.id]
    assert svc.remind(s, on=date(2025, 10, 13)) == []
    reminders = s.scalars(select(ApplicationEvent).where(ApplicationEvent.kind == "reminder")).all()
    assert len(reminders) == 1
    overdue = s.scalars(
        select(Notification).where(
            Notification.subject.like("%超期%"), Notification.credit_code == ENT_A
        )
    ).all()
    assert len(overdue) == 1 and overdue[0].link == f"/finance/applications/{app.id}"
    lender = s.scalars(
        select(Notification).where(
            Notification.subject.like("%超期%"),
            Notification.recipient_user_id == users["guarantor"].id,
        )
    ).all()
    assert len(lender) == 1 and lender[0].link == f"/finance/applications/{app.id}"
    svc.transition(s, users["guarantor"], app.id, "accept", on=date(2025, 10, 13))
    assert svc.remind(s, on=date(2025, 10, 14)) == []


def test_lender_sees_fitting_needs_in_its_regions_without_identity(
    db_session: Session, users: dict[str, User], market: dict[str, Any]
) -> None:
    s = db_session
    need_a = need_for(s, users["ent_a"])
    need_b = need_for(s, users["ent_b"], amount_fen=60 * WAN)
    too_big = need_for(s, users["ent_a"], amount_fen=5000 * WAN)
    fits = svc.needs_for_lender(s, GANSU_BANK, on=DAY)
    by_need = {f.need.id: f for f in fits}
    assert too_big.id not in by_need
    assert {p.name for p, _ in by_need[need_a.id].products} == {"陇原科技信用贷"}
    assert {(p.name, r) for p, r in by_need[need_b.id].products} == {
        ("陇原科技信用贷", "unknown"),
        ("商贸流水贷", "unknown"),
    }
    assert svc.needs_for_lender(s, OTHER_BANK, on=DAY)[0].need.id in {need_a.id, need_b.id}
    assert ENT_B != ENT_A
