"""A fund line is never overspent: two awards charged at the same moment from two transactions
on PostgreSQL — exactly one fits, the other is refused — and sequentially on both backends."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from huiqi.funds import awarding
from huiqi.funds.models import BudgetLine, Fund


def test_a_line_refuses_what_it_cannot_cover(db_session: Session) -> None:
    fund = Fund(
        name="测试资金",
        department="甘肃省工业和信息化厅",
        legal_basis="(七)",
        year=2025,
        annual_budget_fen=100,
    )
    db_session.add(fund)
    db_session.flush()
    line = BudgetLine(fund_id=fund.id, name="科目", budget_fen=100, consumed_fen=0)
    db_session.add(line)
    db_session.flush()
    awarding.charge_line(db_session, line.id, 60)
    with pytest.raises(awarding.BudgetExceeded, match="剩余 0.40 元"):
        awarding.charge_line(db_session, line.id, 41)
    awarding.charge_line(db_session, line.id, 40)
    db_session.refresh(line)
    assert line.consumed_fen == 100


def test_two_concurrent_awards_never_overspend_a_line(postgres_engine: Engine) -> None:
    with Session(postgres_engine) as setup:
        fund = Fund(
            name="并发测试资金",
            department="甘肃省工业和信息化厅",
            legal_basis="(七)",
            year=2031,
            annual_budget_fen=100,
        )
        setup.add(fund)
        setup.flush()
        line = BudgetLine(fund_id=fund.id, name="科目", budget_fen=100, consumed_fen=0)
        setup.add(line)
        setup.commit()
        fund_id, line_id = fund.id, line.id
    first_charged = threading.Event()
    outcomes: dict[str, str] = {}

    def award(name: str, hold: bool) -> None:
        with Session(postgres_engine) as session:
            try:
                awarding.charge_line(session, line_id, 60)
                if hold:
                    first_charged.set()
                    time.sleep(0.5)  # the other transaction's update now waits on this row
                session.commit()
                outcomes[name] = "charged"
            except awarding.BudgetExceeded:
                session.rollback()
                outcomes[name] = "refused"

    try:
        one = threading.Thread(target=award, args=("one", True))
        one.start()
        assert first_charged.wait(10)
        two = threading.Thread(target=award, args=("two", False))
        two.start()
        one.join(20)
        two.join(20)
        assert outcomes == {"one": "charged", "two": "refused"}
        with Session(postgres_engine) as check:
            got = check.get(BudgetLine, line_id)
            assert got is not None and got.consumed_fen == 60
    finally:
        with Session(postgres_engine) as cleanup:
            cleanup.execute(delete(BudgetLine).where(BudgetLine.id == line_id))
            cleanup.execute(delete(Fund).where(Fund.id == fund_id))
            cleanup.commit()
