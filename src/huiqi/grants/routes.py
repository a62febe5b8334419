"""Grant pages and API: officers' review queue, detail, ledger and disbursement files; the
enterprise's own grants and bank account; the public notice list (公示)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role, User
from huiqi.core.bounds import Int64
from huiqi.core.money import format_fen
from huiqi.grants import queue as gq
from huiqi.grants import service
from huiqi.grants.models import STATUS_LABELS, Disbursement, Grant, GrantStatus
from huiqi.grants.schemas import (
    BankAccountInput,
    GrantError,
    LedgerMismatch,
    mask_account,
)
from huiqi.grants.sources import KIND_LABELS
from huiqi.web import forms
from huiqi.web.deps import (
    EnterpriseUser,
    OfficerUser,
    OptionalUser,
    SessionDep,
    render,
)

router = APIRouter()
COMMON: dict[str, Any] = {"fmt": format_fen, "labels": STATUS_LABELS, "mask": mask_account}
FORBIDDEN = "只能处理本部门政策的项目 / only grants of your department's rules"


def _scope(session: Session, user: User) -> service.Scope:
    """The rule departments the user may review (None: all, for admin)."""
    return service.review_scope(
        session,
        role=Role(user.role),
        department=user.department,
        region_prefix=user.region_prefix,
    )


@router.get("/grants", include_in_schema=False)
def queue(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    status: str = "pending",
    flag: str = "",
    region: str = "",
    min_yuan: str = "",
    max_yuan: str = "",
    q: str = "",
    sort: str = "newest",
    page: int = 1,
) -> Response:
    """The review queue (pending by default) of the officer's department's rules: filtered by
    risk flag, region, amount and name, sorted and paged, with held approved grants."""
    from huiqi.core.codes import gansu_prefectures

    scope = _scope(session, user)
    error = ""
    try:
        flt = gq.QueueFilter.parse(
            status=status, flag=flag, region=region, min_yuan=min_yuan, max_yuan=max_yuan, q=q
        )
    except gq.QueueFilterError as exc:
        error, flt = str(exc), gq.QueueFilter()
    result = gq.queue_page(session, flt, departments=scope, sort=sort, page=page)
    held = [
        g
        for g in service.grants(session, status=GrantStatus.approved, departments=scope)
        if any(f["code"] in service.HOLD_FLAGS for f in g.risk_flags or [])
    ]
    args = flt.query_args()
    return render(
        request,
        "grants/queue.html",
        status_code=422 if error else 200,
        result=result,
        rows=result.rows,
        flt=flt,
        args=args,
        sort=sort if sort in gq.SORTS else "newest",
        sorts=gq.SORT_LABELS,
        page_url=lambda n: "/grants?" + urlencode({**args, "sort": sort, "page": n}),
        flags=gq.flag_counts(session, status=flt.status or "pending", departments=scope),
        prefectures=gansu_prefectures(),
        held=held,
        status=flt.status,
        statuses=list(GrantStatus),
        totals=service.totals_by_status(session, departments=scope),
        department=user.department if scope is not None else None,
        risk=service.risk_settings(),
        summary=gq.BatchSummary.from_query(dict(request.query_params)),
        error=error,
        **COMMON,
    )


@router.post("/grants/review", include_in_schema=False)
async def review(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Approve or reject the ticked grants, or every pending grant of the filtered set; tell
    the enterprises whose grant waits for a bank account."""
    form = await request.form()
    scope = _scope(session, user)
    text = {k: str(form.get(k, "")) for k in ("flag", "region", "min_yuan", "max_yuan", "q")}
    flt = gq.QueueFilter.parse(**text)
    if form.get("scope") == "filtered":
        ids = gq.filtered_ids(session, flt, departments=scope)
    else:
        ids = forms.ids(form.getlist("grant_id"), "grant_id", ("补贴", "grant"))
    if not ids:
        raise HTTPException(
            status_code=422, detail="请先勾选要审核的项目 / tick at least one grant"
        )
    decision = str(form.get("decision", ""))
    report = service.review(
        session,
        ids,
        decision,
        actor=user.username,
        reason=str(form.get("reason", "")),
        ack_risk=form.get("ack_risk") == "on",
        departments=scope,
    )
    notified = gq.ask_for_bank_accounts(session, report)
    summary = gq.summarise(decision, report, notified)
    back = {**flt.query_args(), **summary.query()}
    return RedirectResponse(f"/grants?{urlencode(back)}#review-message", status_code=303)


@router.get("/grants/ledger", include_in_schema=False)
def ledger_page(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Every state change, newest first, and whether the hash chains verify."""
    return render(
        request,
        "grants/ledger.html",
        entries=service.ledger(session, departments=_scope(session, user)),
        problems=service.verify_ledger(session),
        **COMMON,
    )


def _disbursements_page(
    request: Request, user: User, session: Session, *, error: str = "", status_code: int = 200
) -> Response:
    scope = _scope(session, user)
    batches = [
        b
        for b in service.batches(session, departments=scope)
        if service.batch_in_scope(session, b.id, scope)
    ]
    ready = service.disbursable(session, departments=scope)
    return render(
        request,
        "grants/disbursements.html",
        status_code=status_code,
        batches=batches,
        ready=ready,
        # four-eyes: who approved each ready grant; the viewer's own approvals are someone else's
        approvers=service.approvers(session, [g.id for g in ready]),
        me=user.username,
        error=error,
        **COMMON,
    )


@router.get("/grants/disbursements", include_in_schema=False)
def disbursements(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Disbursement batches and the approved grants ready for the next one (own department)."""
    return _disbursements_page(request, user, session)


@router.post("/grants/disbursements", include_in_schema=False)
def create_disbursement(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Put every ready approved grant that the user did not approve into a new batch (four-eyes;
    the ledger is verified first; enterprises are told)."""
    try:
        batch = service.create_disbursement(
            session, actor=user.username, departments=_scope(session, user)
        )
    except GrantError as exc:
        # the page is shown again with the refusal and the error's own status
        session.rollback()
        return _disbursements_page(request, user, session, error=str(exc), status_code=exc.status)
    return RedirectResponse(f"/grants/disbursements#batch-{batch.id}", status_code=303)


@router.get("/grants/disbursements/{batch_id:int}.{ext}", include_in_schema=False)
def disbursement_file(
    batch_id: Int64,
    ext: str,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """The disbursement file of a batch, as CSV or XLSX."""
    if session.get(Disbursement, batch_id) is None or ext not in ("csv", "xlsx"):
        raise HTTPException(status_code=404, detail="not found")
    if not service.batch_in_scope(session, batch_id, _scope(session, user)):
        raise HTTPException(status_code=403, detail=FORBIDDEN)
    problems = service.batch_problems(session, batch_id)
    if problems:
        # a payment file is never handed out for grants the ledger does not prove
        raise LedgerMismatch(
            "台账校验未通过:" + ";".join(problems), "ledger check failed: " + "; ".join(problems)
        )
    rows = service.disbursement_rows(session, batch_id)
    if ext == "csv":
        body, media = service.disbursement_csv(rows), "text/csv; charset=utf-8"
    else:
        body = service.disbursement_xlsx(rows)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="disbursement-{batch_id}.{ext}"'},
    )


@router.get("/grants/public", include_in_schema=False)
def public_page(
    request: Request,
    session: SessionDep,
    _viewer: OptionalUser,
) -> Response:
    """公示: approved no-application grants — enterprise name, policy and amount only."""
    # The visitor is resolved through this request's session: resolving it in a second
    # session while this one holds SQLite's write lock would wait on itself.
    return render(request, "grants/public.html", rows=service.public_notice(session), **COMMON)


@router.get("/grants/mine", include_in_schema=False)
def mine(
    request: Request,
    user: EnterpriseUser,
    session: SessionDep,
    error: str = "",
) -> Response:
    """The enterprise's own grants and its receiving account."""
    code = str(user.credit_code)
    return render(
        request,
        "grants/mine.html",
        rows=service.grants(session, credit_code=code),
        account=service.bank_account(session, code),
        error=error,
        **COMMON,
    )


@router.post("/grants/mine/account", include_in_schema=False)
async def set_account(request: Request, user: EnterpriseUser, session: SessionDep) -> Response:
    """Record the enterprise's receiving account."""
    form = await request.form()
    try:
        data = BankAccountInput.parse(
            str(form.get("bank_name", "")),
            str(form.get("account_name", "")),
            str(form.get("account_no", "")),
        )
    except GrantError as exc:
        code = str(user.credit_code)
        return render(
            request,
            "grants/mine.html",
            status_code=422,
            rows=service.grants(session, credit_code=code),
            account=service.bank_account(session, code),
            error=str(exc),
            **COMMON,
        )
    service.set_bank_account(session, str(user.credit_code), data, actor=user.username)
    return RedirectResponse("/grants/mine", status_code=303)


@router.get("/grants/{grant_id:int}", include_in_schema=False)
def detail(
    request: Request,
    grant_id: Int64,
    user: OptionalUser,
    session: SessionDep,
) -> Response:
    """A grant with its snapshot, recomputation check and ledger (officers, or its enterprise)."""
    if user is None:
        from huiqi.web.deps import LoginRequired

        raise LoginRequired()
    grant = session.get(Grant, grant_id)
    officer = user.role in (Role.officer, Role.admin)
    allowed = officer or (
        grant is not None
        and scopes.can_access(scopes.scope_of(user), credit_code=grant.credit_code)
    )
    if grant is None or not allowed:
        raise HTTPException(status_code=404, detail="not found")
    if officer and not service.can_review(session, grant, _scope(session, user)):
        raise HTTPException(status_code=403, detail=FORBIDDEN)
    try:
        again: int | None = service.recompute(session, grant)
    except GrantError:
        again = None
    return render(
        request,
        "grants/detail.html",
        g=grant,
        again=again,
        entries=service.ledger(session, grant.id),
        ledger_problems=service.verify_ledger(session, [grant.id]) if officer else [],
        officer=officer,
        inputs={k: service.decode_value(v) for k, v in grant.snapshot.get("inputs", {}).items()},
        source_labels=KIND_LABELS,
        **COMMON,
    )


@router.post("/grants/{grant_id:int}/confirm", include_in_schema=False)
async def confirm(
    request: Request,
    grant_id: Int64,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """Keep an approved grant whose inputs changed (with a reason)."""
    form = await request.form()
    service.acknowledge_change(
        session,
        grant_id,
        actor=user.username,
        reason=str(form.get("reason", "")),
        departments=_scope(session, user),
    )
    return RedirectResponse(f"/grants/{grant_id}", status_code=303)


def _json(g: Grant) -> dict[str, Any]:
    return {
        "id": g.id,
        "credit_code": g.credit_code,
        "enterprise_name": g.enterprise_name,
        "rule_id": g.rule_id,
        "rule_version": g.rule_version,
        "rule_title": g.rule_title,
        "legal_basis": g.legal_basis,
        "period": g.period,
        "amount_fen": g.amount_fen,
        "status": g.status,
        "risk_flags": [f["code"] for f in g.risk_flags or []],
        "snapshot": g.snapshot,
    }


@router.get("/api/v1/grants/mine")
def api_mine(user: EnterpriseUser, session: SessionDep) -> list[dict[str, Any]]:
    """The enterprise's own grants."""
    return [_json(g) for g in service.grants(session, credit_code=str(user.credit_code))]


@router.get("/api/v1/grants")
def api_grants(
    user: OfficerUser,
    session: SessionDep,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Grants of the officer's department's rules (all for admin), filtered by status."""
    return [
        _json(g) for g in service.grants(session, status=status, departments=_scope(session, user))
    ]


@router.get("/api/v1/grants/public")
def api_public(session: SessionDep) -> list[dict[str, Any]]:
    """The public notice list: enterprise name, policy, amount, year and approval date."""
    return [
        {
            "enterprise_name": r.enterprise_name,
            "policy": r.rule_title,
            "amount_fen": r.amount_fen,
            "period": r.period,
            "approved_on": r.approved_on.isoformat() if r.approved_on else None,
        }
        for r in service.public_notice(session)
    ]
