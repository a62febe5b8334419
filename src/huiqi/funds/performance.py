"""Performance (绩效) of awarded projects: when reports are due, and late or failed projects.

Legal basis: 甘工信发〔2020〕351号 (七) — special funds are to be managed ("加强中小企业专项资金
管理"), which includes following what the money achieved and recovering it when a project does
not deliver; (四十) — policies are followed "事前、事中、事后全过程跟踪落实". The call states its
reporting schedule (报告周期): the first report `interval_months` after the award date, then one
every `interval_months`, `reports` in all (the last is the final report, 结项); a report is on
time until `grace_working_days` working days (official calendar) after its due date.

A report meets a target when the outcome reaches `pass_ratio` of it (at least the target for
"more is better" targets such as revenue or jobs; at most it for "less is better" ones such as
energy use); it fails when any target is missed. A project is flagged **late** when a report
came after the grace period or is still missing past it, and **failed** when its final report
missed a target. The clawback the call states (`clawback_share` of the award for a failed
project) is a proposal the officer confirms; it is recorded through the grant ledger.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from huiqi.core.dates import add_working_days
from huiqi.core.errors import Invalid

LEGAL_BASIS = "甘工信发〔2020〕351号 (七)、(四十)"


class PerformanceError(Invalid):
    """A schedule, target or report that cannot be judged."""


class ReportState(StrEnum):
    """Where one due report stands."""

    upcoming = "upcoming"  # not yet due
    due = "due"  # due, still within the grace period
    on_time = "on_time"
    late = "late"  # submitted after the grace period
    missing = "missing"  # not submitted and the grace period is over


STATE_LABELS: dict[str, tuple[str, str]] = {
    ReportState.upcoming: ("未到期", "Upcoming"),
    ReportState.due: ("待报送", "Due"),
    ReportState.on_time: ("按时报送", "On time"),
    ReportState.late: ("逾期报送", "Late"),
    ReportState.missing: ("逾期未报", "Missing"),
}


@dataclass(frozen=True)
class Schedule:
    """A call's reporting schedule."""

    interval_months: int = 12
    reports: int = 1
    grace_working_days: int = 10
    pass_ratio: Decimal = Decimal("1")
    clawback_share: Decimal = Decimal("1")  # of the award, for a failed project
    legal_basis: str = LEGAL_BASIS

    def __post_init__(self) -> None:
        if not 1 <= self.interval_months <= 60:
            raise PerformanceError(
                "报告周期须为 1–60 个月",
                "the reporting interval must be 1–60 months",
                field="interval_months",
            )
        if not 1 <= self.reports <= 20:
            raise PerformanceError("报告次数须为 1–20 次", "reports must be 1–20", field="reports")
        if not 0 <= self.grace_working_days <= 60:
            raise PerformanceError(
                "宽限期须为 0–60 个工作日",
                "the grace period must be 0–60 working days",
                field="grace_working_days",
            )
        if not Decimal(0) < self.pass_ratio <= Decimal(1):
            raise PerformanceError(
                "达标比例须大于 0 且不超过 100%",
                "the pass ratio must be above 0 and at most 1",
                field="pass_ratio",
            )
        if not Decimal(0) <= self.clawback_share <= Decimal(1):
            raise PerformanceError(
                "收回比例须在 0 与 100% 之间",
                "the clawback share must be between 0 and 1",
                field="clawback_share",
            )


@dataclass(frozen=True)
class Target:
    """One performance target (绩效目标) of a project."""

    name: str  # e.g. 营业收入 (万元), 新增就业 (人)
    value: Decimal
    higher_is_better: bool = True


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has no such day."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@dataclass(frozen=True)
class DueReport:
    """One report of the schedule."""

    number: int  # 1-based
    due: date
    grace_until: date  # the last day a report counts as on time
    final: bool


def due_reports(awarded_on: date, schedule: Schedule) -> list[DueReport]:
    """The reports an award owes, with due dates counted from the award date."""
    out = []
    for n in range(1, schedule.reports + 1):
        due = add_months(awarded_on, n * schedule.interval_months)
        grace = add_working_days(due, schedule.grace_working_days)
        out.append(DueReport(n, due, grace, n == schedule.reports))
    return out


def report_state(due: DueReport, submitted_on: date | None, today: date) -> ReportState:
    """Where one report stands on `today`."""
    if submitted_on is not None:
        return ReportState.on_time if submitted_on <= due.grace_until else ReportState.late
    if today < due.due:
        return ReportState.upcoming
    if today <= due.grace_until:
        return ReportState.due
    return ReportState.missing


@dataclass(frozen=True)
class TargetCheck:
    """One target against its reported outcome."""

    target: Target
    outcome: Decimal | None
    met: bool
    reason_zh: str


def check_targets(
    targets: Sequence[Target], outcomes: Mapping[str, Decimal], schedule: Schedule
) -> list[TargetCheck]:
    """Each target against the outcome reported for it (a missing outcome fails)."""
    out = []
    ratio = Fraction(schedule.pass_ratio)
    for t in targets:
        got = outcomes.get(t.name)
        if got is None:
            out.append(TargetCheck(t, None, False, f"{t.name}:未报告完成值"))
            continue
        if t.higher_is_better:
            met = Fraction(got) >= Fraction(t.value) * ratio
            need = "不低于"
            bound = Fraction(t.value) * ratio
        else:
            # "less is better": the outcome may exceed the target by at most 1/ratio
            met = Fraction(got) * ratio <= Fraction(t.value)
            need = "不高于"
            bound = Fraction(t.value) / ratio
        shown = Decimal(bound.numerator) / Decimal(bound.denominator)
        verdict = "达标" if met else "未达标"
        out.append(
            TargetCheck(
                t, got, met, f"{t.name}:目标 {t.value},完成 {got}(须{need} {shown}),{verdict}"
            )
        )
    return out


@dataclass(frozen=True)
class ProjectStanding:
    """A project's performance on a day: its reports and flags."""

    reports: tuple[tuple[DueReport, ReportState], ...]
    late: bool
    failed: bool
    clawback_fen: int  # proposed; 0 unless failed
    reasons_zh: tuple[str, ...]


def standing(
    *,
    awarded_on: date,
    award_fen: int,
    schedule: Schedule,
    submitted: Mapping[int, date],
    final_checks: Sequence[TargetCheck] | None,
    today: date,
) -> ProjectStanding:
    """Late and failed flags of one project from its submitted reports (number → date) and
    the target checks of its final report (None while there is none)."""
    if award_fen < 0:
        raise PerformanceError("支持金额不能为负", "the award cannot be negative")
    reports = tuple(
        (d, report_state(d, submitted.get(d.number), today))
        for d in due_reports(awarded_on, schedule)
    )
    reasons: list[str] = []
    late = False
    for d, state in reports:
        if state == ReportState.late:
            late = True
            reasons.append(f"第 {d.number} 次报告逾期报送(应于 {d.grace_until} 前)")
        elif state == ReportState.missing:
            late = True
            reasons.append(f"第 {d.number} 次报告逾期未报(应于 {d.grace_until} 前)")
    failed = bool(final_checks) and not all(c.met for c in final_checks or ())
    if failed:
        reasons += [c.reason_zh for c in final_checks or () if not c.met]
    final_missing = reports[-1][1] == ReportState.missing
    clawback = 0
    if failed or final_missing:
        exact = Fraction(award_fen) * Fraction(schedule.clawback_share)
        clawback = exact.numerator // exact.denominator  # never claim back a fraction of a fen
        failed = True
        if final_missing:
            reasons.append("结项报告逾期未报,视为未达标")
    return ProjectStanding(reports, late, failed, clawback, tuple(reasons))
