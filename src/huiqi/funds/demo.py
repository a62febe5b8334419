"""Demo data of the special funds for `make run`: two funds of 省工信厅, four calls — two open,
one in review, one awarded and paid (an interest subsidy) — with applications at every stage,
and the reviewers who move them (a county and a city reviewer, an expert). Every step goes
through the review and award services, so the timeline, the ledger and the messages are the
ones a real run leaves. Idempotent: nothing is done when the first fund exists."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts import service as accounts
from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.dates import add_working_days
from huiqi.funds import awarding, outcomes, review
from huiqi.funds.applications import prefill_values
from huiqi.funds.models import (
    BudgetLine,
    Fund,
    FundApplication,
    FundApplicationEvent,
    FundCall,
    FundLoan,
    FundReview,
)
from huiqi.funds.review import Decision
from huiqi.funds.schemas import ApplicationStatus, AwardKind, CallStatus, EventKind, ReviewDecision
from huiqi.funds.timeline import record_event

DEPT = "甘肃省工业和信息化厅"
FUND_NAME = "甘肃省中小企业发展专项资金"
COUNTY = "620102"  # 兰州市城关区
CITY = "6201"  # 兰州市


# the demo log-ins this data is reviewed by (created with the others in huiqi.demo)
REVIEWERS = ("reviewer-county", "reviewer-city", "expert", "officer-gx2", "officer")
CRITERIA = [
    {
        "key": "innovation",
        "name_zh": "创新能力",
        "name_en": "Innovation",
        "max_points": 40,
        "weight": 1,
    },
    {"key": "growth", "name_zh": "成长性", "name_en": "Growth", "max_points": 30, "weight": 1},
    {
        "key": "benefit",
        "name_zh": "经济社会效益",
        "name_en": "Benefit",
        "max_points": 30,
        "weight": 1,
    },
]
PERFORMANCE: dict[str, Any] = {
    "interval_months": 6,
    "reports": 2,
    "grace_working_days": 10,
    "pass_ratio": "0.8",
    "clawback_share": "0.5",
    "targets": [
        {
            "key": "revenue",
            "name_zh": "营业收入",
            "name_en": "Revenue",
            "unit": "万元",
            "higher_is_better": True,
        },
        {
            "key": "jobs",
            "name_zh": "新增就业",
            "name_en": "New jobs",
            "unit": "人",
            "higher_is_better": True,
        },
    ],
}


def _hidden_reviewer(session: Session, name: str, prefix: str | None) -> User:
    """A reviewer of another county or city who moved demo files (no usable password)."""
    found = session.scalar(select(User).where(User.username == name))
    if found is not None:
        return found
    user = accounts.create_user(
        session,
        username=name,
        password=secrets.token_urlsafe(24),
        role=Role.officer,
        display_name=f"{name}(演示)",
        department=DEPT,
    )
    if prefix:
        scopes.set_region_prefix(session, user, prefix)
    return user


# enterprises the demo path moves through its stages (the picks below: 9 + 3 + 2 + 4)
APPLICANTS = 18


def _enterprises(session: Session, prefix: str, count: int, skip: set[str]) -> list[Any]:
    from huiqi.enterprise import repository

    _total, rows = repository.list_current(
        session, region_prefix=prefix, limit=count + len(skip) + 5
    )
    return [r for r in rows if r.credit_code not in skip and r.name][:count]


def _apply(
    session: Session,
    call: FundCall,
    row: Any,
    *,
    at: datetime,
    status: str = ApplicationStatus.submitted,
    requested_fen: int | None = None,
    project: str = "技术改造项目",
    eligibility: str = "eligible",
) -> FundApplication:
    """An application as the enterprise half leaves it on submission (or as a draft)."""
    app = FundApplication(
        call_id=call.id,
        credit_code=row.credit_code,
        enterprise_name=row.name,
        region_code=row.region_code,
        industry_code=row.industry_code,
        size_class=row.size_class,
        project_name=f"{row.name[:20]}{project}",
        project_code=f"GX-{call.id}-{row.credit_code[-6:]}",
        requested_fen=requested_fen,
        targets={"revenue": "3000", "jobs": "15"},
        status=status,
        stage_index=0,
        stage_entered_at=at if status != ApplicationStatus.draft else None,
        prefill=prefill_values(session, row.credit_code),
        eligibility=eligibility,
        eligibility_reasons=[],
        declared_by="企业经办人" if status != ApplicationStatus.draft else None,
        declared_at=at if status != ApplicationStatus.draft else None,
        submitted_at=at if status != ApplicationStatus.draft else None,
        created_at=at,
        updated_at=at,
    )
    session.add(app)
    session.flush()
    record_event(
        session,
        app,
        EventKind.created if status == ApplicationStatus.draft else EventKind.submitted,
        actor=None,
        status_from=None,
        detail={"demo": True},
    )
    return app


def _moment(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), clock.BEIJING).astimezone(clock.UTC)


class _Backdate:
    """Date the timeline rows and decisions a demo step writes on the day it plays on, so the
    dashboard's time at each stage reads like a real review (the demo is written in one go)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events = self._last(FundApplicationEvent.id)
        self.reviews = self._last(FundReview.id)

    def _last(self, column: Any) -> int:
        return int(self.session.scalar(select(func.coalesce(func.max(column), 0))) or 0)

    def to(self, day: date, hour: int = 10) -> None:
        """Everything written since the last call happened on this day."""
        at = _moment(day, hour)
        self.session.execute(
            update(FundApplicationEvent)
            .where(FundApplicationEvent.id > self.events)
            .values(at=at)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(
            update(FundReview)
            .where(FundReview.id > self.reviews)
            .values(created_at=at)
            .execution_options(synchronize_session=False)
        )
        self.events = self._last(FundApplicationEvent.id)
        self.reviews = self._last(FundReview.id)


def _score(
    session: Session, user: User, app: FundApplication, pts: tuple[int, int, int], day: date
) -> None:
    review.decide(
        session,
        user,
        app.id,
        Decision(
            ReviewDecision.scored,
            "按评分标准逐项评分:创新投入与专利情况、近两年营收增长、带动就业",
            {"innovation": pts[0], "growth": pts[1], "benefit": pts[2]},
        ),
        today=day,
    )


def load_demo(session: Session, *, today: date | None = None) -> None:
    """Create the funds, calls and applications, moved by the demo reviewers (idempotent)."""
    from huiqi.grants import service as grants
    from huiqi.grants.schemas import BankAccountInput

    today = today or clock.today()
    if session.scalar(select(Fund.id).where(Fund.name == FUND_NAME)) is not None:
        return
    # the path needs its applicants: a registry loaded without a population has too few
    if len(_enterprises(session, "62", APPLICANTS, set())) < APPLICANTS:
        return
    users = {
        u.username: u for u in session.scalars(select(User).where(User.username.in_(REVIEWERS)))
    }
    missing = sorted(set(REVIEWERS) - set(users))
    if missing:
        raise ValueError(f"demo reviewers missing: {', '.join(missing)} (load the accounts first)")
    province = users["officer"]
    hidden: dict[str, User] = {}

    def reviewer_of(prefix: str) -> User:
        """The demo reviewer of a county or city other than the printed ones."""
        if prefix == COUNTY:
            return users["reviewer-county"]
        if prefix == CITY:
            return users["reviewer-city"]
        if prefix not in hidden:
            hidden[prefix] = _hidden_reviewer(session, f"reviewer-{prefix}-demo", prefix)
        return hidden[prefix]

    year = today.year
    fund = Fund(
        name=FUND_NAME,
        department=DEPT,
        legal_basis="甘工信发〔2020〕351号 第(七)条:省级财政设立中小企业发展专项资金",
        year=year,
        annual_budget_fen=20_000_000_000,
        description="采取贷款贴息、奖励、补助等形式支持中小企业发展",
    )
    ip_fund = Fund(
        name="甘肃省知识产权质押融资贴息资金",
        department=DEPT,
        legal_basis="甘工信发〔2020〕351号 第(十三)条:建立知识产权质押贷款激励奖励机制",
        year=year - 1,  # interest of last year's loans, paid this year
        annual_budget_fen=500_000_000,
    )
    session.add_all([fund, ip_fund])
    session.flush()
    srdi = BudgetLine(fund_id=fund.id, name="专精特新奖励", budget_fen=3_000_000_000)
    upgrade = BudgetLine(fund_id=fund.id, name="规下转规上奖励", budget_fen=2_000_000_000)
    ip_line = BudgetLine(fund_id=ip_fund.id, name="知识产权质押贷款贴息", budget_fen=500_000_000)
    session.add_all([srdi, upgrade, ip_line])
    session.flush()
    stages_full = [
        {"key": "county", "level": "county", "days": 5},
        {"key": "city", "level": "city", "days": 5},
        {"key": "expert", "level": "expert", "days": 10},
        {"key": "province", "level": "province", "days": 10},
    ]
    common: dict[str, Any] = {
        "summary": "按照甘工信发〔2020〕351号要求,组织开展年度申报。",
        "materials": [
            {
                "key": "audit",
                "name_zh": "上年度审计报告",
                "name_en": "Audit report",
                "types": ["pdf"],
                "max_mb": 10,
                "required": True,
            },
            {
                "key": "plan",
                "name_zh": "项目实施方案",
                "name_en": "Project plan",
                "types": ["pdf", "docx"],
                "max_mb": 10,
                "required": True,
            },
        ],
        "criteria": CRITERIA,
        "performance": PERFORMANCE,
        "objection_days": 5,
        "return_days": 7,
        "created_by": province.id,
    }
    open_call = FundCall(
        fund_id=fund.id,
        budget_line_id=srdi.id,
        title=f"{year}年度专精特新中小企业奖励申报",
        doc_number=f"甘工信函〔{year}〕12号",
        legal_basis="甘工信发〔2020〕351号 第(二十四)条",
        article_ref="二十四",
        rule_id="gs351-24-srdi-candidate",
        opens_at=_moment(today - timedelta(days=10)),
        closes_at=_moment(today + timedelta(days=20), 18),
        quota=30,
        budget_fen=1_500_000_000,
        award_cap_fen=50_000_000,
        stages=stages_full[:2] + stages_full[3:],
        status=CallStatus.open,
        published_at=_moment(today - timedelta(days=10)),
        **common,
    )
    review_call = FundCall(
        fund_id=fund.id,
        budget_line_id=upgrade.id,
        title=f"{year}年度“规下转规上”企业奖励申报",
        doc_number=f"甘工信函〔{year}〕8号",
        legal_basis="甘工信发〔2020〕351号 第(二十三)条",
        article_ref="二十三",
        rule_id="gs351-23-above-scale-upgrade",
        opens_at=_moment(today - timedelta(days=60)),
        closes_at=_moment(today - timedelta(days=25), 18),
        budget_fen=400_000_000,
        award_cap_fen=30_000_000,
        stages=stages_full,
        status=CallStatus.in_review,
        published_at=_moment(today - timedelta(days=60)),
        **common,
    )
    paid_call = FundCall(
        fund_id=ip_fund.id,
        budget_line_id=ip_line.id,
        title=f"{year - 1}年度知识产权质押贷款贴息",
        doc_number=f"甘工信函〔{year}〕3号",
        legal_basis="甘工信发〔2020〕351号 第(十三)条",
        article_ref="十三",
        rule_id="gs351-13-bank-tax-credit-loan",
        opens_at=_moment(today - timedelta(days=300)),
        closes_at=_moment(today - timedelta(days=270), 18),
        budget_fen=8_000_000,  # does not cover every applicant: the list is cut
        award_cap_fen=5_000_000,
        award_kind=AwardKind.interest_subsidy,
        subsidy_rate_basis="contract",
        subsidy_day_count=360,
        subsidy_share="0.5",
        subsidy_cap_fen=5_000_000,
        stages=[stages_full[0], stages_full[3]],
        status=CallStatus.in_review,
        published_at=_moment(today - timedelta(days=300)),
        **common,
    )
    session.add_all([open_call, review_call, paid_call])
    session.flush()
    used: set[str] = set()

    def pick(prefix: str, n: int) -> list[Any]:
        """n enterprises of the region, topped up from the whole province in a small registry."""
        rows = _enterprises(session, prefix, n, used)
        used.update(r.credit_code for r in rows)
        if len(rows) < n:
            more = _enterprises(session, "62", n - len(rows), used)
            used.update(r.credit_code for r in more)
            rows += more
        return rows

    bd = _Backdate(session)
    chengguan = pick(COUNTY, 9)
    lanzhou = pick("620103", 2) + pick("620105", 1)  # 七里河区, 安宁区
    tianshui = pick("6205", 2)
    # --- the open call: drafts and fresh submissions waiting at the county --------------------
    for i, row in enumerate(chengguan[:3]):
        _apply(
            session,
            open_call,
            row,
            at=_moment(today - timedelta(days=3 - i)),
            status=ApplicationStatus.draft if i == 0 else ApplicationStatus.submitted,
            requested_fen=30_000_000,
            project="专精特新能力提升项目",
            eligibility="unknown" if i == 2 else "eligible",
        )
        bd.to(today - timedelta(days=3 - i))
    # --- the call in review: one application at every stage -------------------------------------
    day = today - timedelta(days=20)
    r_apps = [
        _apply(
            session,
            review_call,
            row,
            at=_moment(day - timedelta(days=10), 9 + i),
            requested_fen=20_000_000 + 1_000_000 * i,
        )
        for i, row in enumerate(chengguan[3:9] + lanzhou + tianshui)
    ]
    bd.to(day - timedelta(days=10))
    n_cg = len(chengguan[3:9])
    cg, ql, ts = r_apps[:n_cg], r_apps[n_cg : n_cg + len(lanzhou)], r_apps[n_cg + len(lanzhou) :]
    expert = users["expert"]
    ok = Decision(ReviewDecision.passed, "材料齐全,与企业库数据一致")
    # 城关区: cg[0], cg[1] still wait at the county; cg[2] returned; cg[3] rejected
    review.decide(
        session,
        reviewer_of(cg[2].region_code or ""),
        cg[2].id,
        Decision(
            ReviewDecision.returned, "请补充上年度审计报告(须加盖会计师事务所公章)", return_days=7
        ),
        today=day,
    )
    review.decide(
        session,
        reviewer_of(cg[3].region_code or ""),
        cg[3].id,
        Decision(
            ReviewDecision.rejected, "上年度主营业务收入未达 2000 万元,不属于“规下转规上”奖励范围"
        ),
        today=day,
    )
    for app in (cg[4], cg[5], *ql, *ts):
        review.decide(session, reviewer_of(app.region_code or ""), app.id, ok, today=day)
    bd.to(day)
    # 兰州市: cg[4] waits at the city; the others pass to the experts
    for app in (cg[5], *ql, *ts):
        review.decide(
            session,
            reviewer_of((app.region_code or "")[:4]),
            app.id,
            ok,
            today=day + timedelta(days=3),
        )
    # experts: the demo expert is assigned cg[5] (not declared yet) and ql[0]; ql[1], ql[2], ts
    # are scored by the expert and reach the province; ts[1] also passes the province
    for app in (cg[5], *ql, *ts):
        review.assign_expert(session, province, app.id, expert)
    bd.to(day + timedelta(days=3), 15)
    scored = list(
        zip((*ql[1:], *ts), ((34, 25, 24), (28, 20, 18), (36, 26, 25), (25, 18, 20)), strict=False)
    )
    for app, pts in scored:
        review.declare(session, expert, app.id, has_conflict=False, statement="")
        _score(session, expert, app, pts, day + timedelta(days=8))
    bd.to(day + timedelta(days=8))
    if ts:
        _score(session, province, ts[0], (35, 27, 25), day + timedelta(days=12))
    bd.to(day + timedelta(days=12))
    # --- the paid call: interest subsidies, 公示, approval, payment, performance ----------------
    paid_day = today - timedelta(days=220)
    p_apps = [
        _apply(
            session,
            paid_call,
            row,
            at=_moment(today - timedelta(days=280), 9 + i),
            project="知识产权质押贷款",
        )
        for i, row in enumerate(pick(COUNTY, 4))
    ]
    for i, app in enumerate(p_apps):
        session.add(
            FundLoan(
                application_id=app.id,
                lender="甘肃银行股份有限公司",
                contract_no=f"GSB-ZY-{year}-{1001 + i}",
                principal_fen=(1_000_000 + 500_000 * i) * 100,
                annual_rate=("0.0385", "0.0420", "0.0435", "0.0395")[i],
                start_on=date(year - 1, 1, 10),
                end_on=date(year, 1, 10),
                entered_by="甘肃银行 王经理",
            )
        )
    session.flush()
    bd.to(today - timedelta(days=280))
    for app in p_apps:
        review.decide(session, reviewer_of(app.region_code or ""), app.id, ok, today=paid_day)
    bd.to(paid_day)
    for app, pts in zip(
        p_apps, ((36, 26, 25), (33, 24, 22), (30, 20, 20), (20, 15, 15)), strict=True
    ):
        _score(session, province, app, pts, paid_day + timedelta(days=5))
    bd.to(paid_day + timedelta(days=5))
    pub_day = paid_day + timedelta(days=10)
    awarding.start_publicity(session, province, paid_call.id, today=pub_day)
    bd.to(pub_day)
    objection = awarding.object_to(
        session,
        users["officer-gx2"],
        p_apps[1].id,
        "该企业同一笔贷款曾申请市级贴息,请核实",
        today=pub_day,
    )
    awarding.resolve_objection(
        session,
        province,
        objection.id,
        upheld=False,
        reason="经核实,市级贴息为另一笔贷款,不构成重复",
    )
    bd.to(pub_day + timedelta(days=2))
    for app in p_apps:
        if grants.bank_account(session, app.credit_code) is None:
            grants.set_bank_account(
                session,
                app.credit_code,
                BankAccountInput.parse(
                    "甘肃银行股份有限公司",
                    app.enterprise_name,
                    ("6217" + "".join(str(ord(ch) % 10) for ch in app.credit_code))[:19],
                ),
                actor="demo",
            )
    approve_day = add_working_days(paid_call.publicity_to or pub_day, 1)
    report = awarding.approve(session, province, paid_call.id, today=approve_day)
    bd.to(approve_day)
    grants.create_disbursement(
        session, actor=users["officer-gx2"].username, grant_ids=report.grant_ids
    )
    bd.to(approve_day + timedelta(days=3))
    # performance: the first project reported on time; the others' first report is overdue
    from huiqi.funds.models import PerformanceTarget

    first = session.scalars(
        select(PerformanceTarget)
        .where(PerformanceTarget.application_id == report.awarded[0])
        .order_by(PerformanceTarget.due_on)
    ).first()
    if first is not None and first.due_on <= today:
        # the enterprise's clerk (not a log-in of the demo) reported on the due date
        reporter = User(
            username="企业经办人", role=Role.enterprise, credit_code=p_apps[0].credit_code
        )
        outcomes.submit_report(
            session,
            reporter,
            first.id,
            {"revenue": "1650", "jobs": "9"},
            "贷款资金用于专利产业化,营收增长明显",
            today=first.due_on,
        )
        bd.to(first.due_on)
    outcomes.flag_overdue(session, today)
    _publish_selection_call(
        session, province, fund.id, {**common, "stages": [stages_full[0], stages_full[3]]}, today
    )


def _publish_selection_call(
    session: Session, officer: User, fund_id: int, terms: dict[str, Any], today: date
) -> None:
    """A call published the way an officer publishes one: filed in the policy library and
    pushed to the enterprises its rule fits, so the demo enterprise (to confirm: its
    high-tech certificate dates are missing) finds it on 我的政策 and in its inbox."""
    from huiqi.funds.publish import publish_call

    line = BudgetLine(fund_id=fund_id, name="科技“小巨人”培育", budget_fen=1_000_000_000)
    session.add(line)
    session.flush()
    call = FundCall(
        fund_id=fund_id,
        budget_line_id=line.id,
        title=f"{today.year}年度成长型高新技术中小微企业科技经费支持遴选",
        doc_number=f"甘工信函〔{today.year}〕15号",
        legal_basis="甘工信发〔2020〕351号 第(二十三)条",
        article_ref="二十三",
        rule_id="gs351-23-high-tech-sme-support",
        opens_at=_moment(today - timedelta(days=1)),
        closes_at=_moment(today + timedelta(days=30), 18),
        quota=50,
        budget_fen=1_000_000_000,
        award_cap_fen=30_000_000,
        status=CallStatus.draft,
        **terms,
    )
    session.add(call)
    session.flush()
    publish_call(session, officer, call.id)
