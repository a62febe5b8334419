"""A small world for the officer half: registered enterprises in two counties of two cities,
reviewers at each level, an expert, a fund with one budget line and a call in review."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.funds.applications import prefill_values
from huiqi.funds.models import BudgetLine, Fund
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.models import FundCall as Call
from huiqi.funds.schemas import ApplicationStatus, CallStatus

DEPT = "甘肃省工业和信息化厅"
PASSWORD = "correct-horse-battery"
# 城关区 (兰州市), 七里河区 (兰州市), 秦州区 (天水市)
CHENGGUAN, QILIHE, QINZHOU = "620102", "620103", "620502"
A = make_credit_code("9", "1", CHENGGUAN, "MA7FUN01")
B = make_credit_code("9", "1", CHENGGUAN, "MA7FUN02")
C = make_credit_code("9", "1", QINZHOU, "MA7FUN03")
D = make_credit_code("9", "1", QILIHE, "MA7FUN04")
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CRITERIA = [
    {
        "key": "innovation",
        "name_zh": "创新能力",
        "name_en": "Innovation",
        "max_points": 60,
        "weight": 1,
    },
    {"key": "growth", "name_zh": "成长性", "name_en": "Growth", "max_points": 40, "weight": 1},
]
STAGES = [
    {"key": "county", "level": "county", "days": 5},
    {"key": "city", "level": "city", "days": 5},
    {"key": "province", "level": "province", "days": 10},
]


@dataclass
class World:
    """Who and what the tests act on."""

    session: Session
    users: dict[str, User]
    fund: Fund
    line: BudgetLine
    call: Call
    apps: dict[str, Application] = field(default_factory=dict)


def user(
    session: Session, name: str, role: str = "officer", prefix: str | None = None, **kw: str
) -> User:
    """A user; officers get the fund's department unless told otherwise."""
    if role == "officer":
        kw.setdefault("department", DEPT)
    u = accounts.create_user(session, username=name, password=PASSWORD, role=role, **kw)
    if prefix:
        scopes.set_region_prefix(session, u, prefix)
    session.flush()
    return u


def register(session: Session, code: str, name: str, revenue_wan: int) -> None:
    """An enterprise with a region and yearly figures."""
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
            "employees": 80,
            "revenue": revenue_wan * 1_000_000,
            "total_assets": revenue_wan * 1_000_000,
        },
        source="税务",
        as_of=date(2024, 5, 31),
        year=2024,
    )


def make_call(
    session: Session,
    fund: Fund,
    line: BudgetLine,
    *,
    budget_fen: int,
    stages: list[dict[str, object]] | None = None,
    title: str = "2025 年度专精特新中小企业奖励",
    **kw: object,
) -> Call:
    """A call in review against the line."""
    call = Call(
        fund_id=fund.id,
        budget_line_id=line.id,
        title=title,
        legal_basis="甘工信发〔2020〕351号 (二十四)",
        opens_at=T0 - timedelta(days=30),
        closes_at=T0,
        budget_fen=budget_fen,
        award_cap_fen=kw.pop("award_cap_fen", 3_000_000),
        stages=stages if stages is not None else STAGES,
        criteria=CRITERIA,
        objection_days=5,
        return_days=7,
        status=CallStatus.in_review,
        performance={
            "interval_months": 12,
            "reports": 1,
            "grace_working_days": 10,
            "pass_ratio": "0.8",
            "clawback_share": "1",
            "targets": [
                {
                    "key": "revenue",
                    "name_zh": "营业收入",
                    "name_en": "Revenue",
                    "unit": "万元",
                    "higher_is_better": True,
                }
            ],
        },
        **kw,
    )
    session.add(call)
    session.flush()
    return call


def submit(
    session: Session,
    call: Call,
    code: str,
    name: str,
    *,
    requested_fen: int,
    minutes: int = 0,
    revenue_wan: int = 2500,
    project_code: str | None = None,
) -> Application:
    """An application as the enterprise half leaves it on submission."""
    app = Application(
        call_id=call.id,
        credit_code=code,
        enterprise_name=name,
        region_code=code[2:8],
        industry_code="3311",
        size_class="small",
        project_name=f"{name} 技改项目",
        project_code=project_code,
        requested_fen=requested_fen,
        targets={"revenue": "3000"},
        status=ApplicationStatus.submitted,
        stage_index=0,
        stage_entered_at=T0 + timedelta(minutes=minutes),
        prefill=prefill_values(session, code),
        eligibility="eligible",
        declared_by="enterprise",
        declared_at=T0 + timedelta(minutes=minutes),
        submitted_at=T0 + timedelta(minutes=minutes),
    )
    session.add(app)
    session.flush()
    return app


def build(session: Session) -> World:
    """Reviewers, enterprises, a fund of 1,000 万元 with a 500 万元 line, and a call of 450 万元
    (so the three 200 万元 requests are not all covered)."""
    users = {
        "county": user(session, "county-cg", prefix=CHENGGUAN),
        "county_qz": user(session, "county-qz", prefix=QINZHOU),
        "city": user(session, "city-lz", prefix="6201"),
        "city_ts": user(session, "city-ts", prefix="6205"),
        "province": user(session, "province"),
        "province2": user(session, "province-cashier"),
        "other_dept": user(session, "other-dept", department="甘肃省商务厅"),
        "expert": user(session, "expert-wang", department="专家库"),
        "enterprise_a": user(session, "ent-a", role="enterprise", credit_code=A),
    }
    for code, name, rev in (
        (A, "兰州甲机械有限公司", 2500),
        (B, "兰州乙科技有限公司", 3000),
        (C, "天水丙制造有限公司", 2800),
        (D, "兰州丁电子有限公司", 2600),
    ):
        register(session, code, name, rev)
    fund = Fund(
        name="省级中小企业发展专项资金",
        department=DEPT,
        legal_basis="甘工信发〔2020〕351号 (七)",
        year=2025,
        annual_budget_fen=1_000_000_000,
    )
    session.add(fund)
    session.flush()
    line = BudgetLine(fund_id=fund.id, name="专精特新奖励", budget_fen=500_000_000, consumed_fen=0)
    session.add(line)
    session.flush()
    call = make_call(session, fund, line, budget_fen=4_500_000)
    world = World(session, users, fund, line, call)
    world.apps["A"] = submit(
        session, call, A, "兰州甲机械有限公司", requested_fen=2_000_000, minutes=1
    )
    world.apps["B"] = submit(
        session, call, B, "兰州乙科技有限公司", requested_fen=2_000_000, minutes=2
    )
    world.apps["C"] = submit(
        session, call, C, "天水丙制造有限公司", requested_fen=2_000_000, minutes=3
    )
    return world
