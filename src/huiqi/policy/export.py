"""Task breakdown (任务分工表) export: XLSX, CSV and JSON."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

from huiqi.core.export import SafeCsvWriter, append_row
from huiqi.policy.service import TaskRow

HEADERS = [
    "文号",
    "政策名称",
    "条款",
    "条款标题",
    "牵头单位",
    "配合单位",
    "组织实施",
    "量化指标",
    "待确认单位",
]
WIDTHS = [22, 36, 10, 36, 18, 40, 28, 30, 18]


def row_values(row: TaskRow) -> list[str]:
    """The cells of one task row, in HEADERS order."""
    return [
        row.doc_number or "",
        row.policy_title,
        row.article_label,
        row.article_title,
        row.lead,
        "、".join(row.cooperating),
        "、".join(row.implementers),
        ";".join(row.targets),
        "、".join(row.unknown),
    ]


def to_xlsx(rows: list[TaskRow], *, title: str = "任务分工表") -> bytes:
    """An XLSX workbook: Chinese headers, frozen header row, set widths, wrapped text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "任务分工表"
    append_row(sheet, HEADERS)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in sheet[1]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        append_row(sheet, row_values(row))
        for cell in sheet[sheet.max_row]:
            cell.alignment = wrap
    for i, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    workbook.properties.title = title
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def to_csv(rows: list[TaskRow]) -> bytes:
    """CSV in UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese correctly."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(row_values(row))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_dicts(rows: list[TaskRow]) -> list[dict[str, Any]]:
    """Task rows as plain dictionaries (for the JSON API)."""
    return [asdict(row) for row in rows]


def to_json(rows: list[TaskRow]) -> bytes:
    """JSON array of task rows."""
    return json.dumps(to_dicts(rows), ensure_ascii=False, indent=2).encode("utf-8")
