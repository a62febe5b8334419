"""Calls for applications and the enterprise's applications: pages (/funds/calls, /funds/mine,
/funds/applications/…; the JSON API is in api_routes). Domain errors travel to `web.errors`;
the application and call forms catch them only to show the form again with the message."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select

from huiqi.accounts.models import Role, User
from huiqi.core.bounds import Int64
from huiqi.core.money import format_fen, to_fen
from huiqi.funds import service as funds
from huiqi.funds.errors import FundsError, FundsNotFound
from huiqi.funds.materials import TYPES, path_of
from huiqi.funds.models import FundApplication
from huiqi.funds.schemas import (
    APPLICATION_STATUS_LABELS,
    AWARD_KIND_LABELS,
    CALL_STATUS_LABELS,
    EDITABLE_APPLICATION_STATUSES,
    EVENT_LABELS,
    ApplicationStatus,
    CallStatus,
)
from huiqi.funds.timeline import beijing_text, stage_names
from huiqi.web.deps import (
    CurrentUser,
    EnterpriseUser,
    OfficerUser,
    OptionalUser,
    SessionDep,
    render,
)

router = APIRouter()
COMMON: dict[str, Any] = {
    "fmt": format_fen,
    "bj": beijing_text,
    "app_labels": APPLICATION_STATUS_LABELS,
    "call_labels": CALL_STATUS_LABELS,
    "event_labels": EVENT_LABELS,
    "kind_labels": AWARD_KIND_LABELS,
    "types": TYPES,
    "mime_labels": {mime: label for label, mime in TYPES.values()},
    "stage_names": stage_names,
}


def _data_dir(request: Request) -> Any:
    return request.app.state.settings.data_dir


def _upload_limit(request: Request) -> int:
    return int(request.app.state.settings.max_upload_bytes)


# --- pages: calls ----------------------------------------------------------------------------


@router.get("/funds/calls", include_in_schema=False)
def calls_page(request: Request, session: SessionDep, user: OptionalUser) -> Response:
    """Calls for applications: open first, then the others; officers also see their drafts."""
    calls = funds.list_calls(session, user)
    shown = {c.id: funds.shown_status(c) for c in calls}
    calls.sort(key=lambda c: (shown[c.id] != CallStatus.open, -c.id))
    return render(request, "funds/calls.html", calls=calls, shown=shown, **COMMON)


@router.get("/funds/calls/{call_id:int}", include_in_schema=False)
def call_page(
    request: Request, call_id: Int64, session: SessionDep, user: OptionalUser
) -> Response:
    """One call: terms, materials, stages, deadline, and the way to apply."""
    call = funds.get_call(session, call_id, user)
    mine = None
    if user is not None and user.role == Role.enterprise and user.credit_code:
        mine = session.scalar(
            select(FundApplication)
            .where(
                FundApplication.call_id == call.id,
                FundApplication.credit_code == user.credit_code,
                FundApplication.status != ApplicationStatus.withdrawn,
            )
            .order_by(FundApplication.id.desc())
            .limit(1)
        )
    return render(
        request,
        "funds/call.html",
        call=call,
        shown=funds.shown_status(call),
        accepting=funds.accepting(call),
        taken=funds.submitted_count(session, call.id),
        mine=mine,
        can_manage=user is not None and funds.manages(session, user, call.fund.department),
        **COMMON,
    )


def _call_form(
    request: Request,
    session: SessionDep,
    user: User,
    form: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    from huiqi.matching.service import published_versions

    return render(
        request,
        "funds/call_form.html",
        status_code=status_code,
        funds=funds.funds_of(session, user),
        rules=published_versions(session),
        form=form,
        error=error,
        **COMMON,
    )


@router.get("/funds/calls/new", include_in_schema=False)
def new_call_page(request: Request, session: SessionDep, user: OfficerUser) -> Response:
    """The form for a new draft call of a fund the officer's department manages."""
    from huiqi.funds import call_form

    form = {
        "materials": call_form.EXAMPLE_MATERIALS,
        "stages": call_form.EXAMPLE_STAGES,
        "criteria": call_form.EXAMPLE_CRITERIA,
        "objection_days": "5",
    }
    return _call_form(request, session, user, form)


@router.post("/funds/calls/new", include_in_schema=False)
async def new_call_submit(request: Request, session: SessionDep, user: OfficerUser) -> Response:
    """Create the draft call and open it (publishing is a separate step)."""
    from huiqi.funds import call_form

    form = {str(k): str(v)[:5000] for k, v in (await request.form()).items() if k != "csrf_token"}
    try:
        call = funds.create_call(session, user, call_form.terms(form))
    except FundsError as exc:
        session.rollback()
        return _call_form(
            request,
            session,
            user,
            form,
            error=exc.localized(_lang(request)),
            status_code=exc.status,
        )
    return RedirectResponse(f"/funds/calls/{call.id}", status_code=303)


@router.post("/funds/calls/{call_id:int}/publish", include_in_schema=False)
def publish_form(call_id: Int64, session: SessionDep, user: OfficerUser) -> Response:
    """Publish a draft call (library document and push) and show it."""
    done = funds.publish_call(session, user, call_id)
    return RedirectResponse(
        f"/funds/calls/{call_id}?pushed={done.eligible + done.to_confirm}", status_code=303
    )


@router.post("/funds/calls/{call_id:int}/apply", include_in_schema=False)
def apply_form(call_id: Int64, session: SessionDep, user: EnterpriseUser) -> Response:
    """Open the enterprise's application to the call (a new pre-filled draft or its live one)."""
    app = funds.start(session, user, call_id)
    return RedirectResponse(f"/funds/applications/{app.id}", status_code=303)


# --- pages: applications ---------------------------------------------------------------------


@router.get("/funds/mine", include_in_schema=False)
def mine_page(request: Request, session: SessionDep, user: EnterpriseUser) -> Response:
    """我的申报: every application of the enterprise with where it stands and what comes next."""
    apps = funds.my_applications(session, user)
    steps = {a.id: funds.milestones(session, a) for a in apps}
    return render(request, "funds/mine.html", apps=apps, steps=steps, **COMMON)


def _application_page(
    request: Request,
    session: SessionDep,
    app: FundApplication,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    editable = app.status in EDITABLE_APPLICATION_STATUSES
    return render(
        request,
        "funds/application.html",
        status_code=status_code,
        app=app,
        call=app.call,
        editable=editable,
        accepting=funds.accepting(app.call),
        missing=funds.missing_materials(app),
        steps=funds.milestones(session, app),
        events=funds.events_of(session, app.id),
        error=error,
        submit_key=uuid.uuid4().hex,
        targets=(app.call.performance or {}).get("targets") or [],
        **COMMON,
    )


@router.get("/funds/applications/{app_id:int}", include_in_schema=False)
def application_page(
    request: Request, app_id: Int64, session: SessionDep, user: CurrentUser
) -> Response:
    """The enterprise's application: the form while it is a draft or returned, then its
    timeline; officers are sent to the review page of the same application."""
    if user.role in (Role.officer, Role.admin):
        return RedirectResponse(f"/funds/review/{app_id}", status_code=303)
    return _application_page(request, session, funds.own_application(session, user, app_id))


def _redisplay(
    request: Request, session: SessionDep, user: User, app_id: int, exc: FundsError
) -> Response:
    """Show the application again with the refusal, nothing of the failed step kept."""
    session.rollback()
    app = funds.own_application(session, user, app_id)
    return _application_page(
        request, session, app, error=exc.localized(_lang(request)), status_code=exc.status
    )


def _lang(request: Request) -> str:
    from huiqi.web.i18n import request_lang

    return request_lang(request)


def _fen(text: str | None, field: str) -> int | None:
    raw = (text or "").strip().replace(",", "")
    if not raw:
        return None
    try:
        return to_fen(raw, "yuan")
    except ValueError:
        raise FundsError(f"金额格式有误:{raw}", f"not an amount: {raw}", field=field) from None


@router.post("/funds/applications/{app_id:int}/save", include_in_schema=False)
async def save_form(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    project_name: Annotated[str, Form(max_length=300, title="项目名称 / Project name")] = "",
    project_code: Annotated[str, Form(max_length=100, title="项目代码 / Project code")] = "",
    contract_no: Annotated[str, Form(max_length=100, title="合同编号 / Contract number")] = "",
    requested_yuan: Annotated[str, Form(max_length=20, title="申请金额 / Amount")] = "",
) -> Response:
    """Keep the draft's project details (and committed targets)."""
    form = await request.form()
    targets = {
        str(k)[len("target_") :]: str(v) for k, v in form.items() if str(k).startswith("target_")
    }
    try:
        details = funds.Details(
            project_name=project_name,
            project_code=project_code,
            contract_no=contract_no,
            requested_fen=_fen(requested_yuan, "requested_fen"),
            targets=targets,
        )
        funds.save(session, user, app_id, details)
    except FundsError as exc:
        return _redisplay(request, session, user, app_id, exc)
    return RedirectResponse(f"/funds/applications/{app_id}?saved=1", status_code=303)


@router.post("/funds/applications/{app_id:int}/correct", include_in_schema=False)
def correct_form(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    field: Annotated[str, Form(max_length=64, title="数据项 / Field")],
    value: Annotated[str, Form(max_length=100, title="更正后的值 / Value")],
    year: Annotated[int | None, Form(ge=2000, le=2100, title="年度 / Year")] = None,
) -> Response:
    """Correct one registry value by self-report; it is flagged as self-reported."""
    try:
        funds.correct(session, user, app_id, {field: value}, year=year)
    except FundsError as exc:
        return _redisplay(request, session, user, app_id, exc)
    except ValueError as exc:  # the registry's own refusal (RegistryError is a ValueError)
        return _redisplay(request, session, user, app_id, FundsError(str(exc)))
    return RedirectResponse(f"/funds/applications/{app_id}?corrected=1#prefill", status_code=303)


@router.post("/funds/applications/{app_id:int}/materials", include_in_schema=False)
async def material_form(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    key: Annotated[str, Form(max_length=64, title="材料 / Material")],
    file: Annotated[UploadFile, File(title="文件 / File")],
) -> Response:
    """Upload one material; its type is read from the content."""
    data = await file.read(_upload_limit(request) + 1)
    try:
        funds.add_material(
            session, user, app_id, key, file.filename or "", data, data_dir=_data_dir(request)
        )
    except FundsError as exc:
        return _redisplay(request, session, user, app_id, exc)
    return RedirectResponse(f"/funds/applications/{app_id}#materials", status_code=303)


@router.post(
    "/funds/applications/{app_id:int}/materials/{material_id:int}/delete",
    include_in_schema=False,
)
def material_delete(
    app_id: Int64, material_id: Int64, session: SessionDep, user: EnterpriseUser
) -> Response:
    """Take a material off the application."""
    funds.remove_material(session, user, app_id, material_id)
    return RedirectResponse(f"/funds/applications/{app_id}#materials", status_code=303)


@router.get("/funds/applications/{app_id:int}/materials/{material_id:int}", include_in_schema=False)
def material_file(
    request: Request, app_id: Int64, material_id: Int64, session: SessionDep, user: CurrentUser
) -> Response:
    """Download a material: the enterprise itself, or a reviewer who may open the application."""
    from huiqi.funds import review

    app = session.get(FundApplication, app_id)
    if app is None:
        raise FundsNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    own = user.role == Role.enterprise and app.credit_code == user.credit_code
    if not own and not (
        user.role in (Role.officer, Role.admin) and review.can_view(session, user, app)
    ):
        raise FundsNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    found = next((m for m in app.materials if m.id == material_id), None)
    if found is None:
        raise FundsNotFound(f"未找到材料 #{material_id}", f"material #{material_id} not found")
    return FileResponse(
        path_of(_data_dir(request), found.stored_path),
        media_type=found.content_type,
        filename=found.file_name,
    )


@router.post("/funds/applications/{app_id:int}/loans", include_in_schema=False)
def loan_form(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    lender: Annotated[str, Form(max_length=128, title="贷款机构 / Lender")],
    loan_contract_no: Annotated[str, Form(max_length=100, title="借款合同编号 / Contract")],
    principal_yuan: Annotated[str, Form(max_length=20, title="贷款本金 / Principal")],
    annual_rate: Annotated[str, Form(max_length=16, title="年利率 / Annual rate")],
    start_on: Annotated[date, Form(title="起息日 / Start")],
    end_on: Annotated[date, Form(title="到期日 / End")],
) -> Response:
    """Enter a loan of a 贷款贴息 application."""
    try:
        principal = _fen(principal_yuan, "principal") or 0
        loan = funds.LoanInput(lender, loan_contract_no, principal, annual_rate, start_on, end_on)
        funds.add_loan(session, user, app_id, loan)
    except FundsError as exc:
        return _redisplay(request, session, user, app_id, exc)
    return RedirectResponse(f"/funds/applications/{app_id}#loans", status_code=303)


@router.post("/funds/applications/{app_id:int}/loans/{loan_id:int}/delete", include_in_schema=False)
def loan_delete(
    app_id: Int64, loan_id: Int64, session: SessionDep, user: EnterpriseUser
) -> Response:
    """Take a loan off the application."""
    funds.remove_loan(session, user, app_id, loan_id)
    return RedirectResponse(f"/funds/applications/{app_id}#loans", status_code=303)


@router.post("/funds/applications/{app_id:int}/submit", include_in_schema=False)
def submit_form(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    submit_key: Annotated[str, Form(max_length=64, title="提交编号 / Submission key")],
    declared: Annotated[str, Form(max_length=8, title="真实性承诺 / Declaration")] = "",
) -> Response:
    """Sign the declaration and submit; a repeated click with the same form changes nothing."""
    try:
        funds.submit(session, user, app_id, declared=declared == "1", idempotency_key=submit_key)
    except FundsError as exc:
        return _redisplay(request, session, user, app_id, exc)
    return RedirectResponse(f"/funds/applications/{app_id}?submitted=1", status_code=303)


@router.post("/funds/applications/{app_id:int}/withdraw", include_in_schema=False)
def withdraw_form(app_id: Int64, session: SessionDep, user: EnterpriseUser) -> Response:
    """Withdraw the application."""
    funds.withdraw(session, user, app_id)
    return RedirectResponse("/funds/mine", status_code=303)
