"""Special funds and their calls for applications: set up, published into the policy library,
pushed to the enterprises the call's rule fits, and listed for whoever may see them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role, User
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.funds.errors import FundsConflict, FundsError, FundsForbidden, FundsNotFound
from huiqi.funds.materials import TYPES
from huiqi.funds.models import BudgetLine, Fund, FundApplication, FundCall
from huiqi.funds.schemas import (
    FINAL_APPLICATION_STATUSES,
    ApplicationStatus,
    AwardKind,
    CallStatus,
    StageLevel,
)

RATE_BASES = ("contract", "lpr_1y", "lpr_5y")
MAX_MATERIAL_MB = 50


def same_department(session: Session) -> Callable[[str, str], bool]:
    """Department names compared through the policy registry (省工信厅 = its full name)."""
    from huiqi.grants.service import department_key
    from huiqi.policy.service import registry_for

    registry = registry_for(session)

    def same(mine: str, theirs: str) -> bool:
        key = department_key(session, mine, registry)
        return key is not None and key == department_key(session, theirs, registry)

    return same


def manages(session: Session, user: User, department: str) -> bool:
    """Whether the user is an officer of the department (or an administrator)."""
    if user.role not in (Role.officer, Role.admin):
        return False
    scope = scopes.load_scope(session, user)
    return scopes.can_access(scope, department=department, same_department=same_department(session))


def ensure_manages(session: Session, user: User, department: str) -> None:
    """Refuse (403) a user who is not an officer of the department."""
    if not manages(session, user, department):
        raise FundsForbidden(
            f"只有{department}的工作人员可以管理该专项资金",
            f"only officers of {department} manage this fund",
        )


def _text(value: str | None, what: tuple[str, str], field_name: str, *, limit: int) -> str:
    out = (value or "").strip()
    if not out:
        raise FundsError(f"请填写{what[0]}", f"{what[1]} is required", field=field_name)
    if len(out) > limit:
        raise FundsError(
            f"{what[0]}不能超过 {limit} 个字符",
            f"{what[1]}: at most {limit} characters",
            field=field_name,
        )
    return out


def _positive_fen(value: int, what: tuple[str, str], field_name: str) -> int:
    if value <= 0:
        raise FundsError(f"{what[0]}须大于零", f"{what[1]} must be positive", field=field_name)
    return value


# --- funds -----------------------------------------------------------------------------------


def create_fund(
    session: Session,
    actor: User,
    *,
    name: str,
    department: str,
    legal_basis: str,
    year: int,
    annual_budget_fen: int,
    lines: Sequence[tuple[str, int]] = (),
    description: str = "",
) -> Fund:
    """A special fund of a department with its budget lines (their sum within the budget)."""
    department = _text(department, ("主管部门", "Department"), "department", limit=100)
    ensure_manages(session, actor, department)
    fund = Fund(
        name=_text(name, ("资金名称", "Fund name"), "name", limit=200),
        department=department,
        legal_basis=_text(legal_basis, ("设立依据", "Legal basis"), "legal_basis", limit=2000),
        year=year,
        annual_budget_fen=_positive_fen(annual_budget_fen, ("年度预算", "Budget"), "budget"),
        description=(description or "").strip(),
        created_by=actor.id,
    )
    if not 2000 <= year <= 2100:
        raise FundsError(f"年度不合理:{year}", f"implausible year: {year}", field="year")
    if session.scalar(select(Fund.id).where(Fund.name == fund.name, Fund.year == year)):
        raise FundsConflict(
            f"{year} 年度已有同名专项资金:{fund.name}", f"{year} already has a fund {fund.name}"
        )
    session.add(fund)
    session.flush()
    for line_name, fen in lines:
        add_budget_line(session, actor, fund, line_name, fen)
    audit(session, "funds.fund_created", user=actor, actor=actor, fund=fund.id, name=fund.name)
    return fund


def add_budget_line(
    session: Session, actor: User, fund: Fund, name: str, budget_fen: int
) -> BudgetLine:
    """A budget line of a fund; all lines together stay within the fund's annual budget."""
    ensure_manages(session, actor, fund.department)
    name = _text(name, ("预算科目", "Budget line"), "line_name", limit=200)
    _positive_fen(budget_fen, ("科目预算", "Line budget"), "line_budget")
    used = session.scalar(
        select(func.coalesce(func.sum(BudgetLine.budget_fen), 0)).where(
            BudgetLine.fund_id == fund.id
        )
    )
    if int(used or 0) + budget_fen > fund.annual_budget_fen:
        raise FundsError(
            f"预算科目合计将超过年度预算 {format_fen(fund.annual_budget_fen)}",
            f"the lines would exceed the annual budget of {format_fen(fund.annual_budget_fen)}",
            field="line_budget",
        )
    line = BudgetLine(fund_id=fund.id, name=name, budget_fen=budget_fen, consumed_fen=0)
    session.add(line)
    session.flush()
    return line


def get_fund(session: Session, fund_id: int) -> Fund:
    """A fund by id."""
    fund = session.get(Fund, fund_id)
    if fund is None:
        raise FundsNotFound(f"未找到专项资金 #{fund_id}", f"fund #{fund_id} not found")
    return fund


def funds_of(session: Session, user: User) -> list[Fund]:
    """The funds an officer manages (administrators: all)."""
    rows = session.scalars(select(Fund).order_by(Fund.year.desc(), Fund.id)).all()
    return [f for f in rows if manages(session, user, f.department)]


# --- calls -----------------------------------------------------------------------------------


@dataclass
class CallTerms:
    """What an officer sets for a call (money in fen, moments aware)."""

    fund_id: int
    budget_line_id: int
    title: str
    legal_basis: str
    opens_at: datetime
    closes_at: datetime
    budget_fen: int
    stages: list[dict[str, Any]]
    materials: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)
    rule_id: str | None = None
    policy_id: int | None = None
    article_ref: str | None = None
    doc_number: str | None = None
    summary: str = ""
    quota: int | None = None
    award_cap_fen: int | None = None
    award_kind: str = AwardKind.grant
    objection_days: int = 5
    return_days: int = 7
    performance: dict[str, Any] = field(default_factory=dict)
    subsidy_rate_basis: str | None = None
    subsidy_day_count: int | None = None
    subsidy_share: str | None = None
    subsidy_cap_fen: int | None = None


def _key(raw: Any, where: str) -> str:
    key = str(raw or "").strip()
    if not key or len(key) > 64 or not key.replace("_", "").replace("-", "").isalnum():
        raise FundsError(
            f"{where}的代码须为字母、数字、下划线:{key!r}",
            f"{where}: a key of letters, digits and underscores: {key!r}",
            field=where,
        )
    return key


def clean_materials(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The materials a call requires, checked: unique keys, known types, a size limit."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in items:
        key = _key(raw.get("key"), "materials")
        if key in seen:
            raise FundsError(
                f"材料代码重复:{key}", f"duplicate material key: {key}", field="materials"
            )
        seen.add(key)
        types = [str(t).lower() for t in raw.get("types") or []]
        unknown = [t for t in types if t not in TYPES]
        if not types or unknown:
            raise FundsError(
                f"材料 {key} 的文件类型须从 {'、'.join(TYPES)} 中选择",
                f"material {key}: file types from {', '.join(TYPES)}",
                field="materials",
            )
        max_mb = int(raw.get("max_mb") or 10)
        if not 1 <= max_mb <= MAX_MATERIAL_MB:
            raise FundsError(
                f"材料 {key} 的大小上限须在 1–{MAX_MATERIAL_MB} MB 之间",
                f"material {key}: size limit 1–{MAX_MATERIAL_MB} MB",
                field="materials",
            )
        out.append(
            {
                "key": key,
                "name_zh": str(raw.get("name_zh") or key),
                "name_en": str(raw.get("name_en") or raw.get("name_zh") or key),
                "types": types,
                "max_mb": max_mb,
                "required": bool(raw.get("required", True)),
            }
        )
    return out


def clean_stages(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The review stages in order: known levels, expected working days of 1–90."""
    if not items:
        raise FundsError("请至少设置一个评审环节", "set at least one review stage", field="stages")
    out = []
    for raw in items:
        try:
            level = StageLevel(str(raw.get("level")))
        except ValueError:
            raise FundsError(
                f"评审层级须为 {'、'.join(StageLevel)}:{raw.get('level')!r}",
                f"stage level must be one of {', '.join(StageLevel)}",
                field="stages",
            ) from None
        days = int(raw.get("days") or 0)
        if not 1 <= days <= 90:
            raise FundsError(
                "每个评审环节的办理时限须为 1–90 个工作日", "stage days: 1–90", field="stages"
            )
        out.append(
            {
                "key": _key(raw.get("key") or level.value, "stages"),
                "name_zh": str(raw.get("name_zh") or ""),
                "name_en": str(raw.get("name_en") or ""),
                "level": level.value,
                "days": days,
            }
        )
    return out


def clean_criteria(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scoring criteria: unique keys, positive maximum points and weights."""
    out = []
    seen: set[str] = set()
    for raw in items:
        key = _key(raw.get("key"), "criteria")
        if key in seen:
            raise FundsError(
                f"评分项代码重复:{key}", f"duplicate criterion: {key}", field="criteria"
            )
        seen.add(key)
        try:
            points = int(raw.get("max_points") or 0)
            weight = Decimal(str(raw.get("weight", "1")))
        except (ValueError, InvalidOperation):
            raise FundsError(
                f"评分项 {key} 的分值或权重有误",
                f"criterion {key}: bad points or weight",
                field="criteria",
            ) from None
        if points <= 0 or weight <= 0:
            raise FundsError(
                f"评分项 {key} 的分值和权重须大于零",
                f"criterion {key}: points and weight must be positive",
                field="criteria",
            )
        out.append(
            {
                "key": key,
                "name_zh": str(raw.get("name_zh") or key),
                "name_en": str(raw.get("name_en") or raw.get("name_zh") or key),
                "max_points": points,
                "weight": str(weight),
            }
        )
    return out


def _check_subsidy(terms: CallTerms) -> None:
    if terms.award_kind != AwardKind.interest_subsidy:
        return
    if terms.subsidy_rate_basis not in RATE_BASES:
        raise FundsError(
            f"贴息利率基准须为 {'、'.join(RATE_BASES)}",
            f"subsidy rate basis: one of {', '.join(RATE_BASES)}",
            field="subsidy_rate_basis",
        )
    if terms.subsidy_day_count not in (360, 365):
        raise FundsError(
            "计息天数基准须为 360 或 365", "day-count basis: 360 or 365", field="subsidy_day_count"
        )
    try:
        share = Decimal(str(terms.subsidy_share))
    except InvalidOperation:
        share = Decimal(0)
    if not Decimal(0) < share <= Decimal(1):
        raise FundsError(
            "贴息比例须大于 0 且不超过 1",
            "subsidised share: above 0, at most 1",
            field="subsidy_share",
        )


def create_call(session: Session, actor: User, terms: CallTerms) -> FundCall:
    """A draft call of a fund the actor's department manages, its terms checked."""
    fund = get_fund(session, terms.fund_id)
    ensure_manages(session, actor, fund.department)
    line = session.get(BudgetLine, terms.budget_line_id)
    if line is None or line.fund_id != fund.id:
        raise FundsError(
            "预算科目不属于该专项资金",
            "the budget line is not of this fund",
            field="budget_line_id",
        )
    if clock.aware(terms.closes_at) <= clock.aware(terms.opens_at):
        raise FundsError(
            "申报截止时间须晚于开始时间", "the window must close after it opens", field="closes_at"
        )
    _positive_fen(terms.budget_fen, ("批次预算", "Call budget"), "budget_fen")
    committed = session.scalar(
        select(func.coalesce(func.sum(FundCall.budget_fen), 0)).where(
            FundCall.budget_line_id == line.id
        )
    )
    if int(committed or 0) + terms.budget_fen > line.budget_fen:
        raise FundsError(
            f"该科目剩余可安排预算不足:科目预算 {format_fen(line.budget_fen)},已安排 {format_fen(int(committed or 0))}",
            "the budget line cannot cover this call",
            field="budget_fen",
        )
    if terms.quota is not None and terms.quota <= 0:
        raise FundsError("申报名额须为正整数", "the quota must be positive", field="quota")
    if terms.award_cap_fen is not None:
        _positive_fen(terms.award_cap_fen, ("单个项目支持上限", "Award cap"), "award_cap_fen")
    if terms.award_kind not in tuple(AwardKind):
        raise FundsError("支持方式不明", "unknown award kind", field="award_kind")
    _check_subsidy(terms)
    call = FundCall(
        fund_id=fund.id,
        budget_line_id=line.id,
        title=_text(terms.title, ("通知标题", "Title"), "title", limit=300),
        doc_number=(terms.doc_number or "").strip() or None,
        summary=(terms.summary or "").strip(),
        legal_basis=_text(
            terms.legal_basis, ("政策依据", "Legal basis"), "legal_basis", limit=2000
        ),
        policy_id=terms.policy_id,
        article_ref=terms.article_ref,
        rule_id=terms.rule_id,
        # stored in UTC: SQLite keeps the wall-clock digits and drops the offset
        opens_at=clock.aware(terms.opens_at).astimezone(UTC),
        closes_at=clock.aware(terms.closes_at).astimezone(UTC),
        quota=terms.quota,
        budget_fen=terms.budget_fen,
        award_cap_fen=terms.award_cap_fen,
        award_kind=terms.award_kind,
        materials=clean_materials(terms.materials),
        stages=clean_stages(terms.stages),
        criteria=clean_criteria(terms.criteria),
        performance=dict(terms.performance or {}),
        objection_days=terms.objection_days,
        return_days=terms.return_days,
        status=CallStatus.draft,
        subsidy_rate_basis=terms.subsidy_rate_basis,
        subsidy_day_count=terms.subsidy_day_count,
        subsidy_share=terms.subsidy_share,
        subsidy_cap_fen=terms.subsidy_cap_fen,
        created_by=actor.id,
    )
    if terms.rule_id:
        _ensure_rule(session, terms.rule_id)
    session.add(call)
    session.flush()
    audit(session, "funds.call_created", user=actor, actor=actor, call=call.id, title=call.title)
    return call


def _ensure_rule(session: Session, rule_id: str) -> None:
    from huiqi.matching.service import MatchingError, published_rule

    try:
        published_rule(session, rule_id)
    except MatchingError:
        raise FundsError(
            f"未找到已发布的政策规则:{rule_id}", f"no published rule {rule_id}", field="rule_id"
        ) from None


def get_call(session: Session, call_id: int, user: User | None = None) -> FundCall:
    """A call; drafts only for the fund's officers (404 for everyone else)."""
    call = session.get(FundCall, call_id)
    if call is None or (
        call.status == CallStatus.draft
        and (user is None or not manages(session, user, call.fund.department))
    ):
        raise FundsNotFound(f"未找到申报通知 #{call_id}", f"call #{call_id} not found")
    return call


def accepting(call: FundCall, now: datetime | None = None) -> bool:
    """Whether the call takes submissions at this moment (published and inside its window)."""
    moment = now or clock.now()
    return call.status == CallStatus.open and clock.aware(call.opens_at) <= moment < clock.aware(
        call.closes_at
    )


def shown_status(call: FundCall, now: datetime | None = None) -> str:
    """The call's status as people should read it: an open call past its deadline is closed."""
    if call.status == CallStatus.open and (now or clock.now()) >= clock.aware(call.closes_at):
        return CallStatus.closed
    return call.status


def list_calls(session: Session, user: User | None, *, status: str | None = None) -> list[FundCall]:
    """Published calls, newest deadline first; officers also see their own drafts."""
    rows = session.scalars(
        select(FundCall).order_by(FundCall.closes_at.desc(), FundCall.id.desc())
    ).all()
    out = []
    for call in rows:
        if call.status == CallStatus.draft and (
            user is None or not manages(session, user, call.fund.department)
        ):
            continue
        if status is not None and shown_status(call) != status:
            continue
        out.append(call)
    return out


def open_calls_by_rule(session: Session, rule_ids: Sequence[str]) -> dict[str, FundCall]:
    """The open call of each rule that has one (the one closing soonest)."""
    if not rule_ids:
        return {}
    now = clock.now()
    rows = session.scalars(
        select(FundCall)
        .where(
            FundCall.rule_id.in_(list(rule_ids)),
            FundCall.status == CallStatus.open,
            FundCall.closes_at > now,
        )
        .order_by(FundCall.closes_at)
    ).all()
    out: dict[str, FundCall] = {}
    for call in rows:
        if call.rule_id and call.rule_id not in out:
            out[call.rule_id] = call
    return out


def submitted_count(session: Session, call_id: int) -> int:
    """Applications that count against the quota: submitted and neither withdrawn nor drafts."""
    excluded = [ApplicationStatus.draft, ApplicationStatus.withdrawn]
    return int(
        session.scalar(
            select(func.count()).where(
                FundApplication.call_id == call_id, FundApplication.status.not_in(excluded)
            )
        )
        or 0
    )


def active_statuses() -> list[str]:
    """Statuses of an application still alive (not final)."""
    return [s.value for s in ApplicationStatus if s not in FINAL_APPLICATION_STATUSES]
