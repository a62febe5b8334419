"""Spreadsheet bombs are refused: from the ZIP directory, the declared sheet size or the cell count,
and by the time limit of the worker process that reads them; the server keeps answering."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from huiqi.enterprise.importer import ImportRefused, SheetLimits, read_rows
from tests.conftest import csrf_from

SHEET = "xl/worksheets/sheet1.xml"
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
pytestmark = pytest.mark.slow


def xlsx_with_sheet(sheet_xml: str) -> bytes:
    """A real workbook (made by openpyxl) whose first sheet is replaced by ``sheet_xml``."""
    book = Workbook()
    book.active.append(["统一社会信用代码"])  # type: ignore[union-attr]
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = sheet_xml.encode() if info.filename == SHEET else src.read(info)
            dst.writestr(info.filename, data)
    return out.getvalue()


def sheet(dimension: str | None, rows: str) -> str:
    """Worksheet XML with the given row elements and a declared dimension (if any)."""
    declared = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">'
        f"{declared}<sheetData>{rows}</sheetData></worksheet>"
    )


def empty_cells(count: int) -> str:
    """One row of ``count`` empty cells (they compress to almost nothing)."""
    return '<row r="1"><c r="A1" t="inlineStr"><is><t>统一社会信用代码</t></is></c></row>' + (
        '<row r="2">' + "<c/>" * count + "</row>"
    )


def test_xlsx_bomb_is_refused_from_the_zip_directory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        # 120 MB of shared strings compress to a few hundred KB.
        archive.writestr(
            "xl/sharedStrings.xml", "<sst>" + "<si><t>a</t></si>" * 8_000_000 + "</sst>"
        )
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImportRefused) as info:
        next(read_rows(path))
    assert "压缩炸弹" in str(info.value)


def test_huge_declared_sheet_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "wide.xlsx"
    path.write_bytes(xlsx_with_sheet(sheet("A1:XFD1048576", empty_cells(1))))
    assert path.stat().st_size < 10_000
    with pytest.raises(ImportRefused) as info:
        next(read_rows(path))
    assert "单元格过多" in str(info.value) and "17,179,869,184" in str(info.value)


def test_millions_of_empty_cells_are_refused_by_the_cell_count(tmp_path: Path) -> None:
    path = tmp_path / "cells.xlsx"
    path.write_bytes(xlsx_with_sheet(sheet(None, empty_cells(300_000))))
    assert path.stat().st_size < 50_000
    with pytest.raises(ImportRefused) as info:
        list(read_rows(path, SheetLimits(max_cells=100_000)))
    assert "单元格过多" in str(info.value)


def test_a_sheet_that_reads_too_long_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "slow.xlsx"
    path.write_bytes(xlsx_with_sheet(sheet("A1:A1", empty_cells(3_000_000))))
    with pytest.raises(ImportRefused) as info:
        list(read_rows(path, SheetLimits(timeout_seconds=0.5, max_cells=10**9)))
    assert "读取工作表超时" in str(info.value)


def test_worker_reads_cells_as_the_import_sees_them(tmp_path: Path) -> None:
    book = Workbook()
    rows = [["统一社会信用代码", "数值", "日期"], ["  91620102MA72H8K3X0 ", 12.5, None], []]
    for row in rows:
        book.active.append(row)  # type: ignore[union-attr]
    path = tmp_path / "plain.xlsx"
    book.save(path)
    got = list(read_rows(path))
    assert got[0] == ["统一社会信用代码", "数值", "日期"]
    assert got[1] == ["91620102MA72H8K3X0", "12.5", ""]


def test_bomb_upload_is_refused_while_the_server_keeps_answering(
    client: TestClient, login_as: Callable[..., object]
) -> None:
    login_as("officer")
    token = csrf_from(client, "/enterprise/import")
    settings = client.app.state.settings  # type: ignore[attr-defined]
    settings.import_xlsx_timeout_seconds = 2
    settings.import_xlsx_max_cells = 10**9
    slow = xlsx_with_sheet(sheet("A1:A1", empty_cells(6_000_000)))
    assert len(slow) < 200_000
    result: dict[str, tuple[str, float]] = {}

    def upload() -> None:
        response = client.post(
            "/enterprise/import",
            data={"csrf_token": token},
            files={"file": ("bomb.xlsx", slow, "application/octet-stream")},
            follow_redirects=True,
        )
        result["upload"] = (response.text, time.monotonic())

    worker = threading.Thread(target=upload)
    worker.start()
    time.sleep(0.3)
    answered = []
    while worker.is_alive() and len(answered) < 20:
        assert client.get("/healthz").status_code == 200
        answered.append(time.monotonic())
    worker.join()
    text, upload_done = result["upload"]
    # /healthz answered while the sheet was still being read in the worker.
    assert answered and answered[0] < upload_done
    assert 'data-status="refused"' in text and "读取工作表超时" in text
    # The declared-size bomb is refused by the default limits, with the reason on the job page.
    settings.import_xlsx_timeout_seconds, settings.import_xlsx_max_cells = 600, 40_000_000
    wide = xlsx_with_sheet(sheet("A1:XFD1048576", empty_cells(1)))
    response = client.post(
        "/enterprise/import",
        data={"csrf_token": token},
        files={"file": ("wide.xlsx", wide, "application/octet-stream")},
        follow_redirects=True,
    )
    assert 'data-status="refused"' in response.text
    assert "单元格过多" in response.text, response.text[response.text.find("job-status") :][:600]
