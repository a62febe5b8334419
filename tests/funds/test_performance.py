"""Performance schedule: due dates from the award date, late and failed projects, clawback."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from huiqi.funds.performance import (
    PerformanceError,
    ReportState,
    Schedule,
    Target,
    add_months,
    check_targets,
    due_reports,
    report_state,
    standing,
)


def test_months_keep_the_day_or_take_the_months_last() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 3) == date(2026, 2, 15)


def test_due_dates_and_grace_in_working_days() -> None:
    schedule = Schedule(interval_months=6, reports=2, grace_working_days=10)
    reports = due_reports(date(2025, 3, 20), schedule)
    assert [r.due for r in reports] == [date(2025, 9, 20), date(2026, 3, 20)]
    # from Saturday 2025-09-20: 22–26 Sep, Sunday 28 Sep (a make-up working day), 29–30 Sep,
    # then the 国庆 holiday (1–8 Oct) is skipped: 9 and 10 Oct are the 9th and 10th working days
    assert reports[0].grace_until == date(2025, 10, 10)
    assert reports[-1].final and not reports[0].final


def test_report_states() -> None:
    (r,) = due_reports(date(2025, 1, 10), Schedule(reports=1, grace_working_days=5))
    assert report_state(r, None, date(2025, 12, 1)) == ReportState.upcoming
    assert report_state(r, None, r.due) == ReportState.due
    assert report_state(r, None, date(2026, 3, 1)) == ReportState.missing
    assert report_state(r, r.grace_until, date(2026, 3, 1)) == ReportState.on_time
    assert report_state(r, date(2026, 3, 1), date(2026, 3, 1)) == ReportState.late


def test_targets_met_failed_and_missing() -> None:
    targets = [
        Target("营业收入(万元)", Decimal("2000")),
        Target("单位产值能耗(吨标煤/万元)", Decimal("0.5"), higher_is_better=False),
        Target("新增就业(人)", Decimal("20")),
    ]
    schedule = Schedule(pass_ratio=Decimal("0.8"))
    checks = check_targets(
        targets,
        {"营业收入(万元)": Decimal("1600"), "单位产值能耗(吨标煤/万元)": Decimal("0.7")},
        schedule,
    )
    assert [c.met for c in checks] == [True, False, False]
    assert "须不低于 1600" in checks[0].reason_zh
    assert "未报告" in checks[2].reason_zh


def test_standing_flags_late_and_failed_with_clawback() -> None:
    schedule = Schedule(reports=2, interval_months=6, clawback_share=Decimal("0.5"))
    awarded = date(2025, 1, 15)
    due = due_reports(awarded, schedule)
    target = [Target("营业收入(万元)", Decimal("2000"))]
    ok = standing(
        awarded_on=awarded,
        award_fen=1_000_001,
        schedule=schedule,
        submitted={1: due[0].due, 2: due[1].due},
        final_checks=check_targets(target, {"营业收入(万元)": Decimal("2100")}, schedule),
        today=date(2026, 6, 1),
    )
    assert not ok.late and not ok.failed and ok.clawback_fen == 0
    bad = standing(
        awarded_on=awarded,
        award_fen=1_000_001,
        schedule=schedule,
        submitted={1: date(2025, 12, 1), 2: due[1].due},
        final_checks=check_targets(target, {"营业收入(万元)": Decimal("1500")}, schedule),
        today=date(2026, 6, 1),
    )
    assert bad.late and bad.failed
    assert bad.clawback_fen == 500_000  # half, never a fraction of a fen
    missing = standing(
        awarded_on=awarded,
        award_fen=1_000_000,
        schedule=schedule,
        submitted={},
        final_checks=None,
        today=date(2026, 12, 1),
    )
    assert missing.late and missing.failed and missing.clawback_fen == 500_000
    assert any("结项报告逾期未报" in r for r in missing.reasons_zh)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_months": 0},
        {"reports": 0},
        {"grace_working_days": -1},
        {"pass_ratio": Decimal("0")},
        {"clawback_share": Decimal("1.5")},
    ],
)
def test_bad_schedules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(PerformanceError):
        Schedule(**kwargs)  # type: ignore[arg-type]
