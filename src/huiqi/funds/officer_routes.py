"""Officer pages and API of the special funds: the review queue per stage (region-scoped), the
review page (checks, scoring, return, reject; experts declare conflicts first), the award page
(ranked list, cut line, 公示, objections, approval), performance and clawback, the dashboard;
and the enterprise's performance reports. Domain errors travel to `web.errors`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from huiqi.accounts.models import Role, User
from huiqi.core.bounds import Int64
from huiqi.core.errors import Invalid
from huiqi.core.money import format_fen
from huiqi.funds import awarding, dashboard, outcomes, review
from huiqi.funds.award import OUTCOME_LABELS
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.models import FundCall as Call
from huiqi.funds.performance import STATE_LABELS
from huiqi.funds.review import Decision
from huiqi.funds.schemas import (
    APPLICATION_STATUS_LABELS,
    AWARD_KIND_LABELS,
    CALL_STATUS_LABELS,
    EVENT_LABELS,
    PERFORMANCE_STATUS_LABELS,
    REVIEW_DECISION_LABELS,
    ApplicationStatus,
    CallStatus,
    ReviewDecision,
    StageLevel,
)
from huiqi.web.deps import CurrentUser, EnterpriseUser, OfficerUser, SessionDep, render
from huiqi.web.i18n import request_lang

router = APIRouter()
ELIGIBILITY_LABELS = {
    "eligible": ("符合条件", "Eligible"),
    "unknown": ("待确认(企业已补充数据)", "To confirm (data supplied)"),
    "ineligible": ("不符合条件", "Not eligible"),
}
COMMON: dict[str, Any] = {
    "fmt": format_fen,
    "app_labels": APPLICATION_STATUS_LABELS,
    "call_labels": CALL_STATUS_LABELS,
    "decision_labels": REVIEW_DECISION_LABELS,
    "event_labels": EVENT_LABELS,
    "outcome_labels": OUTCOME_LABELS,
    "perf_labels": PERFORMANCE_STATUS_LABELS,
    "state_labels": STATE_LABELS,
    "kind_labels": AWARD_KIND_LABELS,
}


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _call(session: SessionDep, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise HTTPException(status_code=404, detail="not found")
    return call


def _awardable_calls(session: SessionDep, user: User) -> list[Call]:
    """Calls whose awards the user decides (provincial officers of the fund's department)."""
    out = []
    for call in session.scalars(select(Call).order_by(Call.id.desc())):
        try:
            awarding.ensure_awarder(session, user, call)
        except review.ReviewForbidden:
            continue
        out.append(call)
    return out


# --- review ----------------------------------------------------------------------------------


@router.get("/funds/review", include_in_schema=False)
def queue_page(
    request: Request, session: SessionDep, user: OfficerUser, call: Int64 | None = None
) -> Response:
    """Applications waiting at the stages the officer reviews, per call and stage."""
    rows = review.queue(session, user, call_id=call)
    groups: dict[tuple[int, str], list[Application]] = {}
    for app in rows:
        stage = review.current_stage(app)
        groups.setdefault((app.call_id, stage.name_zh if stage else ""), []).append(app)
    return render(
        request,
        "funds/officer/queue.html",
        groups=groups,
        calls={c.id: c for c in session.scalars(select(Call))},
        level=review.level_of(user),
        region=user.region_prefix,
        selected=call,
        awardable=_awardable_calls(session, user),
        **COMMON,
    )


@router.get("/funds/review/{app_id:int}", include_in_schema=False)
def review_page(
    request: Request, app_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """One application with its checks, history and the decision forms of its stage; an
    assigned expert first declares whether it has a conflict of interest."""
    from huiqi.accounts import scopes

    app = session.get(Application, app_id)
    scope = scopes.load_scope(session, user)
    if (
        app is not None
        and review.expert_item(app.id) in scope.assignments
        and review.declaration(session, app.id, user.id) is None
    ):
        return render(request, "funds/officer/declare.html", app=app, **COMMON)
    app = review.get_for(session, user, app_id)
    stage = review.current_stage(app)
    subsidy = None
    if app.loans and app.call.subsidy_day_count:
        subsidy = awarding.application_subsidy(app.call, app)
    return render(
        request,
        "funds/officer/review.html",
        app=app,
        call=app.call,
        stage=stage,
        stages=review.stages(app.call),
        checks=review.run_checks(session, app),
        history=review.history(session, app),
        can_decide=review.can_review(session, user, app),
        expert_stage=stage is not None and stage.level == StageLevel.expert,
        can_assign=user.role == Role.admin or review.level_of(user) == StageLevel.province,
        subsidy=subsidy,
        stage_names={
            s.key: (s.name_zh if request_lang(request) == "zh" else s.name_en)
            for s in review.stages(app.call)
        },
        eligibility_labels=ELIGIBILITY_LABELS,
        **COMMON,
    )


@router.post("/funds/review/{app_id:int}/decide", include_in_schema=False)
async def decide_form(
    request: Request, app_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Record a decision taken on the review page."""
    form = await request.form()
    raw = str(form.get("decision", ""))
    try:
        kind = ReviewDecision(raw)
    except ValueError:
        raise Invalid(
            f"审核意见须为通过、打分、退回或不通过之一:{raw[:20]!r}",
            f"decision: pass, score, return or reject, not {raw[:20]!r}",
            field="decision",
        ) from None
    scores = {
        str(k)[len("score_") :]: str(v)
        for k, v in form.multi_items()
        if str(k).startswith("score_")
    }
    days_raw = str(form.get("return_days", "")).strip()
    decision = Decision(
        kind,
        str(form.get("reasons", "")),
        scores,
        int(days_raw) if days_raw.isdigit() else None,
    )
    review.decide(session, user, app_id, decision, ip=_ip(request))
    return RedirectResponse("/funds/review?done=" + str(app_id), status_code=303)


@router.post("/funds/review/{app_id:int}/declare", include_in_schema=False)
async def declare_form(
    request: Request, app_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """An assigned expert's conflict-of-interest declaration."""
    form = await request.form()
    conflict = str(form.get("has_conflict", "")) == "yes"
    review.declare(
        session, user, app_id, has_conflict=conflict, statement=str(form.get("statement", ""))
    )
    target = "/funds/review" if conflict else f"/funds/review/{app_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/funds/review/{app_id:int}/assign", include_in_schema=False)
async def assign_form(
    request: Request, app_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Assign an expert (by username) to the application."""
    form = await request.form()
    name = str(form.get("expert", "")).strip()
    expert = session.scalar(select(User).where(User.username == name))
    if expert is None:
        raise review.ReviewError(f"没有用户 {name}", f"no user {name}", field="expert")
    review.assign_expert(session, user, app_id, expert)
    return RedirectResponse(f"/funds/review/{app_id}#experts", status_code=303)


# --- award -----------------------------------------------------------------------------------


@router.get("/funds/award/{call_id:int}", include_in_schema=False)
def award_page(
    request: Request, call_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """The ranked list within budget with its cut line, 公示 and objections, approval."""
    call = _call(session, call_id)
    awarding.ensure_awarder(session, user, call)
    plan = None
    if call.status in (CallStatus.in_review, CallStatus.closed, CallStatus.publicity):
        plan = awarding.plan(session, call)
    listed = session.scalars(
        select(Application)
        .where(Application.call_id == call.id, Application.rank.is_not(None))
        .order_by(Application.rank)
    ).all()
    resolved = awarding.resolutions(session, call)
    return render(
        request,
        "funds/officer/award.html",
        call=call,
        plan=plan,
        listed=listed,
        objections=awarding.objections(session, call),
        resolved=resolved,
        left=awarding.budget_left(session, call),
        consumed=awarding.consumed_by_call(session, call),
        **COMMON,
    )


@router.post("/funds/award/{call_id:int}/publicity", include_in_schema=False)
def publicity_form(
    request: Request, call_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Put the ranked list on 公示."""
    awarding.start_publicity(session, user, call_id)
    return RedirectResponse(f"/funds/award/{call_id}#publicity", status_code=303)


@router.post("/funds/award/{call_id:int}/approve", include_in_schema=False)
def approve_form(
    request: Request, call_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Approve the awards after 公示."""
    awarding.approve(session, user, call_id)
    return RedirectResponse(f"/funds/award/{call_id}#approved", status_code=303)


@router.post("/funds/objections/{event_id:int}/resolve", include_in_schema=False)
async def resolve_form(
    request: Request, event_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Uphold or dismiss an objection, with a reason."""
    form = await request.form()
    awarding.resolve_objection(
        session,
        user,
        event_id,
        upheld=str(form.get("upheld", "")) == "yes",
        reason=str(form.get("reason", "")),
    )
    call_id = str(form.get("call_id", ""))
    return RedirectResponse(
        f"/funds/award/{call_id}#objections" if call_id.isdigit() else "/funds/review",
        status_code=303,
    )


@router.get("/funds/publicity", include_in_schema=False)
def publicity_page(request: Request, session: SessionDep) -> Response:
    """公示: proposed awards of every call on publicity — name, project, amount, until when."""
    calls = session.scalars(
        select(Call).where(Call.status == CallStatus.publicity).order_by(Call.id)
    ).all()
    rows = {
        c.id: session.scalars(
            select(Application)
            .where(Application.call_id == c.id, Application.status == ApplicationStatus.publicity)
            .order_by(Application.rank)
        ).all()
        for c in calls
    }
    return render(request, "funds/officer/publicity.html", calls=calls, rows=rows, **COMMON)


@router.post("/funds/applications/{app_id:int}/objection", include_in_schema=False)
async def objection_form(
    request: Request, app_id: Int64, session: SessionDep, user: CurrentUser
) -> Response:
    """Object to an application on 公示 (signed-in users; recorded with who and why)."""
    form = await request.form()
    awarding.object_to(session, user, app_id, str(form.get("text", "")))
    return RedirectResponse("/funds/publicity?objected=1#objected", status_code=303)


# --- performance -----------------------------------------------------------------------------


@router.get("/funds/performance", include_in_schema=False)
def performance_page(request: Request, session: SessionDep, user: OfficerUser) -> Response:
    """Awarded projects of the officer's calls: reports due, late and failed, clawback."""
    outcomes.flag_overdue(session)
    calls = _awardable_calls(session, user)
    apps = session.scalars(
        select(Application)
        .where(
            Application.call_id.in_([c.id for c in calls]),
            Application.status.in_(list(outcomes.AWARDED)),
        )
        .order_by(Application.call_id, Application.rank)
    ).all()
    return render(
        request,
        "funds/officer/performance.html",
        standings=[outcomes.standing(session, a) for a in apps],
        **COMMON,
    )


@router.post("/funds/performance/{app_id:int}/clawback", include_in_schema=False)
async def clawback_form(
    request: Request, app_id: Int64, session: SessionDep, user: OfficerUser
) -> Response:
    """Record a clawback through the grant ledger."""
    from huiqi.core.money import to_fen

    form = await request.form()
    fen = to_fen(str(form.get("amount_yuan", "")).strip() or "0")
    outcomes.clawback(session, user, app_id, fen, str(form.get("reason", "")))
    return RedirectResponse(f"/funds/performance#app-{app_id}", status_code=303)


@router.get("/funds/performance/mine", include_in_schema=False)
def my_performance(request: Request, session: SessionDep, user: EnterpriseUser) -> Response:
    """The enterprise's performance reports due, with their targets."""
    rows = outcomes.due_for_enterprise(session, user.credit_code or "")
    return render(request, "funds/officer/my_performance.html", rows=rows, **COMMON)


@router.post("/funds/performance/report/{target_id:int}", include_in_schema=False)
async def report_form(
    request: Request, target_id: Int64, session: SessionDep, user: EnterpriseUser
) -> Response:
    """The enterprise reports outcomes against one due row."""
    form = await request.form()
    values = {str(k)[len("v_") :]: str(v) for k, v in form.multi_items() if str(k).startswith("v_")}
    outcomes.submit_report(session, user, target_id, values, str(form.get("note", "")))
    return RedirectResponse("/funds/performance/mine?done=1", status_code=303)


# --- dashboard -------------------------------------------------------------------------------


@router.get("/funds/dashboard", include_in_schema=False)
def dashboard_page(request: Request, session: SessionDep, user: OfficerUser) -> Response:
    """Applications per call and stage, time at each stage, approval rates by city, budget
    used, awards by size class and industry (charts linked to their table rows)."""
    calls = None if user.role == Role.admin else [c.id for c in _awardable_calls(session, user)]
    board = dashboard.build(session, department_calls=calls)
    return render(
        request, "funds/officer/dashboard.html", board=board, chart=board.chart(), **COMMON
    )


# --- JSON API --------------------------------------------------------------------------------


class DecisionIn(BaseModel):
    """A review decision."""

    decision: ReviewDecision
    reasons: str = Field("", max_length=2000)
    scores: dict[str, str] = Field(default_factory=dict)
    return_days: int | None = Field(None, ge=1, le=60)


def _app_json(app: Application) -> dict[str, Any]:
    stage = review.current_stage(app)
    return {
        "id": app.id,
        "call_id": app.call_id,
        "credit_code": app.credit_code,
        "enterprise_name": app.enterprise_name,
        "region_code": app.region_code,
        "status": app.status,
        "stage": stage.key if stage else None,
        "score": None if app.score_x100 is None else app.score_x100 / 100,
        "rank": app.rank,
        "award_fen": app.award_fen,
        "submitted_at": app.submitted_at.isoformat() if app.submitted_at else None,
    }


@router.get("/api/v1/funds/reviews/queue")
def api_queue(
    session: SessionDep, user: OfficerUser, call: Int64 | None = None
) -> list[dict[str, Any]]:
    """Applications waiting at a stage the caller reviews (region-scoped)."""
    return [_app_json(a) for a in review.queue(session, user, call_id=call)]


@router.get("/api/v1/funds/applications/{app_id}/reviews")
def api_reviews(app_id: Int64, session: SessionDep, user: OfficerUser) -> dict[str, Any]:
    """An application's decisions with their checks, and the checks as of now."""
    app = review.get_for(session, user, app_id)
    return {
        "application": _app_json(app),
        "checks": review.run_checks(session, app),
        "reviews": [
            {
                "id": r.id,
                "stage": r.stage_key,
                "reviewer": r.reviewer_name,
                "decision": r.decision,
                "scores": r.scores,
                "score": None if r.score_x100 is None else r.score_x100 / 100,
                "reasons": r.reasons,
                "checks": r.checks,
                "return_deadline": r.return_deadline.isoformat() if r.return_deadline else None,
                "at": r.created_at.isoformat(),
            }
            for r in review.history(session, app)
        ],
    }


@router.post("/api/v1/funds/applications/{app_id}/reviews", status_code=201)
def api_decide(
    request: Request, app_id: Int64, body: DecisionIn, session: SessionDep, user: OfficerUser
) -> dict[str, Any]:
    """Take a decision at the application's current stage."""
    row = review.decide(
        session,
        user,
        app_id,
        Decision(body.decision, body.reasons, body.scores, body.return_days),
        ip=_ip(request),
    )
    app = session.get(Application, app_id)
    assert app is not None
    return {"review_id": row.id, "application": _app_json(app)}


def _plan_json(plan: awarding.AwardPlan) -> dict[str, Any]:
    return {
        "call_id": plan.call.id,
        "budget_left_fen": plan.budget_left_fen,
        "total_fen": plan.ranked.total_fen,
        "cut_rank": plan.ranked.cut_rank,
        "legal_basis": plan.ranked.terms.legal_basis,
        "lines": [
            {
                "rank": line.rank,
                "application_id": line.candidate.application_id,
                "enterprise_name": line.candidate.label,
                "score": str(line.candidate.score),
                "requested_fen": line.candidate.requested_fen,
                "award_fen": line.award_fen,
                "outcome": line.outcome,
                "code": line.code,
                "reason_zh": line.reason_zh,
                "reason_en": line.reason_en,
                "explain": plan.explanations.get(line.candidate.application_id, []),
            }
            for line in plan.ranked.lines
        ],
    }


@router.get("/api/v1/funds/calls/{call_id}/award")
def api_award(call_id: Int64, session: SessionDep, user: OfficerUser) -> dict[str, Any]:
    """The call's ranked list within budget (what 公示 would publish)."""
    call = _call(session, call_id)
    awarding.ensure_awarder(session, user, call)
    return _plan_json(awarding.plan(session, call))


@router.post("/api/v1/funds/calls/{call_id}/publicity", status_code=201)
def api_publicity(call_id: Int64, session: SessionDep, user: OfficerUser) -> dict[str, Any]:
    """Put the ranked list on 公示."""
    plan = awarding.start_publicity(session, user, call_id)
    return {**_plan_json(plan), "publicity_to": str(plan.call.publicity_to)}


@router.post("/api/v1/funds/calls/{call_id}/approve")
def api_approve(call_id: Int64, session: SessionDep, user: OfficerUser) -> dict[str, Any]:
    """Approve the awards after 公示 (they enter the grant ledger)."""
    report = awarding.approve(session, user, call_id)
    return {
        "call_id": report.call_id,
        "awarded": report.awarded,
        "cut": report.cut,
        "total_fen": report.total_fen,
        "grant_ids": report.grant_ids,
    }
