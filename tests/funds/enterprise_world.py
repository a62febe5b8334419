"""A small world for the enterprise half: two Gansu manufacturers the above-scale reward fits —
one eligible, one to confirm for want of its employee count — a fund, and a call to publish."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.events import ResultsChanged
from huiqi.funds import service as funds
from huiqi.funds.models import Fund, FundCall
from huiqi.matching import service as matching

DEPT = "甘肃省工业和信息化厅"
RULE = "gs351-23-above-scale-upgrade"
PASSWORD = "correct-horse-battery"
ELIGIBLE = make_credit_code("9", "1", "620102", "MA7APP01")
TO_CONFIRM = make_credit_code("9", "1", "620502", "MA7APP02")
OUTSIDER = make_credit_code("9", "1", "620102", "MA7APP03")  # a service firm: not industrial
NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
ON = date(2025, 3, 3)
PDF = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def register(session: Session, code: str, name: str, industry: str, employees: int | None) -> None:
    """An enterprise with two years of revenue: 15 million, then 25 million yuan."""
    registry.apply_changes(
        session,
        code,
        {"name": name, "region_code": code[2:8], "industry_code": industry},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    for year, wan in ((2023, 1500), (2024, 2500)):
        values: dict[str, object] = {"revenue": wan * 1_000_000, "total_assets": 3000 * 1_000_000}
        if employees is not None:
            values["employees"] = employees
        registry.apply_changes(
            session, code, values, source="税务", as_of=date(year + 1, 5, 31), year=year
        )


@dataclass
class World:
    """Who and what the tests act on."""

    session: Session
    officer: User
    other_officer: User
    eligible: User
    to_confirm: User
    outsider: User
    fund: Fund
    call: FundCall
    data_dir: Path


MATERIALS = [
    {
        "key": "plan",
        "name_zh": "项目实施方案",
        "types": ["pdf", "docx"],
        "max_mb": 1,
        "required": True,
    },
    {
        "key": "photo",
        "name_zh": "现场照片",
        "types": ["jpg", "png"],
        "max_mb": 1,
        "required": False,
    },
]
STAGES = [
    {"key": "county", "level": "county", "days": 5},
    {"key": "city", "level": "city", "days": 5},
    {"key": "province", "level": "province", "days": 10},
]


def build(
    session: Session, monkeypatch: pytest.MonkeyPatch, data_dir: Path, *, quota: int | None = 5
) -> World:
    """The registry, the rules matched, users and a draft call of 2 million yuan."""
    from huiqi.core import clock

    monkeypatch.setattr(clock, "now", lambda: NOW)
    monkeypatch.setattr(clock, "today", lambda: ON)
    register(session, ELIGIBLE, "兰州甲机械制造有限公司", "3311", 80)
    register(session, TO_CONFIRM, "天水乙材料有限公司", "3011", None)
    register(session, OUTSIDER, "兰州丙咨询有限公司", "7241", 30)
    # matching's own pushes are not what these tests look at
    monkeypatch.setitem(events.bus.handlers, ResultsChanged, [])
    matching.load_rules(session)
    matching.run_matching(session, ON)

    def user(name: str, role: str, **kw: str) -> User:
        return accounts.create_user(session, username=name, password=PASSWORD, role=role, **kw)

    officer = user("funds-officer", "officer", department=DEPT)
    world_fund = funds.create_fund(
        session,
        officer,
        name="省级中小企业发展专项资金",
        department=DEPT,
        legal_basis="甘工信发〔2020〕351号 第(七)条",
        year=2025,
        annual_budget_fen=100_000_000,
        lines=[("规下转规上奖励", 20_000_000)],
    )
    call = funds.create_call(
        session,
        officer,
        funds.CallTerms(
            fund_id=world_fund.id,
            budget_line_id=world_fund.lines[0].id,
            title="2025 年度工业企业规下转规上奖励申报",
            legal_basis="甘工信发〔2020〕351号 第(二十三)条",
            opens_at=NOW - timedelta(days=1),
            closes_at=NOW + timedelta(days=14),
            budget_fen=2_000_000,
            award_cap_fen=500_000,
            quota=quota,
            rule_id=RULE,
            stages=STAGES,
            materials=MATERIALS,
            criteria=[{"key": "growth", "name_zh": "成长性", "max_points": 100, "weight": 1}],
        ),
    )
    return World(
        session,
        officer,
        user("other-officer", "officer", department="甘肃省商务厅"),
        user("ent-eligible", "enterprise", credit_code=ELIGIBLE),
        user("ent-confirm", "enterprise", credit_code=TO_CONFIRM),
        user("ent-outsider", "enterprise", credit_code=OUTSIDER),
        world_fund,
        call,
        data_dir,
    )
