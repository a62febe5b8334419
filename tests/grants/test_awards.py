"""Awards of calls for applications enter the grant ledger: approved by the awarding officer,
paid through the same four-eyes disbursement, told in words that fit, clawed back on the ledger."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from huiqi.core.codes import make_credit_code
from huiqi.grants import service as grants
from huiqi.grants.models import GrantStatus
from huiqi.grants.schemas import BankAccountInput, GrantError, GrantFourEyes

CODE = make_credit_code("9", "1", "620102", "MA7AWD01")
OTHER = make_credit_code("9", "1", "620102", "MA7AWD02")
DEPT = "甘肃省工业和信息化厅"


def award(session: Session, code: str, fen: int = 5_000_000) -> grants.Grant:
    return grants.grant_for_award(
        session,
        ref="funds-call-1",
        credit_code=code,
        enterprise_name="兰州甲机械有限公司",
        title="2025 年度专精特新中小企业奖励",
        legal_basis="甘工信发〔2020〕351号 (二十四)",
        department=DEPT,
        period=2025,
        amount_fen=fen,
        detail={"call_id": 1, "application_id": 7, "explain": ["评分 92 分,排名第 1"]},
        actor="province",
    )


def test_award_is_approved_paid_by_another_person_and_clawed_back(db_session: Session) -> None:
    grants.set_bank_account(
        db_session,
        CODE,
        BankAccountInput.parse("甘肃银行", "兰州甲机械有限公司", "6217001234567890"),
        actor="t",
    )
    grant = award(db_session, CODE)
    assert grant.status == GrantStatus.approved and grant.account_no == "6217001234567890"
    assert award(db_session, CODE).id == grant.id  # idempotent
    assert [e.event for e in reversed(grants.ledger(db_session, grant.id))] == [
        "awarded",
        "approved",
    ]
    with pytest.raises(GrantFourEyes):
        grants.create_disbursement(db_session, actor="province", grant_ids=[grant.id])
    batch = grants.create_disbursement(db_session, actor="cashier", grant_ids=[grant.id])
    assert batch.total_fen == 5_000_000 and grant.status == GrantStatus.disbursed
    subject, body = grants.grant_message(grant)
    assert "已拨付" in subject and "申报" in body and "无需提交" not in body and "绩效" in body
    grants.record_clawback(db_session, grant.id, 2_000_000, reason="绩效未达标", actor="province")
    assert grants.clawbacks_fen(db_session, grant.id) == 2_000_000
    with pytest.raises(GrantError, match="累计不超过"):
        grants.record_clawback(db_session, grant.id, 3_000_001, reason="再追回", actor="province")
    assert grants.verify_ledger(db_session, [grant.id]) == []


def test_award_without_account_waits_pending(db_session: Session) -> None:
    grant = award(db_session, OTHER)
    assert grant.status == GrantStatus.pending
    assert any(f["code"] == "no_bank_account" for f in grant.risk_flags)
    with pytest.raises(GrantError):
        grants.grant_for_award(
            db_session,
            ref="funds-call-2",
            credit_code=OTHER,
            enterprise_name="x",
            title="t",
            legal_basis="b",
            department=DEPT,
            period=2025,
            amount_fen=0,
            detail={},
            actor="p",
        )
    with pytest.raises(GrantError, match="已批准或已拨付"):
        grants.record_clawback(db_session, grant.id, 1, reason="r", actor="p")
