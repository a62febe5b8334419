"""Per-graduate employer contributions: the import template, the yearly total, the demo, and the
subsidy that pays what was paid (or waits to be confirmed)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.codes import make_credit_code
from huiqi.enterprise import graduates
from huiqi.enterprise import service as registry
from huiqi.enterprise.importer import run_import
from huiqi.enterprise.models import GraduateHire
from huiqi.enterprise.population import demo_hires, generate
from huiqi.matching import service as matching

CODE = make_credit_code("9", "1", "620102", "MA7GRC01")
TODAY = date(2025, 3, 31)
HEAD = [c[1] for c in graduates.COLUMNS]
RULE = "gs351-22-graduate-social-insurance"


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEAD)
        writer.writerows(rows)
    return path


def _row(
    ref: str, months: str = "12", p: str = "8640", m: str = "3510", u: str = "270"
) -> list[str]:
    return [CODE, ref, "2023-06-30", "2024-03-01", "36", "是", months, p, m, u, "", "2025-03-31"]


def _register(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        registry.apply_changes(
            session,
            CODE,
            {"name": "兰州缴费示例有限公司", "region_code": "620102", "industry_code": "3311"},
            source="市场监管",
            as_of=date(2024, 1, 1),
        )
        registry.apply_changes(
            session,
            CODE,
            {"employees": 30, "revenue": 800 * 1_000_000, "total_assets": 500 * 1_000_000},
            source="税务",
            as_of=date(2025, 3, 31),
            year=2024,
        )
        matching.load_rules(session)
        session.commit()


def _current(factory: sessionmaker[Session]) -> dict[str, object]:
    with factory() as session:
        return registry.current_frame(session, credit_codes=[CODE]).row(0, named=True)


def _explain(factory: sessionmaker[Session]) -> tuple[str, int | None]:
    with factory() as session:
        exp = matching.explain(session, CODE, RULE, TODAY)
        return exp.result, exp.amount_fen


def test_template_headers_are_chinese_and_extend_the_graduate_template() -> None:
    assert HEAD[:6] == [
        "统一社会信用代码",
        "人员编号",
        "毕业（离校）日期",
        "入职日期",
        "劳动合同期限（月）",
        "已缴纳社会保险",
    ]
    assert {"补贴期缴费月数", "单位缴纳基本养老保险费（元）", "单位缴纳基本医疗保险费（元）",
            "单位缴纳失业保险费（元）"} <= set(HEAD)  # fmt: skip


def test_contributions_make_the_subsidy_and_a_missing_record_makes_it_to_confirm(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    _register(session_maker)
    src = _write(tmp_path / "g.csv", [_row("E1"), _row("E2", "10", "7200", "2925", "225")])
    report = run_import(session_maker, src, today=TODAY)
    assert report.rejected == 0 and report.inserted == 2
    row = _current(session_maker)
    assert row["graduate_hires"] == 2
    assert row["graduate_insurance_paid"] == (8640 + 3510 + 270 + 7200 + 2925 + 225) * 100
    assert _explain(session_maker) == ("eligible", 2_277_000)
    # a third qualifying hire without contribution records: the amount is to be confirmed
    run_import(
        session_maker, _write(tmp_path / "g2.csv", [_row("E3", "", "", "", "")]), today=TODAY
    )
    row = _current(session_maker)
    assert row["graduate_hires"] == 3 and row["graduate_insurance_paid"] is None
    assert _explain(session_maker) == ("eligible", None)  # never an estimate
    # once its contributions are recorded the total comes back
    run_import(session_maker, _write(tmp_path / "g3.csv", [_row("E3")]), today=TODAY)
    assert _current(session_maker)["graduate_insurance_paid"] == 3_519_000


def test_bad_contribution_rows_are_refused_clearly(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    _register(session_maker)
    rows = [_row("E1", "13"), _row("E2", "12", "8640", "", "270"), _row("E3", "12", "-5")]
    errors = tmp_path / "errors.csv"
    report = run_import(
        session_maker, _write(tmp_path / "bad.csv", rows), errors_path=errors, today=TODAY
    )
    assert report.rejected == 3
    with errors.open(encoding="utf-8-sig") as fh:
        reasons = " ".join(r["reason"] for r in csv.DictReader(fh))
    assert "最长1年" in reasons and "一并填写" in reasons and "负数" in reasons
    with session_maker() as session:
        assert session.scalar(select(func.count()).select_from(GraduateHire)) == 0


def test_the_demo_carries_contribution_records() -> None:
    rows = generate(300, 2020)
    hires = demo_hires(rows, 2020)
    assert hires and all(h.contract_months >= 12 and h.social_insurance for h in hires)
    recorded = [h for h in hires if h.insured_months is not None]
    assert recorded and len(recorded) < len(hires)  # most recorded, some to be confirmed
    assert all(1 <= (h.insured_months or 0) <= 12 for h in recorded)
    assert all(
        registry.qualifies_as_graduate_hire(h.graduated_on, h.hired_on, h.contract_months, True)
        for h in hires
    )
