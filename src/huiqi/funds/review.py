"""Multi-level review of applications (县级初审 → 市级复审 → 专家评审 → 省级审定).

Legal basis: 甘工信发〔2020〕351号 (七) — county-level and higher governments each run special
funds and manage them ("县级以上各级政府…安排中小企业发展专项资金,加强中小企业专项资金管理"), so
each level checks the applications of its own area; (二十四) — the 专精特新 pool is run as a
"省市县三级培育工作体系"; (四十) — decisions are followed before, during and after.

Who reviews which application is one rule on `accounts.scopes.can_access`:

- a **county** stage is reviewed by officers whose region prefix is a 6-digit county code,
  a **city** stage by officers with a 4-digit city prefix — each only for applications of
  enterprises registered in its area;
- a **province** stage by officers of the fund's department without a region limit;
- an **expert** stage by users the application is assigned to (``user_assignment`` kind
  ``funds_application``), and only after they declared no conflict of interest;
- administrators reach everything.

Every decision is a ``funds_review`` row with the checks run at that moment, an application
event, an audit event (who and why) and a notification to the enterprise. Functions take the
session first and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role, User
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.dates import add_working_days
from huiqi.core.db import utcnow
from huiqi.core.errors import Conflict, Forbidden, Invalid, NotFound
from huiqi.funds.calls import same_department
from huiqi.funds.models import ConflictDeclaration
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.models import FundCall as Call
from huiqi.funds.models import FundLoan as Loan
from huiqi.funds.models import FundReview as ReviewRow
from huiqi.funds.schemas import (
    EXPERT_ASSIGNMENT_KIND,
    STAGE_LEVEL_LABELS,
    ApplicationStatus,
    EventKind,
    ReviewDecision,
    StageLevel,
)
from huiqi.funds.timeline import record_event, tell_enterprise

LEGAL_BASIS = "甘工信发〔2020〕351号 (七)、(二十四)、(四十)"
REVIEWABLE = (ApplicationStatus.submitted, ApplicationStatus.in_review)
CLOSED_FOR_DUPLICATES = (
    ApplicationStatus.draft,
    ApplicationStatus.rejected,
    ApplicationStatus.withdrawn,
)
MAX_REASON = 2000


class ReviewError(Invalid):
    """A review decision that cannot be taken; the message says why."""


class ReviewForbidden(Forbidden, ReviewError):
    """The user may not review or see this application."""


class ReviewNotFound(NotFound, ReviewError):
    """No such application (or none the user may see)."""


class ReviewConflict(Conflict, ReviewError):
    """The application is no longer where the decision expected it."""


# --- stages and who reviews them -------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """One review stage of a call."""

    index: int
    key: str
    level: StageLevel
    name_zh: str
    name_en: str
    days: int


def stages(call: Call) -> list[Stage]:
    """The call's review stages in order."""
    out = []
    for i, raw in enumerate(call.stages or []):
        level = StageLevel(raw.get("level", "province"))
        zh, en = STAGE_LEVEL_LABELS[level]
        out.append(
            Stage(
                i,
                str(raw.get("key") or level.value),
                level,
                str(raw.get("name_zh") or zh),
                str(raw.get("name_en") or en),
                int(raw.get("days") or 10),
            )
        )
    return out


def current_stage(app: Application) -> Stage | None:
    """The stage an application waits at (None once it passed every stage)."""
    all_ = stages(app.call)
    return all_[app.stage_index] if 0 <= app.stage_index < len(all_) else None


def level_of(user: User) -> StageLevel | None:
    """The officer level a user reviews at, from its region prefix (None: not an officer)."""
    if user.role != Role.officer:
        return None
    prefix = user.region_prefix or ""
    if not prefix:
        return StageLevel.province
    return StageLevel.county if len(prefix) >= 6 else StageLevel.city


def expert_item(app_id: int) -> scopes.Assignment:
    """The assignment that gives an expert one application."""
    return scopes.Assignment(EXPERT_ASSIGNMENT_KIND, str(app_id))


def declaration(session: Session, app_id: int, user_id: int) -> ConflictDeclaration | None:
    """A user's conflict-of-interest declaration for an application."""
    return session.scalar(
        select(ConflictDeclaration).where(
            ConflictDeclaration.application_id == app_id, ConflictDeclaration.user_id == user_id
        )
    )


def _officer_reaches(session: Session, scope: scopes.Scope, app: Application) -> bool:
    """An officer of the fund's department whose region (none: the province) holds the
    enterprise reaches the application."""
    region = app.region_code or ""
    if scope.region_prefix and not region:
        return False  # an application without a region belongs to no county or city
    return scopes.can_access(
        scope,
        region=region,
        department=app.call.fund.department,
        same_department=same_department(session),
    )


def can_view(session: Session, user: User, app: Application) -> bool:
    """Whether the user may open the application's file (officers of its area and level,
    the fund's provincial officers, assigned experts who declared no conflict, admins)."""
    scope = scopes.load_scope(session, user)
    if scope.unrestricted:
        return True
    if user.role != Role.officer:
        return False
    if expert_item(app.id) in scope.assignments:
        found = declaration(session, app.id, user.id)
        return found is not None and not found.has_conflict
    return _officer_reaches(session, scope, app)


def can_review(session: Session, user: User, app: Application) -> bool:
    """Whether the user may decide at the stage the application waits at now."""
    stage = current_stage(app)
    if stage is None or app.status not in REVIEWABLE:
        return False
    scope = scopes.load_scope(session, user)
    if scope.unrestricted:
        return True
    if user.role != Role.officer:
        return False
    if stage.level == StageLevel.expert:
        if expert_item(app.id) not in scope.assignments:
            return False
        found = declaration(session, app.id, user.id)
        return found is not None and not found.has_conflict
    if level_of(user) != stage.level:
        return False
    return _officer_reaches(session, scope, app)


def get_for(session: Session, user: User, app_id: int) -> Application:
    """The application, if the user may see it (404 otherwise, so ids leak nothing)."""
    app = session.get(Application, app_id)
    if app is None or app.status == ApplicationStatus.draft or not can_view(session, user, app):
        raise ReviewNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    return app


def queue(
    session: Session, user: User, *, call_id: int | None = None, limit: int = 500
) -> list[Application]:
    """Applications waiting at a stage the user reviews, longest waiting first (an assigned
    expert sees its applications before declaring, so that it can declare)."""
    scope = scopes.load_scope(session, user)
    if user.role != Role.officer and not scope.unrestricted:
        return []
    q = select(Application).where(Application.status.in_(list(REVIEWABLE)))
    if call_id is not None:
        q = q.where(Application.call_id == call_id)
    experts = [int(a.ref) for a in scope.assignments if a.kind == EXPERT_ASSIGNMENT_KIND]
    if scope.region_prefix:
        q = q.where(
            or_(
                Application.region_code.like(f"{scope.region_prefix}%"),
                Application.id.in_(experts),
            )
        )
    q = q.order_by(Application.stage_entered_at, Application.submitted_at, Application.id)
    out = []
    for app in session.scalars(q):
        stage = current_stage(app)
        if stage is None:
            continue
        if stage.level == StageLevel.expert and not scope.unrestricted:
            mine = expert_item(app.id) in scope.assignments
            found = declaration(session, app.id, user.id) if mine else None
            if mine and (found is None or not found.has_conflict):
                out.append(app)
        elif can_review(session, user, app):
            out.append(app)
        if len(out) >= limit:
            break
    return out


# --- checks ----------------------------------------------------------------------------------


def _check(code: str, ok: bool, zh: str, en: str, **detail: Any) -> dict[str, Any]:
    return {"code": code, "ok": ok, "zh": zh, "en": en, **detail}


def _text(value: Any) -> str:
    """A registry value as comparable text (numbers without trailing zeros)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(value).strip()


def consistency_checks(session: Session, app: Application) -> list[dict[str, Any]]:
    """Each pre-filled value at submission against the registry now (read the same way), and
    the values the enterprise self-reported."""
    from huiqi.funds.applications import prefill_values

    now = prefill_values(session, app.credit_code)
    out = []
    for key, item in sorted((app.prefill or {}).items()):
        if not isinstance(item, Mapping):
            continue
        name = str(item.get("zh") or key) + (f"({item['year']})" if item.get("year") else "")
        then = item.get("value")
        if item.get("self_reported"):
            out.append(
                _check(
                    "self_reported",
                    False,
                    f"{name}:企业自报 {then},待核实",
                    f"{key}: self-reported {then}, to be verified",
                    field=key,
                )
            )
        current = now.get(key)
        if current is None:
            continue
        if _text(then) != _text(current.get("value")):
            out.append(
                _check(
                    "data_changed",
                    False,
                    f"{name}:提交时为 {then},企业库现为 {current.get('value')}",
                    f"{key}: {then} at submission, {current.get('value')} in the registry now",
                    field=key,
                    at_submission=_text(then),
                    now=_text(current.get("value")),
                )
            )
    if not any(c["code"] == "data_changed" for c in out):
        out.append(_check("data_changed", True, "申报数据与企业库一致", "data match the registry"))
    return out


def duplicate_checks(session: Session, app: Application) -> list[dict[str, Any]]:
    """The same project (enterprise + project code or contract number) or the same loan in
    another live application, of this call or another."""
    out = []
    keys = []
    if app.project_code:
        keys.append(Application.project_code == app.project_code)
    if app.contract_no:
        keys.append(Application.contract_no == app.contract_no)
    others: list[Application] = []
    if keys:
        others = list(
            session.scalars(
                select(Application).where(
                    Application.credit_code == app.credit_code,
                    Application.id != app.id,
                    Application.status.not_in(list(CLOSED_FOR_DUPLICATES)),
                    or_(*keys),
                )
            )
        )
    contracts = [loan.contract_no for loan in app.loans]
    if contracts:
        loan_apps = session.scalars(
            select(Application)
            .join(Loan, Loan.application_id == Application.id)
            .where(
                Loan.contract_no.in_(contracts),
                Application.id != app.id,
                Application.status.not_in(list(CLOSED_FOR_DUPLICATES)),
            )
        ).all()
        others += [a for a in loan_apps if a not in others]
    for other in others:
        out.append(
            _check(
                "duplicate_funding",
                False,
                f"同一项目或贷款已在「{other.call.title}」申报 #{other.id}({other.status})",
                f"the same project or loan is in application #{other.id} to "
                f"“{other.call.title}” ({other.status})",
                application_id=other.id,
                call_id=other.call_id,
            )
        )
    if not others:
        out.append(
            _check("duplicate_funding", True, "未发现重复申报", "no duplicate funding found")
        )
    return out


def risk_checks(session: Session, app: Application) -> list[dict[str, Any]]:
    """The grant module's risk flags about the enterprise."""
    from huiqi.grants.service import enterprise_risk_flags

    flags = enterprise_risk_flags(session, app.credit_code)
    out = [
        _check(
            f"risk_{f['code']}",
            False,
            f["zh"],
            f["en"],
            **{k: v for k, v in f.items() if k not in ("code", "zh", "en")},
        )
        for f in flags
    ]
    if app.eligibility and app.eligibility != "eligible":
        out.append(
            _check(
                "eligibility",
                False,
                "申报时政策匹配结果为“待确认”,请核实企业补充的数据"
                if app.eligibility == "unknown"
                else "申报时政策匹配结果为不符合条件",
                f"eligibility at submission: {app.eligibility}",
            )
        )
    if not out:
        out.append(_check("risk", True, "未发现风险提示", "no risk flags"))
    return out


def run_checks(session: Session, app: Application) -> list[dict[str, Any]]:
    """Every recorded check: data consistency, duplicate funding, risk flags."""
    return (
        consistency_checks(session, app)
        + duplicate_checks(session, app)
        + risk_checks(session, app)
    )


# --- scoring ---------------------------------------------------------------------------------


def score_total(call: Call, scores: Mapping[str, Any]) -> tuple[dict[str, str], int]:
    """Validate points per criterion (0 … max) and give the weighted total in hundredths."""
    criteria = call.criteria or []
    if not criteria:
        return {}, 0
    clean: dict[str, str] = {}
    total = Decimal(0)
    for c in criteria:
        key = str(c["key"])
        raw = scores.get(key)
        name = c.get("name_zh") or key
        if raw is None or str(raw).strip() == "":
            raise ReviewError(
                f"请为评分项「{name}」打分", f"score the criterion {key}", field=f"score_{key}"
            )
        try:
            points = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ReviewError(
                f"评分项「{name}」须为数字:{raw}",
                f"{key}: not a number: {raw}",
                field=f"score_{key}",
            ) from None
        top = Decimal(str(c.get("max_points", 100)))
        if not points.is_finite() or not Decimal(0) <= points <= top:
            raise ReviewError(
                f"评分项「{name}」须在 0 到 {top} 分之间:{raw}",
                f"{key}: points must be 0–{top}: {raw}",
                field=f"score_{key}",
            )
        if points != points.quantize(Decimal("0.01")):
            raise ReviewError(
                f"评分项「{name}」最多两位小数",
                f"{key}: at most two decimals",
                field=f"score_{key}",
            )
        clean[key] = format(points.normalize(), "f")
        total += points * Decimal(str(c.get("weight", 1)))
    return clean, int((total * 100).to_integral_value())


def scores_for(session: Session, app: Application, stage_index: int) -> list[ReviewRow]:
    """The scoring reviews of one stage (one per reviewer, the latest counts)."""
    rows = session.scalars(
        select(ReviewRow)
        .where(
            ReviewRow.application_id == app.id,
            ReviewRow.stage_index == stage_index,
            ReviewRow.decision == ReviewDecision.scored,
        )
        .order_by(ReviewRow.id)
    ).all()
    latest: dict[str, ReviewRow] = {}
    for row in rows:
        latest[row.reviewer_name] = row
    return list(latest.values())


def experts_of(session: Session, app: Application) -> list[int]:
    """The users assigned the application who did not declare a conflict."""
    ids = scopes.assigned_user_ids(session, expert_item(app.id))
    conflicted = set(
        session.scalars(
            select(ConflictDeclaration.user_id).where(
                ConflictDeclaration.application_id == app.id,
                ConflictDeclaration.has_conflict.is_(True),
            )
        )
    )
    return [i for i in ids if i not in conflicted]


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What a reviewer decided, as the form or the API gives it."""

    decision: ReviewDecision
    reasons: str = ""
    scores: Mapping[str, Any] | None = None
    return_days: int | None = None  # working days the enterprise has to correct


def _clean_reason(text: str, *, required: bool, what: tuple[str, str]) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ReviewError(f"{what[0]}须填写理由", f"{what[1]} needs a reason", field="reasons")
    if len(text) > MAX_REASON:
        raise ReviewError(
            f"理由最多 {MAX_REASON} 字", f"reason: at most {MAX_REASON} characters", field="reasons"
        )
    return text


def decide(
    session: Session,
    user: User,
    app_id: int,
    decision: Decision,
    *,
    ip: str | None = None,
    today: date | None = None,
) -> ReviewRow:
    """Take a decision at the application's current stage: pass (advance), score, return for
    correction with a deadline, or reject with a reason the enterprise sees."""
    app = session.get(Application, app_id, with_for_update=True)
    if app is None:
        raise ReviewNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    stage = current_stage(app)
    if stage is None or app.status not in REVIEWABLE:
        raise ReviewConflict(
            f"申报 #{app.id} 当前不在审核环节(状态:{app.status})",
            f"application #{app.id} is not waiting for review (status {app.status})",
        )
    if not can_review(session, user, app):
        if not can_view(session, user, app):
            raise ReviewNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
        raise ReviewForbidden(
            f"申报 #{app.id} 正在「{stage.name_zh}」环节,不属于您的审核范围",
            f"application #{app.id} is at “{stage.name_en}”, not a stage you review",
        )
    kind = decision.decision
    labels = {
        ReviewDecision.passed: ("审核通过", "a pass"),
        ReviewDecision.scored: ("评分", "a score"),
        ReviewDecision.returned: ("退回修改", "a return"),
        ReviewDecision.rejected: ("不予通过", "a rejection"),
    }
    reasons = _clean_reason(
        decision.reasons,
        required=kind != ReviewDecision.passed,
        what=labels[kind],
    )
    if kind == ReviewDecision.passed and app.call.criteria and stage.level == StageLevel.expert:
        raise ReviewError("专家评审须按评分标准打分", "experts score by the criteria")
    if kind == ReviewDecision.scored and stage.level in (StageLevel.county, StageLevel.city):
        raise ReviewError(
            "县、市级环节审核通过或退回,评分在专家评审或省级审定环节进行",
            "county and city stages pass or return; scoring is for experts and the province",
        )
    checks = run_checks(session, app)
    scores: dict[str, str] = {}
    total: int | None = None
    if kind == ReviewDecision.scored:
        scores, total = score_total(app.call, decision.scores or {})
    deadline: date | None = None
    if kind == ReviewDecision.returned:
        days = decision.return_days if decision.return_days is not None else app.call.return_days
        if not 1 <= days <= 60:
            raise ReviewError(
                "补正期限须为 1–60 个工作日",
                "the correction deadline must be 1–60 working days",
                field="return_days",
            )
        deadline = add_working_days(today or clock.today(), days)
    row = ReviewRow(
        application_id=app.id,
        stage_index=stage.index,
        stage_key=stage.key,
        reviewer_id=user.id,
        reviewer_name=user.username,
        decision=kind,
        scores=scores,
        score_x100=total,
        reasons=reasons,
        checks=checks,
        return_deadline=deadline,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    before = app.status
    advance = kind == ReviewDecision.passed or (
        kind == ReviewDecision.scored and _stage_scored(session, app, stage)
    )
    if kind == ReviewDecision.returned:
        app.status = ApplicationStatus.returned
        app.return_deadline = deadline
        app.decision_reason = reasons
        event_kind = EventKind.returned
    elif kind == ReviewDecision.rejected:
        app.status = ApplicationStatus.rejected
        app.decision_reason = reasons
        event_kind = EventKind.rejected
    elif advance:
        if kind == ReviewDecision.scored:
            app.score_x100 = _stage_score(session, app, stage)
        app.stage_index += 1
        app.stage_entered_at = utcnow()
        app.status = (
            ApplicationStatus.in_review
            if app.stage_index < len(stages(app.call))
            else ApplicationStatus.scored
        )
        if app.status == ApplicationStatus.scored and app.score_x100 is None:
            app.score_x100 = 0
        event_kind = (
            EventKind.scored if app.status == ApplicationStatus.scored else EventKind.reviewed
        )
    else:
        app.status = ApplicationStatus.in_review
        event_kind = EventKind.reviewed
    app.updated_at = utcnow()
    event = record_event(
        session,
        app,
        event_kind,
        actor=user,
        status_from=before,
        detail={
            "stage": stage.key,
            "stage_zh": stage.name_zh,
            "decision": str(kind),
            "reasons": reasons,
            "review_id": row.id,
            "advanced": advance,
            **({"score_x100": total} if total is not None else {}),
            **({"return_deadline": deadline.isoformat()} if deadline else {}),
        },
    )
    audit(
        session,
        f"funds.review.{kind}",
        user=user,
        ip=ip,
        application_id=app.id,
        stage=stage.name_zh,
        reasons=reasons,
        checks_failed=[c["zh"] for c in checks if not c["ok"]],
    )
    subject, body = _message(app, stage, kind, reasons, deadline, advanced=advance)
    english = _message_en(app, stage, kind, reasons, deadline, advanced=advance)
    tell_enterprise(session, app, event, subject, body, english)
    return row


def _stage_scored(session: Session, app: Application, stage: Stage) -> bool:
    """Whether every reviewer the stage needs has scored (experts: all assigned, no conflict)."""
    if stage.level != StageLevel.expert:
        return True
    done = {r.reviewer_id for r in scores_for(session, app, stage.index)}
    needed = set(experts_of(session, app))
    return bool(done) and needed <= done


def _stage_score(session: Session, app: Application, stage: Stage) -> int:
    """The stage's score: the mean of its reviewers' latest scores, in hundredths."""
    rows = [r.score_x100 for r in scores_for(session, app, stage.index) if r.score_x100 is not None]
    if not rows:
        return 0
    return int((Decimal(sum(rows)) / len(rows)).to_integral_value())


def _message(
    app: Application,
    stage: Stage,
    kind: ReviewDecision,
    reasons: str,
    deadline: date | None,
    *,
    advanced: bool,
) -> tuple[str, str]:
    """What the enterprise is told about a decision."""
    title = app.call.title
    head = f"{app.enterprise_name}:" if app.enterprise_name else "贵企业:"
    if kind == ReviewDecision.returned:
        return (
            f"「{title}」申报被退回修改",
            f"{head}\n贵企业的申报(#{app.id})在「{stage.name_zh}」环节被退回修改。\n"
            f"原因:{reasons}\n请在 {deadline} 前修改并重新提交,逾期视为放弃。",
        )
    if kind == ReviewDecision.rejected:
        return (
            f"「{title}」申报未通过审核",
            f"{head}\n贵企业的申报(#{app.id})在「{stage.name_zh}」环节未通过。\n原因:{reasons}\n"
            "如有异议,请联系主管部门。",
        )
    if app.status == ApplicationStatus.scored:
        return (
            f"「{title}」申报已完成评审",
            f"{head}\n贵企业的申报(#{app.id})已通过全部审核环节,等待按得分排序确定拟支持名单并公示。",
        )
    nxt = current_stage(app)
    if advanced and nxt is not None:
        return (
            f"「{title}」申报已通过{stage.name_zh}",
            f"{head}\n贵企业的申报(#{app.id})已通过「{stage.name_zh}」,进入「{nxt.name_zh}」。",
        )
    return (
        f"「{title}」申报正在{stage.name_zh}",
        f"{head}\n贵企业的申报(#{app.id})已有评审意见,正在「{stage.name_zh}」环节。",
    )


def _message_en(
    app: Application,
    stage: Stage,
    kind: ReviewDecision,
    reasons: str,
    deadline: date | None,
    *,
    advanced: bool,
) -> tuple[str, str]:
    """The same message in English (reasons stay as the reviewer wrote them)."""
    title = app.call.title
    head = f"{app.enterprise_name}:" if app.enterprise_name else "Dear enterprise:"
    own = f"Your application (#{app.id})"
    if kind == ReviewDecision.returned:
        return (
            f"“{title}”: application returned for changes",
            f"{head}\n{own} was returned for changes at the “{stage.name_en}” stage.\n"
            f"Reason: {reasons}\nChange and resubmit it by {deadline}; later it counts as"
            " withdrawn.",
        )
    if kind == ReviewDecision.rejected:
        return (
            f"“{title}”: application not approved",
            f"{head}\n{own} did not pass the “{stage.name_en}” stage.\nReason: {reasons}\n"
            "To dispute it, contact the department in charge.",
        )
    if app.status == ApplicationStatus.scored:
        return (
            f"“{title}”: review complete",
            f"{head}\n{own} passed every review stage; the proposed award list is drawn up by"
            " score and published.",
        )
    nxt = current_stage(app)
    if advanced and nxt is not None:
        return (
            f"“{title}”: passed {stage.name_en}",
            f"{head}\n{own} passed “{stage.name_en}” and moved on to “{nxt.name_en}”.",
        )
    return (
        f"“{title}”: at {stage.name_en}",
        f"{head}\n{own} has review comments and is at the “{stage.name_en}” stage.",
    )


# --- experts ---------------------------------------------------------------------------------


def assign_expert(session: Session, actor: User, app_id: int, expert: User) -> None:
    """Give an application to an expert (a provincial officer of the fund or an admin assigns)."""
    app = get_for(session, actor, app_id)
    if actor.role != Role.admin and level_of(actor) != StageLevel.province:
        raise ReviewForbidden(
            "只有省级工作人员可以指派专家", "only provincial officers assign experts"
        )
    if expert.role != Role.officer or expert.region_prefix:
        raise ReviewError(
            "专家须为未限定地区的评审账户", "an expert is a reviewer account without a region"
        )
    scopes.assign(session, expert, expert_item(app.id), actor=actor)
    record_event(
        session,
        app,
        EventKind.reviewed,
        actor=actor,
        status_from=app.status,
        detail={"expert_assigned": expert.username},
    )


def declare(
    session: Session, user: User, app_id: int, *, has_conflict: bool, statement: str
) -> ConflictDeclaration:
    """An assigned expert declares, before seeing the file, whether it has a conflict of
    interest; with a conflict the file stays closed to it and the assigner is to replace it."""
    app = session.get(Application, app_id)
    scope = scopes.load_scope(session, user)
    if app is None or expert_item(app_id) not in scope.assignments:
        raise ReviewNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    if declaration(session, app_id, user.id) is not None:
        raise ReviewConflict("您已就此申报作出利益冲突声明", "you already declared for this file")
    statement = _clean_reason(
        statement, required=has_conflict, what=("声明存在利益冲突", "a conflict")
    )
    row = ConflictDeclaration(
        application_id=app_id,
        user_id=user.id,
        has_conflict=has_conflict,
        statement=statement,
        declared_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        "funds.conflict_declared",
        user=user,
        application_id=app_id,
        has_conflict=has_conflict,
        statement=statement,
    )
    return row


def history(session: Session, app: Application) -> Sequence[ReviewRow]:
    """Every decision on the application, oldest first."""
    return session.scalars(
        select(ReviewRow).where(ReviewRow.application_id == app.id).order_by(ReviewRow.id)
    ).all()
