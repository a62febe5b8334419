"""A small registry with published rules and a matching run, for the grant tests."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.events import ResultChange, ResultsChanged
from huiqi.grants import service as grants
from huiqi.grants.models import Grant
from huiqi.grants.schemas import BankAccountInput
from huiqi.matching import service as matching

ON = date(2024, 6, 30)
RST = "甘肃省人力资源和社会保障厅"  # the graduate subsidy rule says 省人社厅
GRAD_RULE = "gs351-22-graduate-social-insurance"
# employer's pension, medical and unemployment contributions for one graduate over 12 months
PER_GRADUATE_FEN = 1_215_000
A = make_credit_code("9", "1", "620102", "MA7GRA01")  # small Lanzhou manufacturer, 3 graduates
B = make_credit_code("9", "1", "620102", "MA7GRA02")  # micro, 8 graduates (large amount)
C = make_credit_code("9", "1", "620503", "MA7GRA03")  # medium: not eligible


def add(
    session: Session, code: str, name: str, employees: int, revenue_wan: int, hires: int
) -> None:
    """Register an enterprise with 2023 figures."""
    registry.apply_changes(
        session,
        code,
        {"name": name, "region_code": code[2:8], "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    registry.apply_changes(
        session,
        code,
        {
            "employees": employees,
            "revenue": revenue_wan * 1_000_000,
            "total_assets": revenue_wan * 1_000_000,
            "graduate_hires": hires,
            "graduate_insurance_paid": hires * PER_GRADUATE_FEN,
        },
        source="税务",
        as_of=date(2024, 5, 31),
        year=2023,
    )


@pytest.fixture
def matched(db_session: Session, monkeypatch: pytest.MonkeyPatch) -> list[ResultChange]:
    """Three enterprises, the rule library published, matching run on ON; the changed results.

    The grant tests call grants_from_results themselves with chosen dates, so matching's own
    propagation to grants and notify is switched off here; tests/notify/test_matching_hook.py
    covers that propagation.
    """
    monkeypatch.setitem(events.bus.handlers, ResultsChanged, [])
    add(db_session, A, "兰州甲机械有限公司", 40, 2500, 3)
    add(db_session, B, "兰州乙科技有限公司", 8, 200, 8)
    add(db_session, C, "天水丙制造有限公司", 500, 30000, 2)
    matching.load_rules(db_session)
    return matching.run_matching(db_session, ON)


def grants_for(session: Session, matched: list[ResultChange]) -> tuple[Grant, Grant]:
    """Grants of A (with a receiving account) and B (without one), committed."""
    grants.grants_from_results(session, matched, today=ON)
    grants.set_bank_account(
        session,
        A,
        BankAccountInput.parse("甘肃银行", "兰州甲机械有限公司", "6217001234567890"),
        actor="t",
    )
    session.commit()
    a = session.scalar(select(Grant).where(Grant.credit_code == A))
    b = session.scalar(select(Grant).where(Grant.credit_code == B))
    assert a is not None and b is not None
    return a, b
