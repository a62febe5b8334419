"""Applications to calls, the enterprise's side: a draft pre-filled from the registry, corrected
by self-report, materials checked and stored, loans entered, the declaration signed and the
submission made once — refused after the deadline, over the quota or with materials missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.funds import materials as files
from huiqi.funds.calls import submitted_count
from huiqi.funds.errors import FundsConflict, FundsError, FundsForbidden, FundsNotFound
from huiqi.funds.models import FundApplication, FundCall, FundLoan, FundMaterial
from huiqi.funds.schemas import (
    EDITABLE_APPLICATION_STATUSES,
    ApplicationStatus,
    AwardKind,
    CallStatus,
    EventKind,
)
from huiqi.funds.timeline import beijing_text, record_event, tell_enterprise

# Push settings live in the registry too, but they are no part of what an application declares.
NOT_DECLARED = ("contact_", "consent_")
MAX_KEY = 64


def _enterprise(user: User) -> str:
    if user.role != Role.enterprise or not user.credit_code:
        raise FundsForbidden("只有企业用户可以申报", "only enterprise users apply")
    return user.credit_code


def own_application(session: Session, user: User, app_id: int) -> FundApplication:
    """The enterprise's own application (404 for any other, so ids reveal nothing)."""
    app = session.get(FundApplication, app_id)
    if app is None or user.role != Role.enterprise or app.credit_code != user.credit_code:
        raise FundsNotFound(f"未找到申报 #{app_id}", f"application #{app_id} not found")
    return app


def my_applications(session: Session, user: User) -> list[FundApplication]:
    """The enterprise's applications, newest first."""
    code = _enterprise(user)
    return list(
        session.scalars(
            select(FundApplication)
            .where(FundApplication.credit_code == code)
            .order_by(FundApplication.created_at.desc(), FundApplication.id.desc())
        )
    )


# --- pre-filling -----------------------------------------------------------------------------


def prefill_values(session: Session, credit_code: str) -> dict[str, Any]:
    """Every value the registry holds for the enterprise, with its source and as-of date."""
    from huiqi.enterprise.service import SELF_REPORTED, profile_values

    current, _history = profile_values(session, credit_code)
    out: dict[str, Any] = {}
    for v in current:
        if v.field.name.startswith(NOT_DECLARED):
            continue
        key = v.field.name if not v.year else f"{v.field.name}@{v.year}"
        out[key] = {
            "field": v.field.name,
            "year": v.year or None,
            "zh": v.field.zh,
            "en": v.field.en,
            "value": v.shown,
            "source": v.source,
            "as_of": v.as_of.isoformat(),
            "self_reported": v.source == SELF_REPORTED,
            "correctable": v.field.self_report,
        }
    return out


def eligibility_of(
    session: Session, credit_code: str, rule_id: str | None
) -> tuple[str | None, list[dict[str, Any]]]:
    """The call's rule evaluated for the enterprise now: result and reasons (None without a rule)."""
    if not rule_id:
        return None, []
    from huiqi.matching.service import MatchingError, explain

    try:
        exp = explain(session, credit_code, rule_id).to_json()
    except MatchingError:
        return None, []
    return str(exp["result"]), list(exp["reasons"])


def _refresh(session: Session, app: FundApplication) -> None:
    """Re-read the registry into the application (values, eligibility, region and class)."""
    from huiqi.enterprise.repository import current_mapping

    app.prefill = prefill_values(session, app.credit_code)
    app.eligibility, app.eligibility_reasons = eligibility_of(
        session, app.credit_code, app.call.rule_id
    )
    row = current_mapping(session, app.credit_code) or {}
    app.enterprise_name = str(row.get("name") or app.enterprise_name or "")
    app.region_code = row.get("region_code")
    app.industry_code = row.get("industry_code")
    app.size_class = row.get("size_class")


def start(session: Session, user: User, call_id: int) -> FundApplication:
    """The enterprise's application to a call: its live one, or a new pre-filled draft."""
    code = _enterprise(user)
    call = session.get(FundCall, call_id)
    if call is None or call.status == CallStatus.draft:
        raise FundsNotFound(f"未找到申报通知 #{call_id}", f"call #{call_id} not found")
    live = session.scalar(
        select(FundApplication)
        .where(
            FundApplication.call_id == call.id,
            FundApplication.credit_code == code,
            FundApplication.status.not_in([ApplicationStatus.withdrawn]),
        )
        .order_by(FundApplication.id.desc())
        .limit(1)
    )
    if live is not None:
        return live
    _ensure_window(call)
    from huiqi.enterprise.repository import get_by_code

    if get_by_code(session, code) is None:
        raise FundsError(
            "企业库中没有本企业的登记信息,无法预填申报",
            "the registry holds no record of this enterprise",
        )
    app = FundApplication(
        call_id=call.id,
        credit_code=code,
        status=ApplicationStatus.draft,
        stage_index=0,
        created_by=user.id,
        prefill={},
        corrections=[],
        eligibility_reasons=[],
        targets={},
    )
    app.call = call
    session.add(app)
    session.flush()
    _refresh(session, app)
    record_event(session, app, EventKind.created, actor=user, status_from=None)
    return app


def _ensure_window(call: FundCall, now: datetime | None = None) -> None:
    moment = now or clock.now()
    if call.status != CallStatus.open:
        raise FundsConflict("该申报通知目前不受理申报", "this call is not taking applications")
    if moment < clock.aware(call.opens_at):
        raise FundsConflict(
            f"申报将于 {beijing_text(call.opens_at)}(北京时间)开始,请届时提交",
            f"applications open at {beijing_text(call.opens_at)} Beijing time",
        )
    if moment >= clock.aware(call.closes_at):
        raise FundsConflict(
            f"申报已于 {beijing_text(call.closes_at)}(北京时间)截止,不再受理",
            f"the call closed at {beijing_text(call.closes_at)} Beijing time",
        )


def _editable(app: FundApplication) -> None:
    if app.status not in EDITABLE_APPLICATION_STATUSES:
        raise FundsConflict(
            "申报已提交,不能再修改", "the application is submitted and can no longer change"
        )


@dataclass
class Details:
    """What the enterprise writes on the form (money in fen)."""

    project_name: str = ""
    project_code: str | None = None
    contract_no: str | None = None
    requested_fen: int | None = None
    targets: Mapping[str, str] | None = None


def _short(value: str | None, limit: int, what: tuple[str, str], name: str) -> str | None:
    text = (value or "").strip()
    if len(text) > limit:
        raise FundsError(
            f"{what[0]}不能超过 {limit} 个字符",
            f"{what[1]}: at most {limit} characters",
            field=name,
        )
    return text or None


def save(session: Session, user: User, app_id: int, details: Details) -> FundApplication:
    """Keep the draft's project details (also while it is returned for correction)."""
    app = own_application(session, user, app_id)
    _editable(app)
    app.project_name = (
        _short(details.project_name, 300, ("项目名称", "Project name"), "project_name") or ""
    )
    app.project_code = _short(
        details.project_code, 100, ("项目代码", "Project code"), "project_code"
    )
    app.contract_no = _short(
        details.contract_no, 100, ("合同编号", "Contract number"), "contract_no"
    )
    if details.requested_fen is not None:
        if details.requested_fen <= 0:
            raise FundsError(
                "申请金额须大于零", "the requested amount must be positive", field="requested_fen"
            )
        cap = app.call.award_cap_fen
        if cap is not None and details.requested_fen > cap:
            raise FundsError(
                f"申请金额超过单个项目支持上限 {format_fen(cap)}",
                f"the request exceeds the cap of {format_fen(cap)}",
                field="requested_fen",
            )
    app.requested_fen = details.requested_fen
    if details.targets is not None:
        known = {str(t.get("key")) for t in (app.call.performance or {}).get("targets") or []}
        app.targets = {
            k: str(v).strip()[:100]
            for k, v in details.targets.items()
            if k in known and str(v).strip()
        }
    app.updated_at = clock.now()
    record_event(session, app, EventKind.saved, actor=user, status_from=app.status)
    return app


def correct(
    session: Session, user: User, app_id: int, changes: Mapping[str, str], *, year: int | None
) -> FundApplication:
    """Correct registry values by self-report (flagged as such) and re-read them into the draft."""
    from huiqi.enterprise.service import self_report

    app = own_application(session, user, app_id)
    _editable(app)
    wanted = {k: v for k, v in changes.items() if (v or "").strip()}
    if not wanted:
        raise FundsError("请填写要更正的数据", "enter the values to correct", field="changes")
    before = dict(app.prefill or {})
    self_report(session, app.credit_code, dict(wanted), year=year, recorded_by=user.username)
    _refresh(session, app)
    at = clock.now().isoformat()
    log = list(app.corrections or [])
    for name, value in wanted.items():
        key = f"{name}@{year}" if year and f"{name}@{year}" in app.prefill else name
        log.append(
            {
                "field": name,
                "year": year,
                "value": (app.prefill.get(key) or {}).get("value", value.strip()),
                "previous": (before.get(key) or {}).get("value"),
                "at": at,
            }
        )
    app.corrections = log
    record_event(
        session,
        app,
        EventKind.corrected,
        actor=user,
        status_from=app.status,
        detail={"fields": sorted(wanted)},
    )
    return app


# --- materials and loans ---------------------------------------------------------------------


def material_spec(call: FundCall, key: str) -> dict[str, Any]:
    """The call's requirement for one material."""
    for spec in call.materials or []:
        if spec["key"] == key:
            return spec
    raise FundsError(
        f"本通知不要求该材料:{key}", f"this call asks for no material {key!r}", field="key"
    )


def add_material(
    session: Session,
    user: User,
    app_id: int,
    key: str,
    file_name: str,
    data: bytes,
    *,
    data_dir: Path,
) -> FundMaterial:
    """Check a file by its content and size, store it, and put it on the application (a newer
    file for the same material replaces the older)."""
    app = own_application(session, user, app_id)
    _editable(app)
    spec = material_spec(app.call, key)
    checked = files.check(
        data, name_zh=spec["name_zh"], allowed=spec["types"], max_mb=int(spec["max_mb"])
    )
    name = (file_name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[
        :255
    ] or f"{key}.{checked.kind}"
    stored = files.store(data, checked, app.id, data_dir)
    for old in [m for m in app.materials if m.key == key]:
        app.materials.remove(old)
    row = FundMaterial(
        key=key,
        file_name=name,
        content_type=checked.content_type,
        size_bytes=checked.size,
        sha256=checked.sha256,
        stored_path=stored,
        uploaded_by=user.username,
        uploaded_at=clock.now(),
    )
    app.materials.append(row)
    session.flush()
    record_event(
        session,
        app,
        EventKind.material_added,
        actor=user,
        status_from=app.status,
        detail={"key": key, "file": name},
    )
    return row


def remove_material(session: Session, user: User, app_id: int, material_id: int) -> None:
    """Take a material off the application."""
    app = own_application(session, user, app_id)
    _editable(app)
    found = next((m for m in app.materials if m.id == material_id), None)
    if found is None:
        raise FundsNotFound(f"未找到材料 #{material_id}", f"material #{material_id} not found")
    app.materials.remove(found)
    session.flush()
    record_event(
        session,
        app,
        EventKind.material_removed,
        actor=user,
        status_from=app.status,
        detail={"key": found.key},
    )


@dataclass
class LoanInput:
    """A loan as the form or the API gives it."""

    lender: str
    contract_no: str
    principal_fen: int
    annual_rate: str
    start_on: date
    end_on: date


def add_loan(session: Session, user: User, app_id: int, loan: LoanInput) -> FundLoan:
    """Enter a loan the application claims an interest subsidy for (贷款贴息 calls only)."""
    app = own_application(session, user, app_id)
    _editable(app)
    if app.call.award_kind != AwardKind.interest_subsidy:
        raise FundsError(
            "本通知不是贷款贴息,无需填写贷款", "this call is no interest subsidy", field="lender"
        )
    lender = _short(loan.lender, 128, ("贷款机构", "Lender"), "lender")
    contract = _short(
        loan.contract_no, 100, ("借款合同编号", "Loan contract number"), "loan_contract_no"
    )
    if not lender or not contract:
        raise FundsError(
            "请填写贷款机构和借款合同编号",
            "lender and contract number are required",
            field="lender",
        )
    if loan.principal_fen <= 0:
        raise FundsError("贷款本金须大于零", "the principal must be positive", field="principal")
    try:
        rate = Decimal(loan.annual_rate.strip().rstrip("%")) / (
            100 if loan.annual_rate.strip().endswith("%") else 1
        )
    except (InvalidOperation, AttributeError):
        raise FundsError(
            "年利率格式有误,例如 3.45%", "annual rate: e.g. 3.45%", field="annual_rate"
        ) from None
    if not Decimal(0) < rate < Decimal("0.36"):
        raise FundsError(
            "年利率须大于 0 且低于 36%",
            "the annual rate must be above 0 and below 36%",
            field="annual_rate",
        )
    if loan.end_on <= loan.start_on:
        raise FundsError(
            "贷款到期日须晚于起息日", "the loan must end after it starts", field="end_on"
        )
    if any(existing.contract_no == contract for existing in app.loans):
        raise FundsConflict(
            f"已填写借款合同 {contract}", f"loan contract {contract} is already entered"
        )
    row = FundLoan(
        lender=lender,
        contract_no=contract,
        principal_fen=loan.principal_fen,
        annual_rate=format(rate.normalize(), "f"),
        start_on=loan.start_on,
        end_on=loan.end_on,
        entered_by=user.username,
        entered_at=clock.now(),
    )
    app.loans.append(row)
    session.flush()
    return row


def remove_loan(session: Session, user: User, app_id: int, loan_id: int) -> None:
    """Take a loan off the application."""
    app = own_application(session, user, app_id)
    _editable(app)
    found = next((loan for loan in app.loans if loan.id == loan_id), None)
    if found is None:
        raise FundsNotFound(f"未找到贷款 #{loan_id}", f"loan #{loan_id} not found")
    app.loans.remove(found)
    session.flush()


# --- submission ------------------------------------------------------------------------------


def missing_materials(app: FundApplication) -> list[dict[str, Any]]:
    """Required materials not yet uploaded."""
    have = {m.key for m in app.materials}
    return [
        spec
        for spec in app.call.materials or []
        if spec.get("required") and spec["key"] not in have
    ]


def _check_complete(app: FundApplication) -> None:
    missing = missing_materials(app)
    if missing:
        names = "、".join(str(m["name_zh"]) for m in missing)
        raise FundsError(
            f"缺少必需的申报材料:{names}",
            f"required materials missing: {', '.join(m['key'] for m in missing)}",
            field="materials",
        )
    if not app.project_name:
        raise FundsError("请填写项目名称", "enter the project name", field="project_name")
    if app.call.award_kind == AwardKind.interest_subsidy and not app.loans:
        raise FundsError(
            "贷款贴息申报须至少填写一笔贷款",
            "an interest-subsidy application needs a loan",
            field="lender",
        )
    if app.call.award_kind == AwardKind.grant and app.requested_fen is None:
        raise FundsError("请填写申请金额", "enter the requested amount", field="requested_fen")
    if app.eligibility == "ineligible":
        reasons = ";".join(
            str(r["zh"]) for r in app.eligibility_reasons if r.get("outcome") == "false"
        )
        raise FundsError(
            f"根据登记数据,本企业不符合申报条件:{reasons}。如数据有误,请先更正",
            "by the registry's data the enterprise does not qualify; correct the data if it is wrong",
        )


def submit(
    session: Session, user: User, app_id: int, *, declared: bool, idempotency_key: str | None = None
) -> FundApplication:
    """Sign the declaration and submit (or resubmit after a return); the same key again returns
    the application unchanged."""
    code = _enterprise(user)
    key = (idempotency_key or "").strip() or None
    if key is not None:
        if len(key) > MAX_KEY:
            raise FundsError(
                "幂等键过长(至多 64 个字符)",
                "idempotency key: at most 64 characters",
                field="idempotency_key",
            )
        done = session.scalar(
            select(FundApplication).where(
                FundApplication.credit_code == code, FundApplication.idempotency_key == key
            )
        )
        if done is not None:
            if done.id != app_id:
                raise FundsConflict(
                    "该幂等键已用于另一份申报", "the idempotency key belongs to another application"
                )
            return done
    app = own_application(session, user, app_id)
    if app.status not in EDITABLE_APPLICATION_STATUSES:
        raise FundsConflict("申报已提交,无需重复提交", "the application is already submitted")
    if not declared:
        raise FundsError(
            "请阅读并勾选真实性承诺后再提交",
            "sign the declaration of truth first",
            field="declared",
        )
    # Lock the call so two submissions cannot both take the last place of the quota.
    call = session.scalar(select(FundCall).where(FundCall.id == app.call_id).with_for_update())
    assert call is not None
    now = clock.now()
    resubmission = app.status == ApplicationStatus.returned
    if resubmission:
        if app.return_deadline is not None and clock.beijing_day(now) > app.return_deadline:
            raise FundsConflict(
                f"修改期限已于 {app.return_deadline.isoformat()} 届满,不再受理补正",
                f"the correction deadline {app.return_deadline.isoformat()} has passed",
            )
    else:
        _ensure_window(call, now)
        if call.quota is not None and submitted_count(session, call.id) >= call.quota:
            raise FundsConflict(
                f"本批次申报名额({call.quota} 个)已满,不再受理",
                f"the call's quota of {call.quota} applications is full",
            )
    _refresh(session, app)
    _check_complete(app)
    status_from = app.status
    app.status = ApplicationStatus.in_review if resubmission else ApplicationStatus.submitted
    app.declared_by = user.username
    app.declared_at = now
    app.idempotency_key = key or app.idempotency_key
    if not resubmission:
        app.submitted_at = now
        app.stage_index = 0
    app.stage_entered_at = now
    app.return_deadline = None
    app.updated_at = now
    kind = EventKind.resubmitted if resubmission else EventKind.submitted
    event = record_event(
        session, app, kind, actor=user, status_from=status_from, detail={"declared": True}
    )
    subject = f"申报已重新提交:{call.title}" if resubmission else f"申报已提交:{call.title}"
    tell_enterprise(
        session,
        app,
        event,
        subject,
        f"您的申报(编号 {app.id})已于 {beijing_text(now)} 提交,进入审核。可在“我的申报”查看进度和预计时间。",
        (
            f"Application {'resubmitted' if resubmission else 'submitted'}: {call.title}",
            f"Your application (no. {app.id}) was submitted at {beijing_text(now)} (Beijing"
            " time) and is under review. “My applications” shows its progress and expected"
            " dates.",
        ),
    )
    return app


def withdraw(session: Session, user: User, app_id: int) -> FundApplication:
    """Withdraw a draft or an application not yet decided."""
    app = own_application(session, user, app_id)
    allowed = EDITABLE_APPLICATION_STATUSES | {
        ApplicationStatus.submitted,
        ApplicationStatus.in_review,
    }
    if app.status not in allowed:
        raise FundsConflict(
            "该申报已进入评审结果阶段,不能撤回", "the application can no longer be withdrawn"
        )
    status_from = app.status
    app.status = ApplicationStatus.withdrawn
    app.updated_at = clock.now()
    record_event(session, app, EventKind.withdrawn, actor=user, status_from=status_from)
    return app
