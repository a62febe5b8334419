"""Safe spreadsheet exports: every CSV and XLSX the platform writes goes through here.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by spreadsheet programs (CSV injection, OWASP "CSV Injection"): an enterprise that names
itself ``=HYPERLINK("http://…","点击")`` would otherwise plant a live link or command in the payment
file an officer opens. Such text is neutralised by prefixing a single quote, which keeps the value
readable; real numbers (int, Decimal, float) and negative numbers written as text stay numbers,
and dates stay dates.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
# A negative amount written as text (import files, figures) is a number to every spreadsheet,
# not a formula, and must survive a round trip through the importer unchanged.
NEGATIVE_NUMBER = re.compile(r"-\d+(\.\d+)?")


def safe_text(text: str) -> str:
    """The text, prefixed with a single quote when a spreadsheet would read it as a formula."""
    if text.startswith(DANGEROUS_FIRST) and not NEGATIVE_NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_cell(value: Any) -> Any:
    """A value fit for a spreadsheet cell: numbers, booleans and dates kept, text neutralised."""
    if value is None:
        return None
    if isinstance(value, bool | int | float | Decimal | date | datetime):
        return value
    return safe_text(str(value))


def safe_row(row: Iterable[Any]) -> list[Any]:
    """Every cell of a row made safe."""
    return [safe_cell(v) for v in row]


class SafeCsvWriter:
    """A csv.writer whose rows are neutralised cell by cell before they are written."""

    def __init__(self, fh: IO[str], **kwargs: Any) -> None:
        """Wrap csv.writer(fh, **kwargs)."""
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one neutralised row."""
        self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write neutralised rows."""
        for row in rows:
            self.writerow(row)


def csv_bytes(
    header: Sequence[Any] | None, rows: Iterable[Iterable[Any]], *, lineterminator: str = "\r\n"
) -> bytes:
    """A whole CSV file as UTF-8 with a byte-order mark (spreadsheet programs then read Chinese)."""
    buf = io.StringIO()
    writer = SafeCsvWriter(buf, lineterminator=lineterminator)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def append_row(sheet: Any, row: Iterable[Any]) -> None:
    """Append a neutralised row to an openpyxl worksheet (normal or write-only)."""
    sheet.append(safe_row(row))
