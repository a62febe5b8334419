"""Enterprise pages (/enterprise/…) and JSON API (/api/v1/enterprise/…)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    BackgroundTasks,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.bounds import INT64_MAX, MAX_PAGE, Int64
from huiqi.core.codes import industry_name, region_name, regions
from huiqi.core.db import session_factory
from huiqi.core.money import to_fen
from huiqi.enterprise import graduates, service
from huiqi.enterprise import repository as repo
from huiqi.enterprise.catalogue import catalogue, display
from huiqi.enterprise.importer import (
    run_job,
    sheet_limits_from_settings,
    template_bytes,
    template_columns,
)
from huiqi.enterprise.models import ImportJob
from huiqi.enterprise.schemas import ClassifyIn
from huiqi.enterprise.service import CERT_KINDS, RegistryError
from huiqi.enterprise.sizing import classify
from huiqi.web.deps import CurrentUser, OfficerUser, SessionDep, ensure_enterprise_access, render

router = APIRouter()
CODE_RE = re.compile(r"^[0-9A-Z]{18}$")
SIZE_LABELS = {"large": ("大型", "large"), "medium": ("中型", "medium"), "small": ("小型", "small"),
               "micro": ("微型", "micro"), "unknown": ("未知", "unknown")}  # fmt: skip


def _classify_json(data: ClassifyIn) -> JSONResponse:
    # a bad code, amount or negative figure is a domain refusal (422) for the one error handler
    revenue = None if data.revenue is None else to_fen(str(data.revenue), "wan")
    assets = None if data.assets is None else to_fen(str(data.assets), "wan")
    result = classify(data.industry, data.employees, revenue, assets, data.on)
    return JSONResponse(result.to_dict())


@router.get("/api/v1/enterprise/classify")
def api_classify_get(data: Annotated[ClassifyIn, Query()]) -> JSONResponse:
    """Size class under 工信部联企业〔2011〕300号 (money in 万元): size, group, reasons, missing."""
    return _classify_json(data)


@router.post("/api/v1/enterprise/classify")
def api_classify_post(data: ClassifyIn) -> JSONResponse:
    """The same classification with a JSON body."""
    return _classify_json(data)


def _row_json(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out.pop("id", None)
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in out.items()}


@router.get("/api/v1/enterprise/{credit_code}")
def api_enterprise(credit_code: str, user: CurrentUser, session: SessionDep) -> JSONResponse:
    """The field-contract row of one enterprise (officers, or the enterprise itself)."""
    code = credit_code.upper()
    ensure_enterprise_access(session, user, code)
    row = repo.current_row(session, code)
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return JSONResponse(_row_json(row))


@router.get("/api/v1/enterprise")
def api_enterprise_list(
    user: OfficerUser,
    session: SessionDep,
    region: str | None = None,
    industry: str | None = None,
    size: str | None = None,
    cert: str | None = None,
    limit: int = Query(100, ge=1, le=1000, title="每页条数 / Rows per page"),
    offset: int = Query(0, ge=0, le=INT64_MAX, title="跳过条数 / Rows to skip"),
) -> JSONResponse:
    """Filtered enterprises (officers and admins)."""
    filters = _filters(region, industry, size, cert)
    total, rows = repo.list_current(
        session, limit=limit, offset=offset, within=user.region_prefix, **filters
    )
    return JSONResponse({"total": total, "items": [_row_json(r) for r in rows]})


def _filters(
    region: str | None, industry: str | None, size: str | None, cert: str | None
) -> dict[str, Any]:
    region = (region or "").strip()
    industry = (industry or "").strip().upper()
    if region and not region.isdigit():
        raise RegistryError(
            "地区须为行政区划代码(GB/T 2260)的数字前缀,如 6201",
            "region must be digits (a GB/T 2260 prefix)",
            field="region",
        )
    if industry and not re.fullmatch(r"[0-9]{1,4}", industry):
        raise HTTPException(status_code=422, detail="industry must be a GB/T 4754 code prefix")
    if size and size not in SIZE_LABELS:
        raise HTTPException(
            status_code=422, detail="size must be large, medium, small, micro or unknown"
        )
    if cert and cert not in CERT_KINDS:
        raise HTTPException(status_code=422, detail=f"cert must be one of {', '.join(CERT_KINDS)}")
    region_prefix = region.rstrip("0") if region.endswith("00") else region
    return {
        "region_prefix": region_prefix or None,
        "industry_prefix": industry or None,
        "size_class": size or None,
        "certification": cert or None,
    }


# ---------------------------------------------------------------- pages


def _prefectures() -> list[tuple[str, str]]:
    return [
        (r.code, r.name)
        for r in regions().values()
        if r.code.startswith("62") and r.level == "prefecture"
    ]


@router.get("/enterprise")
def enterprise_list(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
    region: str | None = None,
    industry: str | None = None,
    size: str | None = None,
    cert: str | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE, title="页码 / Page"),
) -> Response:
    """Officers list and filter enterprises."""
    filters = _filters(region, industry, size, cert)
    per_page = 50
    total, rows = repo.list_current(
        session,
        limit=per_page,
        offset=(page - 1) * per_page,
        within=user.region_prefix,
        **filters,
    )
    return render(
        request,
        "enterprise/list.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + per_page - 1) // per_page),
        prefectures=_prefectures(),
        sizes=SIZE_LABELS,
        certs=CERT_KINDS,
        chosen={
            "region": region or "",
            "industry": industry or "",
            "size": size or "",
            "cert": cert or "",
        },
        region_name=region_name,
        industry_name=industry_name,
    )


@router.get("/enterprise/mine")
def enterprise_mine(user: CurrentUser) -> Response:
    """An enterprise user's own record."""
    if user.role != Role.enterprise or not user.credit_code:
        raise HTTPException(status_code=404, detail="not found")
    return RedirectResponse(f"/enterprise/{user.credit_code}", status_code=303)


@router.get("/enterprise/template.{kind}")
def enterprise_template(
    kind: str,
    user: CurrentUser,
    lang: str = "zh",
    table: str = "enterprises",
) -> Response:
    """Download a bulk-import template (.csv or .xlsx): enterprises, or ``table=graduates``."""
    if kind not in ("csv", "xlsx") or table not in ("enterprises", "graduates"):
        raise HTTPException(status_code=404, detail="not found")
    name = "graduates" if table == "graduates" else "enterprise"
    media = (
        "text/csv; charset=utf-8"
        if kind == "csv"
        else ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    )
    return Response(
        template_bytes(kind, english=lang == "en", hires=table == "graduates"),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}-template.{kind}"'},
    )


def _import_dir(request: Request) -> Path:
    folder = Path(request.app.state.settings.data_dir) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@router.get("/enterprise/import")
def import_page(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """Upload a CSV/XLSX file; recent imports with their counts."""
    jobs = list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(20)))
    return render(
        request,
        "enterprise/import.html",
        jobs=jobs,
        columns=template_columns(),
        graduate_columns=graduates.COLUMNS,
    )


@router.post("/enterprise/import")
async def import_upload(
    request: Request,
    background: BackgroundTasks,
    user: OfficerUser,
    session: SessionDep,
    file: UploadFile = File(...),
) -> Response:
    """Store the upload, record the job and import it in the background."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        jobs = list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(20)))
        return render(
            request,
            "enterprise/import.html",
            status_code=422,
            jobs=jobs,
            columns=template_columns(),
            graduate_columns=graduates.COLUMNS,
            error="请上传 .csv 或 .xlsx 文件 / upload a .csv or .xlsx file",
        )
    job = ImportJob(filename=(file.filename or "upload")[:255], started_by=user.username)
    session.add(job)
    session.commit()
    folder = _import_dir(request)
    target = folder / f"{job.id}{suffix}"
    with target.open("wb") as out:
        while chunk := await file.read(1 << 20):
            out.write(chunk)
    background.add_task(
        run_job,
        session_factory(),
        job.id,
        target,
        folder / f"{job.id}-errors.csv",
        source=None,
        recorded_by=user.username,
        sheet_limits=sheet_limits_from_settings(request.app.state.settings),
    )
    return RedirectResponse(f"/enterprise/import/{job.id}", status_code=303)


def _job(session: Session, job_id: Int64) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail="not found")
    return job


@router.get("/enterprise/import/{job_id}")
def import_job_page(
    request: Request,
    job_id: Int64,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """Progress and result of one import; the progress part refreshes itself while running."""
    job = _job(session, job_id)
    # htmx polls for the status block alone while the import runs
    name = "_job_status.html" if request.headers.get("hx-request") == "true" else "import_job.html"
    return render(request, f"enterprise/{name}", job=job)


@router.get("/enterprise/import/{job_id}/errors.csv")
def import_job_errors(job_id: Int64, user: OfficerUser, session: SessionDep) -> Response:
    """Download the error report (row, column, value, reason)."""
    job = _job(session, job_id)
    if not job.error_report or not Path(job.error_report).exists():
        raise HTTPException(status_code=404, detail="no error report")
    return FileResponse(
        job.error_report, media_type="text/csv", filename=f"import-{job_id}-errors.csv"
    )


@router.get("/enterprise/{credit_code}")
def enterprise_detail(
    request: Request,
    credit_code: str,
    user: CurrentUser,
    session: SessionDep,
    saved: Int64 = 0,
) -> Response:
    """One enterprise: every value with its source and as-of date, and the history of changes."""
    code = credit_code.upper()
    if not CODE_RE.match(code):
        raise HTTPException(status_code=404, detail="not found")
    ensure_enterprise_access(session, user, code)
    return _detail(request, session, user, code, saved=bool(saved))


def _detail(request: Request, session: Session, user: User, code: str, **extra: Any) -> Response:
    row = repo.current_row(session, code)
    current, history = service.profile_values(session, code)
    if row is None and not current and user.role != Role.enterprise:
        raise HTTPException(status_code=404, detail="not found")
    cat = catalogue()
    row_map = dict(row._mapping) if row is not None else {}
    derived = [(f, display(f, row_map.get(f.name))) for f in cat.of_kind("derived")]
    editable = [f for f in cat.stored if f.self_report] if user.role == Role.enterprise else []
    mine = {(v.field.name, v.year): v for v in current}
    return render(
        request,
        "enterprise/detail.html",
        code=code,
        row=row_map,
        current=current,
        history=history,
        derived=derived,
        editable=editable,
        mine=mine,
        figures_year=row_map.get("figures_year") or clock.today().year - 1,
        region_name=region_name,
        industry_name=industry_name,
        **extra,
    )


@router.post("/enterprise/{credit_code}/self-report")
async def enterprise_self_report(
    request: Request,
    credit_code: str,
    user: CurrentUser,
    session: SessionDep,
    year: Int64 = Form(..., title="年度 / Year"),
) -> Response:
    """The enterprise corrects its self-reportable values (recorded with source self-reported)."""
    code = credit_code.upper()
    if user.role != Role.enterprise or user.credit_code != code:
        raise HTTPException(status_code=404, detail="not found")
    form = await request.form()
    fields = [f.name for f in catalogue().stored if f.self_report]
    changes = {name: str(form.get(name) or "") for name in fields if name in form}
    if not 1949 <= year <= clock.today().year:
        return _detail(request, session, user, code, error="年度不合理 / implausible year")
    try:
        service.self_report(session, code, changes, year=year, recorded_by=user.username)
    except RegistryError as exc:
        session.rollback()
        return _detail(request, session, user, code, error=str(exc))
    return RedirectResponse(f"/enterprise/{code}?saved=1", status_code=303)
