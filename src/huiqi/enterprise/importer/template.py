"""The documented import templates (CSV and XLSX), for the import page and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huiqi.core.export import SafeCsvWriter, append_row
from huiqi.enterprise import graduates
from huiqi.enterprise.catalogue import catalogue
from huiqi.enterprise.importer.headers import columns


@dataclass(frozen=True)
class TemplateColumn:
    """One column of the documented import template."""

    key: str
    header_zh: str
    header_en: str
    description: str
    example: str


_EXAMPLE = {
    "credit_code": "91620102MA72H8K3X0",
    "name": "兰州示例机械制造有限公司",
    "region_code": "620102",
    "industry_code": "3311",
    "founded_on": "2015-03-18",
    "registered_capital": "500",
    "ownership_type": "私营",
    "tax_credit_rating": "A",
    "year": "2024",
    "employees": "120",
    "revenue": "5000",
    "total_assets": "3200.5",
    "rd_expense": "260",
    "taxable_income": "180",
    "export_revenue": "0",
    "graduate_hires": "6",
    "cert_high_tech_from": "2023-11-20",
    "cert_high_tech_to": "2026-11-19",
    "contact_email": "finance@example.cn",
    "consent_email": "是",
    "source": "统计",
    "as_of": "2025-03-31",
}


def template_columns() -> list[TemplateColumn]:
    """The template's columns with what each expects (shown on the import page and in the XLSX)."""
    cat = catalogue()
    out = []
    for key, zh, en in columns():
        if key == "year":
            desc = "年度数据所属年份，填写任何年度数据时必填 / figures year, required with yearly figures"
        elif key == "source":
            desc = (
                f"可选，默认为各字段在属性目录中的来源；取值 {'、'.join(cat.sources)}"
                " / optional; defaults to each field's catalogue source"
            )
        elif key == "as_of":
            desc = "可选，数据截至日期 YYYY-MM-DD，不得晚于今天 / optional as-of date"
        else:
            f = cat[key]
            kind = {
                "money": "金额，单位万元，可带小数",
                "int": "整数，不得为负",
                "date": "日期 YYYY-MM-DD",
                "bool": "是/否",
                "str": "文本",
            }.get(f.type, "")
            if f.type == "enum":
                kind = "取值：" + "、".join(f"{k}（{v}）" for k, v in f.values.items())
            if key == "credit_code":
                kind = "18 位，含校验码（必填）"
            elif key == "region_code":
                kind = "GB/T 2260 六位代码，甘肃省须到区县"
            elif key == "industry_code":
                kind = "GB/T 4754-2017 四位小类代码"
            desc = f"{f.zh}：{kind} / {f.en}"
        out.append(TemplateColumn(key, zh, en, desc, _EXAMPLE.get(key, "")))
    return out


def write_template(path: Path, *, english: bool = False, hires: bool = False) -> None:
    """Write a template (.csv: headers and an example row; .xlsx: plus a sheet describing columns).

    ``hires`` writes the graduates template (recent-graduate hire records) instead of the
    enterprise one.
    """
    if hires:
        cols = [TemplateColumn(k, zh, en, desc, ex) for k, zh, en, desc, ex in graduates.COLUMNS]
        sheet_name = "高校毕业生"
    else:
        cols = template_columns()
        sheet_name = "企业信息"
    headers = [c.header_en if english else c.header_zh for c in cols]
    example = [c.example for c in cols]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = SafeCsvWriter(fh)
            writer.writerow(headers)
            writer.writerow(example)
        return
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = sheet_name
        append_row(sheet, headers)
        append_row(sheet, example)
        notes = book.create_sheet("填写说明")
        append_row(notes, ["列名", "column", "说明 / description"])
        for c in cols:
            append_row(notes, [c.header_zh, c.header_en, c.description])
        book.save(path)
        return
    raise ValueError(f"{path}: template must be .csv or .xlsx")


def template_bytes(kind: str = "csv", english: bool = False, hires: bool = False) -> bytes:
    """A template as bytes, for the downloads on the import page."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"template.{kind}"
        write_template(target, english=english, hires=hires)
        return target.read_bytes()
