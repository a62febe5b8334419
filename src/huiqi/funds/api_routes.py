"""JSON API of calls and the enterprise's applications (/api/v1/funds/calls, /api/v1/funds/
applications…): an enterprise reaches its own, an officer what its scope opens."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.bounds import Int64
from huiqi.funds import service as funds
from huiqi.funds.errors import FundsError, FundsNotFound
from huiqi.funds.models import FundApplication, FundCall
from huiqi.funds.schemas import ApplicationStatus, CallStatus
from huiqi.funds.timeline import beijing_text
from huiqi.web.deps import CurrentUser, EnterpriseUser, OfficerUser, OptionalUser, SessionDep

router = APIRouter()


def _data_dir(request: Request) -> Any:
    return request.app.state.settings.data_dir


def _upload_limit(request: Request) -> int:
    return int(request.app.state.settings.max_upload_bytes)


# --- JSON API --------------------------------------------------------------------------------


def call_json(call: FundCall) -> dict[str, Any]:
    """A call as the API shows it (times aware ISO, Beijing text beside them)."""
    return {
        "id": call.id,
        "title": call.title,
        "doc_number": call.doc_number,
        "fund": {"id": call.fund.id, "name": call.fund.name, "department": call.fund.department},
        "budget_line": call.budget_line.name,
        "legal_basis": call.legal_basis,
        "rule_id": call.rule_id,
        "policy_id": call.published_policy_id,
        "status": funds.shown_status(call),
        "opens_at": clock.aware(call.opens_at).isoformat(),
        "closes_at": clock.aware(call.closes_at).isoformat(),
        "closes_beijing": beijing_text(call.closes_at),
        "quota": call.quota,
        "budget_fen": call.budget_fen,
        "award_cap_fen": call.award_cap_fen,
        "award_kind": call.award_kind,
        "materials": call.materials,
        "stages": call.stages,
        "criteria": call.criteria,
        "objection_days": call.objection_days,
        "url": f"/funds/calls/{call.id}",
    }


def application_json(session: SessionDep, app: FundApplication, *, full: bool) -> dict[str, Any]:
    """An application as the API shows it; ``full`` adds values, materials, loans and timeline."""
    out: dict[str, Any] = {
        "id": app.id,
        "call_id": app.call_id,
        "credit_code": app.credit_code,
        "enterprise_name": app.enterprise_name,
        "region_code": app.region_code,
        "status": app.status,
        "stage_index": app.stage_index,
        "project_name": app.project_name,
        "project_code": app.project_code,
        "contract_no": app.contract_no,
        "requested_fen": app.requested_fen,
        "eligibility": app.eligibility,
        "submitted_at": clock.aware(app.submitted_at).isoformat() if app.submitted_at else None,
        "return_deadline": app.return_deadline.isoformat() if app.return_deadline else None,
        "decision_reason": app.decision_reason,
        "award_fen": app.award_fen,
        "url": f"/funds/applications/{app.id}",
    }
    if full:
        out |= {
            "prefill": app.prefill,
            "corrections": app.corrections,
            "eligibility_reasons": app.eligibility_reasons,
            "targets": app.targets,
            "declared_by": app.declared_by,
            "materials": [
                {
                    "id": m.id,
                    "key": m.key,
                    "file_name": m.file_name,
                    "content_type": m.content_type,
                    "size_bytes": m.size_bytes,
                    "sha256": m.sha256,
                }
                for m in app.materials
            ],
            "loans": [
                {
                    "id": loan.id,
                    "lender": loan.lender,
                    "contract_no": loan.contract_no,
                    "principal_fen": loan.principal_fen,
                    "annual_rate": loan.annual_rate,
                    "start_on": loan.start_on.isoformat(),
                    "end_on": loan.end_on.isoformat(),
                }
                for loan in app.loans
            ],
            "timeline": [
                {
                    "step": m.key,
                    "zh": m.zh,
                    "en": m.en,
                    "state": m.state,
                    "done_on": m.done_on.isoformat() if m.done_on else None,
                    "expected_on": m.expected_on.isoformat() if m.expected_on else None,
                }
                for m in funds.milestones(session, app)
            ],
        }
    return out


@router.get("/api/v1/funds/calls")
def api_calls(
    session: SessionDep, user: OptionalUser, status: CallStatus | None = None
) -> JSONResponse:
    """Calls for applications (published; an officer's drafts too), optionally of one status."""
    calls = funds.list_calls(session, user, status=status)
    return JSONResponse({"calls": [call_json(c) for c in calls]})


@router.get("/api/v1/funds/calls/{call_id}")
def api_call(call_id: Int64, session: SessionDep, user: OptionalUser) -> JSONResponse:
    """One call."""
    return JSONResponse(call_json(funds.get_call(session, call_id, user)))


class FundIn(BaseModel):
    """A special fund an officer sets up, with its budget lines (money in fen)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=2, max_length=200)
    department: str = Field(min_length=2, max_length=100)
    legal_basis: str = Field(min_length=2, max_length=2000)
    year: int = Field(ge=2000, le=2100)
    annual_budget_fen: int = Field(gt=0, le=10**14)
    lines: list[tuple[str, int]] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=5000)


@router.post("/api/v1/funds/funds", status_code=201)
def api_create_fund(body: FundIn, session: SessionDep, user: OfficerUser) -> JSONResponse:
    """Set up a fund of the officer's department."""
    fund = funds.create_fund(session, user, **body.model_dump())
    return JSONResponse(
        {
            "id": fund.id,
            "name": fund.name,
            "lines": [
                {"id": li.id, "name": li.name, "budget_fen": li.budget_fen} for li in fund.lines
            ],
        },
        status_code=201,
    )


class CallIn(BaseModel):
    """A call for applications (moments with their offset; money in fen)."""

    model_config = ConfigDict(extra="forbid")

    fund_id: int = Field(ge=1, le=2**31)
    budget_line_id: int = Field(ge=1, le=2**31)
    title: str = Field(min_length=2, max_length=300)
    legal_basis: str = Field(min_length=2, max_length=2000)
    opens_at: datetime
    closes_at: datetime
    budget_fen: int = Field(gt=0, le=10**14)
    stages: list[dict[str, Any]] = Field(min_length=1, max_length=10)
    materials: list[dict[str, Any]] = Field(default_factory=list, max_length=30)
    criteria: list[dict[str, Any]] = Field(default_factory=list, max_length=30)
    rule_id: str | None = Field(default=None, max_length=100)
    doc_number: str | None = Field(default=None, max_length=100)
    summary: str = Field(default="", max_length=5000)
    quota: int | None = Field(default=None, ge=1, le=10**6)
    award_cap_fen: int | None = Field(default=None, gt=0, le=10**14)
    award_kind: str = Field(default="grant", max_length=16)
    objection_days: int = Field(default=5, ge=1, le=30)
    return_days: int = Field(default=7, ge=1, le=60)
    performance: dict[str, Any] = Field(default_factory=dict)
    subsidy_rate_basis: str | None = Field(default=None, max_length=16)
    subsidy_day_count: int | None = Field(default=None, ge=360, le=365)
    subsidy_share: str | None = Field(default=None, max_length=16)
    subsidy_cap_fen: int | None = Field(default=None, gt=0, le=10**14)


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise FundsError(
            "时间须带时区,例如 2025-03-31T17:00:00+08:00",
            "give moments with their offset, e.g. 2025-03-31T17:00:00+08:00",
            field=field,
        )
    return moment


@router.post("/api/v1/funds/calls", status_code=201)
def api_create_call(body: CallIn, session: SessionDep, user: OfficerUser) -> JSONResponse:
    """Create a draft call of a fund the officer's department manages."""
    data = body.model_dump()
    data["opens_at"] = _aware(body.opens_at, "opens_at")
    data["closes_at"] = _aware(body.closes_at, "closes_at")
    call = funds.create_call(session, user, funds.CallTerms(**data))
    return JSONResponse(call_json(call), status_code=201)


@router.post("/api/v1/funds/calls/{call_id}/publish")
def api_publish(call_id: Int64, session: SessionDep, user: OfficerUser) -> JSONResponse:
    """Publish a draft call: a policy-library document and a push to the enterprises it fits."""
    done = funds.publish_call(session, user, call_id)
    return JSONResponse(
        call_json(done.call)
        | {"pushed": {"eligible": done.eligible, "to_confirm": done.to_confirm}}
    )


@router.get("/api/v1/funds/applications")
def api_applications(
    session: SessionDep, user: CurrentUser, call_id: Int64 | None = None
) -> JSONResponse:
    """An enterprise's own applications; an officer's, those its scope opens (not drafts)."""
    if user.role == Role.enterprise:
        rows = funds.my_applications(session, user)
    elif user.role in (Role.officer, Role.admin):
        from huiqi.funds import review

        q = select(FundApplication).where(FundApplication.status != ApplicationStatus.draft)
        rows = [
            a
            for a in session.scalars(q.order_by(FundApplication.id).limit(5000))
            if review.can_view(session, user, a)
        ]
    else:
        rows = []
    if call_id is not None:
        rows = [a for a in rows if a.call_id == call_id]
    return JSONResponse({"applications": [application_json(session, a, full=False) for a in rows]})


class ApplyIn(BaseModel):
    """Open (or find) the enterprise's application to a call."""

    model_config = ConfigDict(extra="forbid")

    call_id: int = Field(ge=1, le=2**31)


@router.post("/api/v1/funds/applications", status_code=201)
def api_start(body: ApplyIn, session: SessionDep, user: EnterpriseUser) -> JSONResponse:
    """The enterprise's pre-filled draft to a call (its live application when it has one)."""
    app = funds.start(session, user, body.call_id)
    return JSONResponse(application_json(session, app, full=True), status_code=201)


def _visible(session: SessionDep, user: User, app_id: int) -> FundApplication:
    if user.role == Role.enterprise:
        return funds.own_application(session, user, app_id)
    from huiqi.funds import review

    app = session.get(FundApplication, app_id)
    if (
        app is None
        or app.status == ApplicationStatus.draft
        or not review.can_view(session, user, app)
    ):
        raise FundsNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    return app


@router.get("/api/v1/funds/applications/{app_id}")
def api_application(app_id: Int64, session: SessionDep, user: CurrentUser) -> JSONResponse:
    """One application with its values, materials, loans and timeline."""
    return JSONResponse(application_json(session, _visible(session, user, app_id), full=True))


class DetailsIn(BaseModel):
    """The project details of a draft (money in fen)."""

    model_config = ConfigDict(extra="forbid")

    project_name: str = Field(default="", max_length=300)
    project_code: str | None = Field(default=None, max_length=100)
    contract_no: str | None = Field(default=None, max_length=100)
    requested_fen: int | None = Field(default=None, gt=0, le=10**14)
    targets: dict[str, str] | None = None


@router.put("/api/v1/funds/applications/{app_id}")
def api_save(
    app_id: Int64, body: DetailsIn, session: SessionDep, user: EnterpriseUser
) -> JSONResponse:
    """Keep a draft's project details."""
    app = funds.save(session, user, app_id, funds.Details(**body.model_dump()))
    return JSONResponse(application_json(session, app, full=True))


class CorrectionIn(BaseModel):
    """Registry values the enterprise corrects by self-report (field → text)."""

    model_config = ConfigDict(extra="forbid")

    changes: dict[str, str] = Field(min_length=1, max_length=20)
    year: int | None = Field(default=None, ge=2000, le=2100)


@router.post("/api/v1/funds/applications/{app_id}/corrections")
def api_correct(
    app_id: Int64, body: CorrectionIn, session: SessionDep, user: EnterpriseUser
) -> JSONResponse:
    """Correct registry values; they are flagged as self-reported."""
    app = funds.correct(session, user, app_id, body.changes, year=body.year)
    return JSONResponse(application_json(session, app, full=True))


@router.post("/api/v1/funds/applications/{app_id}/materials", status_code=201)
async def api_material(
    request: Request,
    app_id: Int64,
    session: SessionDep,
    user: EnterpriseUser,
    key: Annotated[str, Form(max_length=64)],
    file: Annotated[UploadFile, File()],
) -> JSONResponse:
    """Upload one material (multipart); refused with 422 when its content is of the wrong type."""
    data = await file.read(_upload_limit(request) + 1)
    row = funds.add_material(
        session, user, app_id, key, file.filename or "", data, data_dir=_data_dir(request)
    )
    return JSONResponse(
        {"id": row.id, "key": row.key, "content_type": row.content_type, "sha256": row.sha256},
        status_code=201,
    )


class LoanIn(BaseModel):
    """A loan of a 贷款贴息 application (annual rate as a decimal, e.g. "0.0345", or "3.45%")."""

    model_config = ConfigDict(extra="forbid")

    lender: str = Field(min_length=2, max_length=128)
    contract_no: str = Field(min_length=1, max_length=100)
    principal_fen: int = Field(gt=0, le=10**14)
    annual_rate: str = Field(min_length=1, max_length=16)
    start_on: date
    end_on: date


@router.post("/api/v1/funds/applications/{app_id}/loans", status_code=201)
def api_loan(
    app_id: Int64, body: LoanIn, session: SessionDep, user: EnterpriseUser
) -> JSONResponse:
    """Enter a loan the application claims an interest subsidy for."""
    row = funds.add_loan(session, user, app_id, funds.LoanInput(**body.model_dump()))
    return JSONResponse({"id": row.id, "annual_rate": row.annual_rate}, status_code=201)


class SubmitIn(BaseModel):
    """The declaration of truth; must be true."""

    model_config = ConfigDict(extra="forbid")

    declared: bool


@router.post("/api/v1/funds/applications/{app_id}/submit")
def api_submit(
    app_id: Int64,
    body: SubmitIn,
    session: SessionDep,
    user: EnterpriseUser,
    idempotency_key: Annotated[str | None, Header(max_length=64)] = None,
) -> JSONResponse:
    """Submit; repeating it with the same Idempotency-Key returns the application unchanged."""
    app = funds.submit(
        session, user, app_id, declared=body.declared, idempotency_key=idempotency_key
    )
    return JSONResponse(application_json(session, app, full=True))
