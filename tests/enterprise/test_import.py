"""Bulk import: per-row validation, idempotent re-import, kill-and-rerun, refused files, template."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service
from huiqi.enterprise.importer import ImportRefused, run_import, write_template
from huiqi.enterprise.models import EnterpriseValue
from huiqi.enterprise.population import generate, write_file

TODAY = date(2025, 6, 30)


def _write_csv(
    path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8"
) -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


HEADER = [
    "统一社会信用代码",
    "企业名称",
    "所在地行政区划代码",
    "国民经济行业代码",
    "成立日期",
    "年度",
    "从业人员（人）",
    "营业收入（万元）",
]


def _code(n: int, county: str = "620102") -> str:
    return make_credit_code("9", "1", county, f"MA7{n:05d}")


def _errors(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_bad_rows_are_reported_and_good_rows_import(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    good = [_code(1), "兰州甲公司", "620102", "3311", "2015-01-01", "2024", "120", "5000"]
    wrong_check = [
        _code(2)[:-1] + ("0" if _code(2)[-1] != "0" else "1"),
        "乙",
        "620102",
        "3311",
        "",
        "2024",
        "5",
        "10",
    ]
    rows = [
        good,
        wrong_check,
        [_code(3), "丙", "629999", "3311", "", "2024", "5", "10"],  # unknown region
        [_code(4), "丁", "620102", "9999", "", "2024", "5", "10"],  # unknown industry
        [_code(5), "戊", "620102", "3311", "", "2024", "-3", "10"],  # negative head count
        [_code(6), "己", "620102", "3311", "", "2024", "10", "80000000"],  # 元 in the 万元 column
        [_code(7), "庚", "620102", "3311", "2099-01-01", "2024", "10", "100"],  # future date
        [_code(1), "甲的重复", "620102", "3311", "", "2024", "10", "100"],  # duplicate code
        [_code(8), "辛", "622926", "0111", "2010-05-05", "2024", "3", "60.5"],
    ]
    src = _write_csv(tmp_path / "in.csv", HEADER, rows)
    report_path = tmp_path / "errors.csv"
    report = run_import(session_maker, src, errors_path=report_path, today=TODAY)
    assert report.counts() == {"inserted": 2, "updated": 0, "unchanged": 0, "rejected": 7}
    errors = _errors(report_path)
    by_row = {int(e["row"]): e for e in errors}
    assert "校验码错误" in by_row[3]["reason"] and by_row[3]["column"] == "统一社会信用代码"
    assert "甘肃省内无此" in by_row[4]["reason"] and by_row[4]["value"] == "629999"
    assert "无此小类" in by_row[5]["reason"]
    assert "负数" in by_row[6]["reason"] and by_row[6]["value"] == "-3"
    assert "万元列" in by_row[7]["reason"]
    assert "晚于今天" in by_row[8]["reason"] and by_row[8]["column"] == "成立日期"
    assert "重复" in by_row[9]["reason"] and "row 2" in by_row[9]["reason"]
    with session_maker() as s:
        frame = service.current_frame(s)
    assert frame["credit_code"].to_list() == sorted([_code(1), _code(8)])
    first = frame.filter(pl.col("credit_code") == _code(1)).row(0, named=True)
    assert first["revenue"] == 5000 * 1_000_000 and first["size_class"] == "small"
    assert first["figures_year"] == 2024 and first["above_scale"] is True


def test_reimport_changes_nothing_and_updates_are_history(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [
        [_code(i), f"企业{i}", "620102", "3311", "", "2024", str(10 + i), "100"] for i in range(5)
    ]
    src = _write_csv(tmp_path / "a.csv", HEADER, rows)
    assert run_import(session_maker, src, today=TODAY).counts()["inserted"] == 5
    again = run_import(session_maker, src, today=TODAY)
    assert again.counts() == {"inserted": 0, "updated": 0, "unchanged": 5, "rejected": 0}
    rows[0][7] = "2500"  # one enterprise's revenue changes
    src2 = _write_csv(tmp_path / "b.csv", HEADER, rows)
    assert run_import(session_maker, src2, today=TODAY).counts() == {
        "inserted": 0, "updated": 1, "unchanged": 4, "rejected": 0
    }  # fmt: skip
    with session_maker() as s:
        history = s.execute(
            select(EnterpriseValue.value, EnterpriseValue.superseded_at)
            .where(EnterpriseValue.field == "revenue")
            .order_by(EnterpriseValue.id)
        ).all()
        current = service.current_frame(s)
    revenue_rows_of_first = [
        h for h in history if h.value in ("100", str(100 * 1_000_000), str(2500 * 1_000_000))
    ]
    assert any(h.superseded_at is not None for h in revenue_rows_of_first)
    assert current.filter(pl.col("credit_code") == _code(0))["revenue"].item() == 2500 * 1_000_000


def test_killed_import_rerun_equals_one_clean_import(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = generate(120, seed=7)
    src = tmp_path / "pop.csv"
    write_file(rows, src)
    # a "kill" after the second batch: the progress callback raises, as a SIGKILL would stop it
    calls = {"n": 0}

    def die(_n: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_import(session_maker, src, batch_size=25, on_progress=die, today=TODAY)
    with session_maker() as s:
        partial = service.current_frame(s).height
    assert partial == 50
    rerun = run_import(session_maker, src, batch_size=25, today=TODAY)
    assert rerun.counts()["unchanged"] == 50 and rerun.counts()["inserted"] == 70
    with session_maker() as s:
        after_kill = service.current_frame(s)
        values_after_kill = service.repo.value_count(s)
    # compare with one clean import into a fresh state: same rows, same value count
    with session_maker() as s:
        clean_codes = sorted(r["credit_code"] for r in rows)
    assert after_kill["credit_code"].to_list() == clean_codes
    assert values_after_kill == sum(
        1 for r in rows for k, v in r.items() if v and k not in ("credit_code", "year", "as_of")
    )


def test_gbk_csv_and_english_headers(session_maker: sessionmaker[Session], tmp_path: Path) -> None:
    src = _write_csv(
        tmp_path / "gbk.csv",
        HEADER,
        [[_code(11), "陇南花椒种植有限公司", "621202", "0163", "", "2024", "8", "90"]],
        "gbk",
    )
    assert run_import(session_maker, src, today=TODAY).inserted == 1
    english = [
        "credit_code",
        "name",
        "region_code",
        "industry_code",
        "year",
        "employees",
        "revenue_wan",
    ]
    src2 = _write_csv(
        tmp_path / "en.csv", english, [[_code(12), "A Co", "620102", "6513", "2024", "20", "600"]]
    )
    assert run_import(session_maker, src2, today=TODAY).inserted == 1


def test_xlsx_import(session_maker: sessionmaker[Session], tmp_path: Path) -> None:
    rows = generate(30, seed=3)
    src = tmp_path / "pop.xlsx"
    write_file(rows, src)
    report = run_import(session_maker, src, today=TODAY)
    assert report.inserted == 30 and report.rejected == 0


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (["企业名称", "营业收入（万元）"], "credit_code"),
        (["统一社会信用代码", "营业收入"], "unreadable headers"),  # unit missing: refused
        (["统一社会信用代码", "\x00\x01garbage"], "unreadable headers"),
        (["统一社会信用代码", "企业名称", "name"], "duplicate"),
    ],
)
def test_unreadable_headers_refuse_the_file(
    session_maker: sessionmaker[Session], tmp_path: Path, header: list[str], fragment: str
) -> None:
    src = _write_csv(tmp_path / "bad.csv", header, [["x"] * len(header)])
    with pytest.raises(ImportRefused, match=fragment):
        run_import(session_maker, src, today=TODAY)
    with session_maker() as s:
        assert service.current_frame(s).height == 0


def test_refuses_binary_and_wrong_type(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(128, 256)) * 10)
    with pytest.raises(ImportRefused):
        run_import(session_maker, junk, today=TODAY)
    with pytest.raises(ImportRefused, match=".csv"):
        run_import(session_maker, tmp_path / "x.pdf", today=TODAY)


def test_template_round_trip(session_maker: sessionmaker[Session], tmp_path: Path) -> None:
    for name in ("t.csv", "t.xlsx"):
        path = tmp_path / name
        write_template(path)
        report = run_import(session_maker, path, today=TODAY)
        assert report.rejected == 0, report.first_errors
    path = tmp_path / "t_en.csv"
    write_template(path, english=True)
    assert run_import(session_maker, path, today=TODAY).unchanged == 1
