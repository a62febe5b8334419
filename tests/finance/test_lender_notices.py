"""Lenders are told of what happens to their applications: each of their users gets one inbox
message (and an e-mail when the account has an address) per event, in the event's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.finance import service as svc
from huiqi.finance.models import Application
from huiqi.finance.schemas import NeedIn
from huiqi.notify.models import Notification, OutboxMessage

from .conftest import DAY, ENT_A, GANSU_BANK, PASSWORD

WAN = 1_000_000


def _need(session: Session, user: User) -> Any:
    data = NeedIn.model_validate(
        {
            "amount_fen": 300 * WAN,
            "term_months": 12,
            "purpose": "购置数控激光切割设备,补充流动资金",
            "collateral": ["none"],
            "first_loan": True,
        }
    )
    return svc.post_need(session, user, data, on=DAY)


def _lender_notes(session: Session, user: User) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.recipient_user_id == user.id)
            .order_by(Notification.id)
        )
    )


@pytest.fixture
def applied(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> dict[str, Any]:
    """Gansu Bank's credit loan, a second Gansu Bank user with e-mail, and one application."""
    s = db_session
    colleague = accounts.create_user(
        s,
        username="gs-credit",
        password=PASSWORD,
        role="bank",
        institution=GANSU_BANK,
        email="credit@gsbank.example.com",
    )
    product = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    need = _need(s, users["ent_a"])
    (out,) = svc.apply(
        s, users["ent_a"], need.id, [product.id], ["revenue", "tax_credit_rating"], on=DAY
    )
    assert out.outcome == "created" and out.application is not None
    return {"app": out.application, "product": product, "need": need, "colleague": colleague}


def test_submission_tells_every_user_of_the_lender_once(
    db_session: Session, users: dict[str, User], applied: dict[str, Any]
) -> None:
    s, app = db_session, applied["app"]
    for user in (users["gsbank"], applied["colleague"]):
        (note,) = _lender_notes(s, user)
        assert note.credit_code is None and note.topic == "financing"
        assert note.subject == f"新的融资申请 #{app.id}:陇原科技信用贷"
        assert note.link == f"/finance/applications/{app.id}" and note.deadline == app.due_on
        assert "300 万元" in note.body and str(app.due_on) in note.body
        # the enterprise's identity does not travel in the message (it may go out by e-mail)
        assert ENT_A not in note.body and "兰州精工" not in note.body
    for other in ("lzbank", "guarantor", "ent_a", "officer"):
        assert _lender_notes(s, users[other]) == []
    mails = s.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient_user_id.is_not(None))
    ).all()
    assert [(m.channel, m.recipient) for m in mails] == [("email", "credit@gsbank.example.com")]
    # submitting again finds the application and announces nothing new
    (again,) = svc.apply(s, users["ent_a"], applied["need"].id, [applied["product"].id], [], on=DAY)
    assert again.outcome == "existing"
    assert len(_lender_notes(s, users["gsbank"])) == 1


def test_consent_revocations_each_tell_the_lender_and_withdrawal_ends_it(
    db_session: Session, users: dict[str, User], applied: dict[str, Any]
) -> None:
    s, app, bank = db_session, applied["app"], users["gsbank"]
    svc.revoke_consent(s, users["ent_a"], app.id, ["revenue"], on=DAY)
    svc.revoke_consent(s, users["ent_a"], app.id, ["tax_credit_rating"], on=DAY)
    subjects = [n.subject for n in _lender_notes(s, bank)]
    assert subjects[1:] == [f"融资申请 #{app.id} 的数据授权已部分撤回"] * 2
    bodies = [n.body for n in _lender_notes(s, bank)[1:]]
    assert "营业收入" in bodies[0] and "纳税信用等级" in bodies[1]
    with pytest.raises(svc.InvalidInput):  # nothing left to revoke: no event, no message
        svc.revoke_consent(s, users["ent_a"], app.id, ["revenue"], on=DAY)
    assert len(_lender_notes(s, bank)) == 3

    svc.transition(s, users["ent_a"], app.id, "withdraw", on=date(2025, 9, 30))
    last = _lender_notes(s, bank)[-1]
    assert last.subject == f"融资申请 #{app.id} 已被企业撤回:陇原科技信用贷"
    assert "2025-09-30" in last.body
    assert len(_lender_notes(s, applied["colleague"])) == 4
    assert _lender_notes(s, users["lzbank"]) == []


def test_a_bank_step_does_not_notify_the_bank_itself(
    db_session: Session, users: dict[str, User], applied: dict[str, Any]
) -> None:
    s, app = db_session, applied["app"]
    svc.transition(s, users["gsbank"], app.id, "accept", on=DAY)
    assert len(_lender_notes(s, users["gsbank"])) == 1  # only the submission


def test_overdue_reminder_tells_the_lender_once_per_deadline(
    db_session: Session, users: dict[str, User], applied: dict[str, Any]
) -> None:
    s, app = db_session, applied["app"]
    due = app.due_on
    assert svc.remind(s, on=due) == []
    svc.remind(s, on=date(2025, 10, 10))
    svc.remind(s, on=date(2025, 10, 13))
    overdue = [n for n in _lender_notes(s, users["gsbank"]) if "超期" in n.subject]
    assert len(overdue) == 1 and str(due) in overdue[0].body
    # accepted late: the decision deadline that follows is a new event with its own reminder
    svc.transition(s, users["gsbank"], app.id, "accept", on=date(2025, 10, 13))
    s.flush()
    later = s.get(Application, app.id)
    assert later is not None and later.due_on is not None
    svc.remind(s, on=date(2025, 12, 31))
    overdue = [n for n in _lender_notes(s, users["gsbank"]) if "超期" in n.subject]
    assert len(overdue) == 2 and str(later.due_on) in overdue[1].body


def test_the_notice_shares_the_event_transaction(
    db_session: Session, users: dict[str, User], applied: dict[str, Any]
) -> None:
    s, app = db_session, applied["app"]
    before = len(_lender_notes(s, users["gsbank"]))
    outer = s.begin_nested()
    svc.transition(s, users["ent_a"], app.id, "withdraw", on=DAY)
    assert len(_lender_notes(s, users["gsbank"])) == before + 1
    outer.rollback()  # the event is undone: so is its message
    s.expire_all()
    assert len(_lender_notes(s, users["gsbank"])) == before
    assert s.get(Application, app.id).status == "submitted"  # type: ignore[union-attr]
