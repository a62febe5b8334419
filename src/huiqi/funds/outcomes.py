"""Performance of awarded projects (绩效): reports against targets, late and failed projects,
and clawback through the grant ledger.

Legal basis: 甘工信发〔2020〕351号 (七) (special funds managed, money recovered when a project
does not deliver) and (四十) (policies followed before, during and after). The schedule, the
pass ratio and the clawback share are the call's (see `funds.performance`). Functions take the
session first and never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import User
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.dates import add_working_days
from huiqi.core.db import utcnow
from huiqi.core.errors import Invalid, NotFound
from huiqi.core.money import format_fen, format_fen_en
from huiqi.funds import performance
from huiqi.funds.awarding import call_schedule, ensure_awarder
from huiqi.funds.models import Clawback, PerformanceReport, PerformanceTarget
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.schemas import ApplicationStatus, EventKind, PerformanceStatus
from huiqi.funds.timeline import record_event, tell_enterprise

AWARDED = (ApplicationStatus.awarded, ApplicationStatus.paid)


class OutcomeError(Invalid):
    """A performance report or clawback that cannot be recorded."""


class OutcomeNotFound(NotFound, OutcomeError):
    """No such report due (or none the user may see)."""


def targets_of(row: PerformanceTarget) -> list[performance.Target]:
    """The row's targets as the pure rules read them."""
    return [
        performance.Target(
            str(t.get("name_zh") or t["key"]),
            Decimal(str(t["target"])),
            bool(t.get("higher_is_better", True)),
        )
        for t in row.targets or []
    ]


def grace_until(row: PerformanceTarget, schedule: performance.Schedule) -> date:
    """The last day a report on this row is on time."""
    return add_working_days(row.due_on, schedule.grace_working_days)


def _values(row: PerformanceTarget, raw: Mapping[str, Any]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for t in row.targets or []:
        key = str(t["key"])
        text = str(raw.get(key, "")).strip().replace(",", "")
        label = t.get("name_zh") or key
        if not text:
            raise OutcomeError(
                f"请填写「{label}」的完成值", f"give the outcome of {key}", field=key
            )
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise OutcomeError(
                f"「{label}」须为数字:{text}", f"{key}: not a number: {text}", field=key
            ) from None
        if not value.is_finite() or abs(value) > Decimal(10) ** 15:
            raise OutcomeError(f"「{label}」数值无效:{text}", f"{key}: invalid: {text}", field=key)
        out[key] = value
    return out


def submit_report(
    session: Session,
    user: User,
    target_id: int,
    values: Mapping[str, Any],
    note: str = "",
    *,
    today: date | None = None,
) -> PerformanceReport:
    """The enterprise reports its outcomes against one due row; late and failed are judged
    at once by the call's schedule and pass ratio."""
    row = session.get(PerformanceTarget, target_id)
    app = session.get(Application, row.application_id) if row is not None else None
    if (
        row is None
        or app is None
        or not scopes.can_access(scopes.scope_of(user), credit_code=app.credit_code)
    ):
        raise OutcomeNotFound("未找到该绩效报告", "performance report not found")
    if app.status not in AWARDED:
        raise OutcomeError("只有已立项的项目报送绩效", "only awarded projects report")
    if session.scalar(select(PerformanceReport.id).where(PerformanceReport.target_id == row.id)):
        raise OutcomeError("本期绩效已报送", "this report was already submitted")
    schedule = call_schedule(app.call)
    clean = _values(row, values)
    today = today or clock.today()
    late = today > grace_until(row, schedule)
    checks = performance.check_targets(
        targets_of(row),
        {str(t.get("name_zh") or t["key"]): clean[str(t["key"])] for t in row.targets or []},
        schedule,
    )
    report = PerformanceReport(
        target_id=row.id,
        values={k: format(v.normalize(), "f") for k, v in clean.items()},
        note=(note or "").strip()[:2000],
        reported_by=user.username,
        reported_at=utcnow(),
        late=late,
    )
    session.add(report)
    failed = not all(c.met for c in checks)
    row.status = (
        PerformanceStatus.failed
        if failed
        else PerformanceStatus.late
        if late
        else PerformanceStatus.on_time
    )
    row.assessed_by, row.assessed_at = "system", utcnow()
    row.note = ";".join(c.reason_zh for c in checks)[:2000] or row.note
    session.flush()
    event = record_event(
        session,
        app,
        EventKind.performance,
        actor=user,
        status_from=app.status,
        detail={
            "target_id": row.id,
            "due_on": row.due_on.isoformat(),
            "late": late,
            "status": row.status,
            "checks": [c.reason_zh for c in checks],
        },
    )
    audit(
        session, "funds.performance_reported", user=user, application_id=app.id, status=row.status
    )
    tell_enterprise(
        session,
        app,
        event,
        f"「{app.call.title}」绩效报告已收到",
        f"贵企业的绩效报告(应报日期 {row.due_on})已收到,结果:{_status_zh(row.status)}。\n"
        + "\n".join(c.reason_zh for c in checks),
        (
            f"“{app.call.title}”: performance report received",
            f"Your performance report (due {row.due_on}) was received; result:"
            f" {_status_en(row.status)}. Each target's check is on the application page.",
        ),
    )
    return report


def _status_zh(status: str) -> str:
    from huiqi.funds.schemas import PERFORMANCE_STATUS_LABELS

    return PERFORMANCE_STATUS_LABELS.get(status, (status, status))[0]


def _status_en(status: str) -> str:
    """A performance status in English."""
    from huiqi.funds.schemas import PERFORMANCE_STATUS_LABELS

    return PERFORMANCE_STATUS_LABELS.get(status, (status, status))[1]


def flag_overdue(session: Session, today: date | None = None) -> list[PerformanceTarget]:
    """Mark due rows without a report past their grace period as late (逾期未报)."""
    today = today or clock.today()
    flagged = []
    rows = session.scalars(
        select(PerformanceTarget).where(
            PerformanceTarget.status == PerformanceStatus.pending,
            PerformanceTarget.due_on < today,
        )
    ).all()
    for row in rows:
        app = session.get(Application, row.application_id)
        if app is None:
            continue
        if today <= grace_until(row, call_schedule(app.call)):
            continue
        if session.scalar(
            select(PerformanceReport.id).where(PerformanceReport.target_id == row.id)
        ):
            continue
        row.status = PerformanceStatus.late
        row.assessed_by, row.assessed_at = "system", utcnow()
        row.note = "逾期未报"
        flagged.append(row)
        record_event(
            session,
            app,
            EventKind.performance,
            actor=None,
            status_from=app.status,
            detail={"target_id": row.id, "due_on": row.due_on.isoformat(), "missing": True},
        )
    session.flush()
    return flagged


@dataclass(frozen=True)
class Standing:
    """One awarded project's performance: its rows and the proposed clawback."""

    app: Application
    rows: list[tuple[PerformanceTarget, PerformanceReport | None]]
    late: bool
    failed: bool
    proposed_clawback_fen: int
    clawed_back_fen: int


def standing(session: Session, app: Application) -> Standing:
    """Rows, reports and flags of one awarded project."""
    rows = session.scalars(
        select(PerformanceTarget)
        .where(PerformanceTarget.application_id == app.id)
        .order_by(PerformanceTarget.due_on)
    ).all()
    pairs = [
        (
            row,
            session.scalar(select(PerformanceReport).where(PerformanceReport.target_id == row.id)),
        )
        for row in rows
    ]
    late = any(r.status == PerformanceStatus.late for r in rows)
    failed = bool(rows) and rows[-1].status == PerformanceStatus.failed
    final_missing = (
        bool(rows) and rows[-1].status == PerformanceStatus.late and pairs[-1][1] is None
    )
    schedule = call_schedule(app.call)
    proposed = 0
    if failed or final_missing:
        proposed = int(Decimal(app.award_fen or 0) * schedule.clawback_share)
    taken = sum(
        c.amount_fen
        for c in session.scalars(select(Clawback).where(Clawback.application_id == app.id))
    )
    return Standing(app, pairs, late, failed or final_missing, max(0, proposed - taken), taken)


def clawback(session: Session, user: User, app_id: int, amount_fen: int, reason: str) -> Clawback:
    """Recover money from an award: a grant-ledger entry first, then the funds record that
    points at it, the timeline and the enterprise told."""
    from huiqi.grants.service import record_clawback

    app = session.get(Application, app_id)
    if app is None or app.status not in AWARDED or app.grant_id is None:
        raise OutcomeNotFound("未找到已立项的项目", "no awarded project with that number")
    ensure_awarder(session, user, app.call)
    entry = record_clawback(session, app.grant_id, amount_fen, reason=reason, actor=user.username)
    row = Clawback(
        application_id=app.id,
        grant_id=app.grant_id,
        ledger_entry_id=entry.id,
        amount_fen=amount_fen,
        reason=reason.strip(),
        created_by=user.username,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    event = record_event(
        session,
        app,
        EventKind.clawback,
        actor=user,
        status_from=app.status,
        detail={"amount_fen": amount_fen, "reason": reason.strip(), "ledger_entry_id": entry.id},
    )
    audit(
        session,
        "funds.clawback",
        user=user,
        application_id=app.id,
        amount_fen=amount_fen,
        reason=reason.strip(),
    )
    tell_enterprise(
        session,
        app,
        event,
        f"「{app.call.title}」资金追回通知",
        f"贵企业的项目(#{app.id})经绩效评价须追回资金 {format_fen(amount_fen)}。\n原因:{reason.strip()}\n"
        "请按主管部门的通知退回资金;如有异议,请联系主管部门。",
        (
            f"“{app.call.title}”: funds to be returned",
            f"After the performance evaluation, {format_fen_en(amount_fen)} of your project"
            f" (#{app.id}) must be returned.\nReason: {reason.strip()}\nReturn the funds as the"
            " department instructs; to dispute it, contact the department.",
        ),
    )
    return row


def due_for_enterprise(session: Session, credit_code: str) -> list[PerformanceTarget]:
    """Reports an enterprise owes (pending rows of its awarded projects), soonest first."""
    return list(
        session.scalars(
            select(PerformanceTarget)
            .join(Application, Application.id == PerformanceTarget.application_id)
            .where(
                Application.credit_code == credit_code,
                PerformanceTarget.status == PerformanceStatus.pending,
            )
            .order_by(PerformanceTarget.due_on)
        )
    )
