"""Reading files: CSV (UTF-8 or GB 18030) and XLSX streamed row by row, header first."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

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


def read_rows(path: Path) -> Iterator[list[Any]]:
    """Stream the rows of a CSV or XLSX file (header first) without loading it whole."""
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
        from openpyxl import load_workbook

        check_xlsx(path)
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise ImportRefused(f"XLSX 无法读取 / unreadable XLSX: {exc}") from None
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                yield list(row)
        finally:
            book.close()
        return
    raise ImportRefused(
        f"不支持的文件类型 {suffix or '(none)'}，请用 .csv 或 .xlsx / use .csv or .xlsx"
    )
