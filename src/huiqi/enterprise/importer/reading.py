"""Reading files: CSV (UTF-8 or GB 18030) and XLSX streamed row by row, header first.

A spreadsheet is unpacked and read in a bounded worker process (huiqi.core.sandbox) that writes
its cell texts to a temporary file; this process streams that file.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from huiqi.core.sandbox import Bounds, Overrun, run_bounded
from huiqi.enterprise.importer.report import ImportRefused


def cell_text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        # spreadsheets hand numbers over as binary floats: take the shortest exact decimal form
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value).strip()


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head.strip():
        raise ImportRefused("文件为空 / the file is empty")
    cut = head[: head.rfind(b"\n") + 1] or head
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            cut.decode(encoding)
        except UnicodeDecodeError:
            continue
        return path.open(encoding=encoding, newline="")
    raise ImportRefused("无法识别文件编码（应为 UTF-8 或 GBK）/ unreadable text encoding")


XLSX_MAX_UNZIPPED_BYTES = 2 * 1024**3
"""An XLSX whose parts unpack to more than this (2 GiB) is refused before it is read."""
XLSX_MAX_RATIO = 200
"""…and so is one that unpacks to more than 200 times its size beyond 100 MB (a compression bomb)."""


def check_xlsx(path: Path) -> None:
    """Refuse a spreadsheet that would unpack into far more than a registry export ever does.

    A small XLSX can declare hundreds of megabytes of shared strings or sheet rows; openpyxl then
    holds them in memory. The ZIP directory tells the unpacked sizes without unpacking anything.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportRefused("XLSX 文件已损坏 / damaged XLSX container") from None
    size = max(path.stat().st_size, 1)
    if total > XLSX_MAX_UNZIPPED_BYTES or (total > 100 * 1024**2 and total > XLSX_MAX_RATIO * size):
        raise ImportRefused(
            f"XLSX 解压后达 {total:,} 字节（文件仅 {size:,} 字节），疑似压缩炸弹，已拒绝 / "
            "the spreadsheet unpacks to far more than its size (a compression bomb)"
        )


@dataclass(frozen=True)
class SheetLimits:
    """Bounds of reading one spreadsheet: its worker's time and memory, and the cells it may hold."""

    timeout_seconds: float = 600.0
    memory_mb: int = 1024
    workers: int = 2
    max_cells: int = 40_000_000


def sheet_limits_from_settings(settings: Any) -> SheetLimits:
    """The spreadsheet limits configured in the settings (HUIQI_IMPORT_XLSX_*, HUIQI_PARSE_*)."""
    return SheetLimits(
        timeout_seconds=float(settings.import_xlsx_timeout_seconds),
        memory_mb=int(settings.parse_memory_mb),
        workers=int(settings.parse_workers),
        max_cells=int(settings.import_xlsx_max_cells),
    )


def _too_many_cells(count: int, limit: int) -> str:
    return (
        f"工作表单元格过多（{count:,} 个，上限 {limit:,} 个），疑似恶意构造的文件，已拒绝；"
        "请只保留导入模板的列并删除空白行列后重试 / "
        f"the sheet holds more than {limit:,} cells and was refused"
    )


def _sheet_to_lines(source: str, target: str, max_cells: int) -> tuple[str, str]:
    """Worker body: write the first sheet's rows as JSON lines of cell texts, within the cell cap.

    The declared dimension is checked before any row is read, so a tiny file claiming a million
    rows by sixteen thousand columns is refused at once; rows are counted as they come.
    """
    from openpyxl import load_workbook

    try:
        book = load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        return "refused", f"XLSX 无法读取 / unreadable XLSX: {exc}"
    try:
        sheet = book.worksheets[0]
        declared = (sheet.max_row or 0) * (sheet.max_column or 0)
        if declared > max_cells:
            return "refused", _too_many_cells(declared, max_cells)
        cells = 0
        with open(target, "w", encoding="utf-8") as out:
            for row in sheet.iter_rows(values_only=True):
                cells += max(len(row), 1)
                if cells > max_cells:
                    return "refused", _too_many_cells(cells, max_cells)
                out.write(json.dumps([cell_text(c) for c in row], ensure_ascii=False))
                out.write("\n")
    finally:
        book.close()
    return "ok", ""


def _read_sheet(path: Path, limits: SheetLimits) -> Iterator[list[Any]]:
    """Rows of an XLSX read in a bounded worker process (a bomb cannot stall or swell the server)."""
    check_xlsx(path)
    bounds = Bounds(limits.timeout_seconds, limits.memory_mb, limits.workers)
    with tempfile.TemporaryDirectory(prefix="huiqi-sheet-") as tmp:
        lines = Path(tmp) / "rows.jsonl"
        try:
            status, reason = run_bounded(
                _sheet_to_lines,
                (str(path), str(lines), limits.max_cells),
                bounds,
                name="spreadsheet",
                preload=["openpyxl"],
            )
        except Overrun as exc:
            if exc.kind == "timeout":
                reason = (
                    f"读取工作表超时（超过 {limits.timeout_seconds:g} 秒），已终止；"
                    "请检查文件是否为正常的导入表格 / "
                    f"reading the sheet took longer than {limits.timeout_seconds:g} s"
                )
            elif exc.kind == "memory":
                reason = (
                    f"读取工作表所需内存超过上限（{limits.memory_mb} MB），已终止 / "
                    f"reading the sheet needed more than {limits.memory_mb} MB"
                )
            else:
                reason = f"XLSX 无法读取（{exc.detail}）/ unreadable XLSX ({exc.detail})"
            raise ImportRefused(reason) from None
        if status != "ok":
            raise ImportRefused(reason)
        with lines.open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def read_rows(path: Path, limits: SheetLimits | None = None) -> Generator[list[Any], None, None]:
    """Stream the rows of a CSV or XLSX file (header first) without loading it whole.

    A spreadsheet is read in a bounded worker process (``limits``), never in this one.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        fh = _open_text(path)
        try:
            yield from csv.reader(fh)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportRefused(f"CSV 无法读取 / unreadable CSV: {exc}") from None
        finally:
            fh.close()
        return
    if suffix in (".xlsx", ".xlsm"):
        yield from _read_sheet(path, limits or SheetLimits())
        return
    raise ImportRefused(
        f"不支持的文件类型 {suffix or '(none)'}，请用 .csv 或 .xlsx / use .csv or .xlsx"
    )
