"""Awards of a call: the ranked list within budget, 公示 with objections, approval into the
grant ledger, payment, and the budget each fund line has left.

Legal basis: 甘工信发〔2020〕351号 (七) — the special fund is managed ("加强中小企业专项资金管理"):
no award past the call's budget or its fund line; 公示 before approval, so that anyone can
object; payment through the grant ledger and its four-eyes disbursement files (the officer who
approves awards may not build the payment file).

Budget consumption is enforced in the approving transaction: the call row is locked and moved
from 公示 to awarded in one conditional update (a second approval finds nothing to move), and
the fund line is charged by one conditional update that only succeeds while the line covers
the sum (`consumed + awards <= budget`, backed by the table's check constraint), so two calls
approved at the same moment on one line never overspend it, on SQLite or PostgreSQL.
Functions take the session first and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.dates import add_working_days
from huiqi.core.db import utcnow
from huiqi.core.errors import Conflict, Invalid
from huiqi.core.money import format_fen_en
from huiqi.events import GrantDecided
from huiqi.funds import interest, performance
from huiqi.funds.award import AwardTerms, Candidate, RankedList, rank
from huiqi.funds.models import BudgetLine, Fund, PerformanceTarget
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.models import FundApplicationEvent as ApplicationEvent
from huiqi.funds.models import FundCall as Call
from huiqi.funds.review import ReviewForbidden, level_of
from huiqi.funds.schemas import (
    ApplicationStatus,
    AwardKind,
    CallStatus,
    EventKind,
    StageLevel,
)
from huiqi.funds.timeline import record_event, tell_enterprise

LEGAL_BASIS = "甘工信发〔2020〕351号 (七)"
# Application states that hold money of the call (awarded and beyond).
HOLDING = (ApplicationStatus.awarded, ApplicationStatus.paid)
RANKABLE = (ApplicationStatus.scored, ApplicationStatus.publicity)


class AwardingError(Invalid):
    """An award step that cannot be taken; the message says why."""


class BudgetExceeded(Conflict, AwardingError):
    """The awards would take a call or a fund line past its budget."""


class AwardingConflict(Conflict, AwardingError):
    """The call is not where the step expected it (e.g. approved twice)."""


def grant_ref(call: Call) -> str:
    """The key of the call's awards in the grant ledger."""
    return f"funds-call-{call.id}"


# --- who may award ---------------------------------------------------------------------------


def ensure_awarder(session: Session, user: User, call: Call) -> None:
    """Only provincial officers of the fund's department (or admins) rank, publish and approve."""
    from huiqi.accounts import scopes
    from huiqi.funds.calls import same_department

    if user.role == Role.admin:
        return
    ok = (
        level_of(user) == StageLevel.province
        and user.department is not None
        and scopes.can_access(
            scopes.scope_of(user),
            department=call.fund.department,
            same_department=same_department(session),
        )
    )
    if not ok:
        raise ReviewForbidden(
            f"只有{call.fund.department}的省级工作人员可以办理立项",
            f"only provincial officers of {call.fund.department} award this call",
        )


# --- amounts ---------------------------------------------------------------------------------


def subsidy_terms(call: Call) -> interest.SubsidyTerms:
    """The call's interest-subsidy terms; the days counted are those of the fund's year."""
    year = call.fund.year
    return interest.SubsidyTerms(
        window_start=date(year, 1, 1),
        window_end=date(year, 12, 31),
        day_count_basis=call.subsidy_day_count or 360,
        share=Decimal(call.subsidy_share or "1"),
        cap_per_enterprise_fen=call.subsidy_cap_fen,
        legal_basis=f"{call.legal_basis};{interest.LEGAL_BASIS}",
    )


def _lpr_on(rate_basis: str, day: date) -> Decimal | None:
    """The LPR (1-year or 5-year) in force on a day, as a fraction."""
    from huiqi.finance import eligibility

    bp = eligibility.default_params().bp_on(rate_basis, day)
    return None if bp is None else Decimal(bp) / 10_000


def application_subsidy(call: Call, app: Application) -> interest.Subsidy:
    """The interest subsidy of an application's loans under the call's terms; a call on an LPR
    basis subsidises at most the LPR of each loan's start date."""
    terms = subsidy_terms(call)
    lines = []
    for loan in app.loans:
        record = interest.Loan(
            loan.contract_no,
            loan.principal_fen,
            Decimal(loan.annual_rate),
            loan.start_on,
            loan.end_on,
        )
        loan_terms = terms
        basis = call.subsidy_rate_basis or "contract"
        if basis != "contract":
            lpr = _lpr_on(basis, loan.start_on)
            if lpr is None:
                raise AwardingError(
                    f"贷款 {loan.contract_no}:{loan.start_on} 无 LPR 报价",
                    f"loan {loan.contract_no}: no LPR on {loan.start_on}",
                )
            loan_terms = replace(terms, rate_ceiling=lpr, cap_per_enterprise_fen=None)
        lines.append(interest.subsidy_line(record, loan_terms))
    before = sum(line.fen for line in lines)
    cap = terms.cap_per_enterprise_fen
    total = before if cap is None else min(cap, before)
    return interest.Subsidy(tuple(lines), before, total, total < before, terms)


def requested_fen(session: Session, call: Call, app: Application) -> tuple[int, list[str]]:
    """What the application is due before the ranking (an interest subsidy is computed from its
    loans and written on each loan), with the computation in words."""
    if call.award_kind == AwardKind.interest_subsidy:
        result = application_subsidy(call, app)
        for loan, line in zip(app.loans, result.lines, strict=True):
            loan.subsidy_fen = line.fen
        return result.total_fen, list(interest.explain(result))
    return int(app.requested_fen or 0), []


# --- the ranked list -------------------------------------------------------------------------


def consumed_by_call(session: Session, call: Call) -> int:
    """Money the call's approved awards hold."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Application.award_fen), 0)).where(
                Application.call_id == call.id, Application.status.in_(list(HOLDING))
            )
        )
        or 0
    )


def budget_left(session: Session, call: Call) -> int:
    """What the call may still award: its own budget left, and no more than its fund line has."""
    line = session.get(BudgetLine, call.budget_line_id)
    line_left = (line.budget_fen - line.consumed_fen) if line is not None else 0
    return max(0, min(call.budget_fen - consumed_by_call(session, call), line_left))


@dataclass(frozen=True)
class AwardPlan:
    """The ranked list of a call with what each line is due and why."""

    call: Call
    ranked: RankedList
    explanations: dict[int, list[str]]
    budget_left_fen: int


def plan(session: Session, call: Call) -> AwardPlan:
    """The ranked list within budget of the call's scored applications (nothing is written
    but the loans' computed subsidies)."""
    apps = session.scalars(
        select(Application).where(
            Application.call_id == call.id, Application.status.in_(list(RANKABLE))
        )
    ).all()
    explanations: dict[int, list[str]] = {}
    candidates = []
    for app in apps:
        due, words = requested_fen(session, call, app)
        explanations[app.id] = words
        candidates.append(
            Candidate(
                app.id,
                Decimal(app.score_x100 or 0) / 100,
                app.submitted_at or app.created_at,
                due,
                app.enterprise_name,
            )
        )
    left = budget_left(session, call)
    terms = AwardTerms(
        budget_fen=left,
        cap_per_award_fen=call.award_cap_fen,
        quota=call.quota,
        legal_basis=f"{call.legal_basis};{LEGAL_BASIS}",
    )
    return AwardPlan(call, rank(candidates, terms), explanations, left)


# --- 公示, objections, approval ----------------------------------------------------------------


def _lock_call(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id, with_for_update=True, populate_existing=True)
    if call is None:
        raise AwardingError(f"未找到申报通知 #{call_id}", f"call #{call_id} not found")
    return call


def start_publicity(
    session: Session, user: User, call_id: int, *, today: date | None = None
) -> AwardPlan:
    """Put the ranked list on 公示 for the call's objection period (working days)."""
    call = _lock_call(session, call_id)
    ensure_awarder(session, user, call)
    if call.status not in (CallStatus.in_review, CallStatus.closed):
        raise AwardingConflict(
            f"申报通知当前状态为 {call.status},不能公示",
            f"the call is {call.status}: it cannot go on publicity",
        )
    waiting = session.scalar(
        select(func.count())
        .select_from(Application)
        .where(
            Application.call_id == call.id,
            Application.status.in_(
                [
                    ApplicationStatus.submitted,
                    ApplicationStatus.in_review,
                    ApplicationStatus.returned,
                ]
            ),
        )
    )
    if waiting:
        raise AwardingConflict(
            f"尚有 {waiting} 份申报未完成审核(含退回修改中的),不能公示",
            f"{waiting} application(s) are still in review or returned",
        )
    result = plan(session, call)
    if not result.ranked.awarded:
        raise AwardingError("没有可支持的申报,不能公示", "nothing to award: no publicity")
    today = today or clock.today()
    call.publicity_from = today
    call.publicity_to = add_working_days(today, call.objection_days)
    call.status = CallStatus.publicity
    call.updated_at = utcnow()
    for line in result.ranked.lines:
        app = session.get(Application, line.candidate.application_id)
        assert app is not None
        app.rank = line.rank
        app.updated_at = utcnow()
        if not line.awarded:
            app.award_fen = 0
            continue
        before = app.status
        app.award_fen = line.award_fen
        app.status = ApplicationStatus.publicity
        event = record_event(
            session,
            app,
            EventKind.publicity,
            actor=user,
            status_from=before,
            detail={
                "rank": line.rank,
                "award_fen": line.award_fen,
                "reason": line.reason_zh,
                "until": call.publicity_to.isoformat(),
                "explain": result.explanations.get(app.id, []),
            },
        )
        tell_enterprise(
            session,
            app,
            event,
            f"「{call.title}」拟支持名单公示",
            f"贵企业的申报(#{app.id})列入拟支持名单(第 {line.rank} 名,拟支持 "
            f"{_yuan(line.award_fen)}),公示至 {call.publicity_to},公示期满无异议后批准立项。",
            (
                f"“{call.title}”: proposed award list published",
                f"Your application (#{app.id}) is on the proposed award list (rank {line.rank},"
                f" proposed {format_fen_en(line.award_fen)}). The list is public until"
                f" {call.publicity_to}; without objections the award is then approved.",
            ),
        )
    audit(
        session,
        "funds.publicity",
        user=user,
        call_id=call.id,
        awarded=[line.candidate.application_id for line in result.ranked.awarded],
        cut=[line.candidate.application_id for line in result.ranked.cut],
        total_fen=result.ranked.total_fen,
        budget_left_fen=result.budget_left_fen,
    )
    return result


def _yuan(fen: int) -> str:
    from huiqi.core.money import format_fen

    return format_fen(fen)


def object_to(
    session: Session, user: User, app_id: int, text: str, *, today: date | None = None
) -> ApplicationEvent:
    """Record an objection to an application on 公示 (any signed-in user, within the period)."""
    app = session.get(Application, app_id)
    if app is None or app.status != ApplicationStatus.publicity:
        raise AwardingError("该申报不在公示中", "the application is not on publicity")
    call = app.call
    today = today or clock.today()
    if call.publicity_to is None or today > call.publicity_to:
        raise AwardingError(
            f"公示期已于 {call.publicity_to} 结束,不再受理异议",
            f"the objection period ended on {call.publicity_to}",
        )
    text = (text or "").strip()
    if not 5 <= len(text) <= 2000:
        raise AwardingError(
            "异议须写明事实和理由(5–2000 字)",
            "an objection states facts and reasons (5–2000 characters)",
            field="text",
        )
    event = record_event(
        session,
        app,
        EventKind.objection,
        actor=user,
        status_from=app.status,
        detail={"text": text, "resolved": False},
    )
    audit(session, "funds.objection", user=user, application_id=app.id, text=text)
    return event


def objections(session: Session, call: Call) -> list[ApplicationEvent]:
    """Objections to the call's applications, oldest first."""
    return list(
        session.scalars(
            select(ApplicationEvent)
            .join(Application, Application.id == ApplicationEvent.application_id)
            .where(Application.call_id == call.id, ApplicationEvent.kind == EventKind.objection)
            .order_by(ApplicationEvent.id)
        )
    )


def resolutions(session: Session, call: Call) -> dict[int, dict[str, Any]]:
    """Objection event id → its resolution (the events that name it)."""
    out: dict[int, dict[str, Any]] = {}
    for event in session.scalars(
        select(ApplicationEvent)
        .join(Application, Application.id == ApplicationEvent.application_id)
        .where(
            Application.call_id == call.id,
            ApplicationEvent.kind.in_([EventKind.reviewed, EventKind.rejected]),
        )
    ):
        ref = (event.detail or {}).get("objection_id")
        if ref is not None:
            out[int(ref)] = event.detail
    return out


def open_objections(session: Session, call: Call) -> list[ApplicationEvent]:
    """Objections not yet resolved."""
    done = resolutions(session, call)
    return [e for e in objections(session, call) if e.id not in done]


def resolve_objection(
    session: Session, user: User, objection_id: int, *, upheld: bool, reason: str
) -> None:
    """Decide an objection: upheld takes the application off the list (rejected, with the
    reason the enterprise sees); dismissed keeps it. Either way with who and why."""
    event = session.get(ApplicationEvent, objection_id)
    if event is None or event.kind != EventKind.objection:
        raise AwardingError("未找到该异议", "objection not found")
    app = session.get(Application, event.application_id)
    assert app is not None
    ensure_awarder(session, user, app.call)
    if objection_id in resolutions(session, app.call):
        raise AwardingConflict("该异议已处理", "the objection was already decided")
    reason = (reason or "").strip()
    if not reason:
        raise AwardingError("处理异议须填写理由", "a decision on an objection needs a reason")
    before = app.status
    if upheld:
        app.status = ApplicationStatus.rejected
        app.decision_reason = f"公示异议成立:{reason}"
        app.award_fen = 0
        app.updated_at = utcnow()
    done = record_event(
        session,
        app,
        EventKind.rejected if upheld else EventKind.reviewed,
        actor=user,
        status_from=before,
        detail={"objection_id": objection_id, "upheld": upheld, "reasons": reason},
    )
    if upheld:
        tell_enterprise(
            session,
            app,
            done,
            f"「{app.call.title}」公示异议成立",
            f"贵企业的申报(#{app.id})在公示期间收到异议,经核实异议成立,不予支持。\n原因:{reason}",
            (
                f"“{app.call.title}”: objection upheld",
                f"An objection to your application (#{app.id}) was raised during the public"
                f" notice and upheld after checking; it is not supported.\nReason: {reason}",
            ),
        )
    audit(
        session,
        "funds.objection_resolved",
        user=user,
        application_id=app.id,
        objection_id=objection_id,
        upheld=upheld,
        reasons=reason,
    )


@dataclass(frozen=True)
class ApprovalReport:
    """What approving a call did."""

    call_id: int
    awarded: list[int]
    cut: list[int]
    total_fen: int
    grant_ids: list[int]


def approve(
    session: Session, user: User, call_id: int, *, today: date | None = None
) -> ApprovalReport:
    """After 公示 without open objections: approve the awards, charge the fund line, enter each
    award into the grant ledger (approved by this officer; another builds the payment file),
    set the performance reports due, and tell every applicant the outcome."""
    from huiqi.grants.service import grant_for_award

    call = _lock_call(session, call_id)
    ensure_awarder(session, user, call)
    if call.status != CallStatus.publicity:
        raise AwardingConflict(
            f"申报通知当前状态为 {call.status},只有公示中的名单可以批准",
            f"the call is {call.status}: only a list on publicity can be approved",
        )
    today = today or clock.today()
    if call.publicity_to is None or today <= call.publicity_to:
        raise AwardingError(
            f"公示期至 {call.publicity_to},期满后方可批准",
            f"the publicity runs until {call.publicity_to}: approve after it",
        )
    pending = open_objections(session, call)
    if pending:
        raise AwardingConflict(
            f"尚有 {len(pending)} 条公示异议未处理",
            f"{len(pending)} objection(s) are not decided yet",
        )
    listed = session.scalars(
        select(Application)
        .where(Application.call_id == call.id, Application.status == ApplicationStatus.publicity)
        .order_by(Application.rank, Application.id)
    ).all()
    total = sum(int(a.award_fen or 0) for a in listed)
    # one approval only: the call moves from 公示 to awarded in one conditional update
    moved = session.execute(
        update(Call)
        .where(Call.id == call.id, Call.status == CallStatus.publicity)
        .values(status=CallStatus.awarded, awarded_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise AwardingConflict("该名单已被批准", "the list was already approved")
    if consumed_by_call(session, call) + total > call.budget_fen:
        raise BudgetExceeded(
            f"立项总额 {_yuan(total)} 超过申报通知剩余预算",
            f"the awards ({total} fen) exceed what is left of the call's budget",
        )
    charge_line(session, call.budget_line_id, total)
    session.refresh(call)
    fund = session.get(Fund, call.fund_id)
    assert fund is not None
    report = ApprovalReport(call.id, [], [], total, [])
    for app in listed:
        before = app.status
        app.status = ApplicationStatus.approved
        record_event(session, app, EventKind.approved, actor=user, status_from=before)
        words = plan_words(session, call, app)
        grant = grant_for_award(
            session,
            ref=grant_ref(call),
            credit_code=app.credit_code,
            enterprise_name=app.enterprise_name,
            title=call.title,
            legal_basis=call.legal_basis,
            department=fund.department,
            period=fund.year,
            amount_fen=int(app.award_fen or 0),
            detail={
                "call_id": call.id,
                "application_id": app.id,
                "rank": app.rank,
                "explain": words,
            },
            actor=user.username,
        )
        app.grant_id = grant.id
        app.status = ApplicationStatus.awarded
        app.updated_at = utcnow()
        event = record_event(
            session,
            app,
            EventKind.awarded,
            actor=user,
            status_from=ApplicationStatus.approved,
            detail={"grant_id": grant.id, "award_fen": app.award_fen, "grant_status": grant.status},
        )
        schedule_reports(session, call, app, today)
        tell_enterprise(
            session,
            app,
            event,
            f"「{call.title}」已批准立项",
            f"贵企业的申报(#{app.id})已批准立项,支持 {_yuan(int(app.award_fen or 0))},"
            "将通过财政拨付到贵企业登记的收款账户"
            + ("。" if grant.account_no else ";贵企业尚未登记收款账户,请尽快登记。")
            + "请按申报通知的要求按期报送绩效情况。",
            (
                f"“{call.title}”: award approved",
                f"Your application (#{app.id}) was approved with"
                f" {format_fen_en(int(app.award_fen or 0))}, paid to your registered bank account"
                + (
                    "."
                    if grant.account_no
                    else "; no bank account is registered yet, please register one soon."
                )
                + " Report on performance as the call requires.",
            ),
        )
        report.awarded.append(app.id)
        report.grant_ids.append(grant.id)
    for app in session.scalars(
        select(Application).where(
            Application.call_id == call.id, Application.status == ApplicationStatus.scored
        )
    ):
        before = app.status
        app.status = ApplicationStatus.rejected
        app.decision_reason = (
            f"按得分排序(第 {app.rank} 名)位于预算分数线以下,本批次未获支持"
            if app.rank
            else "本批次未获支持"
        )
        app.updated_at = utcnow()
        event = record_event(
            session,
            app,
            EventKind.rejected,
            actor=user,
            status_from=before,
            detail={"reasons": app.decision_reason, "rank": app.rank},
        )
        tell_enterprise(
            session,
            app,
            event,
            f"「{call.title}」评审结果",
            f"贵企业的申报(#{app.id}){app.decision_reason}。感谢参与,可关注后续批次。",
            (
                f"“{call.title}”: review result",
                f"Your application (#{app.id})"
                + (
                    f" ranked {app.rank}, below the budget line, and is not supported in this"
                    " round."
                    if app.rank
                    else " is not supported in this round."
                )
                + " Thank you for taking part; watch for later rounds.",
            ),
        )
        report.cut.append(app.id)
    audit(
        session,
        "funds.approved",
        user=user,
        call_id=call.id,
        awarded=report.awarded,
        cut=report.cut,
        total_fen=total,
    )
    return report


def plan_words(session: Session, call: Call, app: Application) -> list[str]:
    """How an award was computed, in words (the interest subsidy's lines, else its rank)."""
    if call.award_kind == AwardKind.interest_subsidy:
        return list(interest.explain(application_subsidy(call, app)))
    return [f"评审得分 {Decimal(app.score_x100 or 0) / 100},排名第 {app.rank} 位"]


def charge_line(session: Session, line_id: int, amount_fen: int) -> None:
    """Charge a fund line in one conditional update that succeeds only while it covers it."""
    if amount_fen < 0:
        raise AwardingError("金额不能为负", "a charge cannot be negative")
    done = session.execute(
        update(BudgetLine)
        .where(
            BudgetLine.id == line_id,
            BudgetLine.consumed_fen + amount_fen <= BudgetLine.budget_fen,
        )
        .values(consumed_fen=BudgetLine.consumed_fen + amount_fen)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        line = session.get(BudgetLine, line_id, populate_existing=True)
        left = (line.budget_fen - line.consumed_fen) if line else 0
        raise BudgetExceeded(
            f"预算科目剩余 {_yuan(left)},不足以支付本批立项 {_yuan(amount_fen)}",
            f"the fund line has {left} fen left, the awards need {amount_fen} fen",
        )


# --- performance reports due -----------------------------------------------------------------


def call_schedule(call: Call) -> performance.Schedule:
    """The call's reporting schedule (its ``performance`` data, or one yearly final report)."""
    data: dict[str, Any] = dict(call.performance or {})
    return performance.Schedule(
        interval_months=int(data.get("interval_months", 12)),
        reports=int(data.get("reports", 1)),
        grace_working_days=int(data.get("grace_working_days", 10)),
        pass_ratio=Decimal(str(data.get("pass_ratio", "1"))),
        clawback_share=Decimal(str(data.get("clawback_share", "1"))),
    )


def call_targets(call: Call, app: Application) -> list[dict[str, Any]]:
    """The targets an awarded project owes: the call's template with the application's values."""
    data: dict[str, Any] = dict(call.performance or {})
    values: dict[str, Any] = dict(app.targets or {})
    out = []
    for t in data.get("targets") or []:
        key = str(t["key"])
        if key not in values:
            continue
        out.append(
            {
                "key": key,
                "name_zh": t.get("name_zh", key),
                "name_en": t.get("name_en", key),
                "unit": t.get("unit", ""),
                "higher_is_better": bool(t.get("higher_is_better", True)),
                "target": str(values[key]),
            }
        )
    return out


def schedule_reports(session: Session, call: Call, app: Application, awarded_on: date) -> None:
    """One performance-target row per report the award owes, due by the call's schedule."""
    targets = call_targets(call, app)
    for due in performance.due_reports(awarded_on, call_schedule(call)):
        session.add(
            PerformanceTarget(
                application_id=app.id,
                due_on=due.due,
                targets=targets,
                note="结项报告" if due.final else f"第 {due.number} 次报告",
                created_at=utcnow(),
            )
        )
    session.flush()


# --- payment ---------------------------------------------------------------------------------


def on_grant_decided(session: Session, event: GrantDecided) -> None:
    """A grant of a call's award was paid: the application is paid, and the call once all are."""
    if event.status != "disbursed" or not event.rule_id.startswith("funds-call-"):
        return
    app = session.scalar(select(Application).where(Application.grant_id == event.grant_id))
    if app is None or app.status == ApplicationStatus.paid:
        return
    before = app.status
    app.status = ApplicationStatus.paid
    app.updated_at = utcnow()
    record_event(
        session,
        app,
        EventKind.paid,
        actor=None,
        status_from=before,
        detail={"grant_id": event.grant_id},
    )
    unpaid = session.scalar(
        select(func.count())
        .select_from(Application)
        .where(
            Application.call_id == app.call_id,
            Application.status.in_([ApplicationStatus.awarded, ApplicationStatus.approved]),
        )
    )
    if not unpaid:
        call = session.get(Call, app.call_id)
        if call is not None and call.status == CallStatus.awarded:
            call.status = CallStatus.paid
            call.updated_at = utcnow()
