"""The header row: which column is which field, in Chinese or English, for either template."""

from __future__ import annotations

import re
from typing import Any

from huiqi.enterprise import graduates
from huiqi.enterprise.catalogue import catalogue
from huiqi.enterprise.importer.report import ImportRefused

META_HEADERS = {
    "year": ("年度", "year", ("数据年度", "figures_year", "年份")),
    "source": ("数据来源", "source", ("来源",)),
    "as_of": ("数据日期", "as_of", ("数据截至日期", "截至日期")),
}


def norm(header: str) -> str:
    text = str(header).replace("（", "(").replace("）", ")").replace("\ufeff", "")
    return re.sub(r"\s+", "", text).lower()


def columns() -> list[tuple[str, str, str]]:
    """(key, Chinese header, English header) of every importable column, template order."""
    cat = catalogue()
    cols = [("credit_code", *cat["credit_code"].headers)]
    for f in cat.stored:
        if f.kind == "profile":
            cols.append((f.name, *f.headers))
    cols.append(("year", META_HEADERS["year"][0], META_HEADERS["year"][1]))
    for f in cat.stored:
        if f.kind == "yearly":
            cols.append((f.name, *f.headers))
    for key in ("source", "as_of"):
        cols.append((key, META_HEADERS[key][0], META_HEADERS[key][1]))
    return cols


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for key, zh, en in columns():
        out[norm(zh)] = key
        out[norm(en)] = key
    for key, (_zh, _en, extra) in META_HEADERS.items():
        for alias in extra:
            out[norm(alias)] = key
    cat = catalogue()
    for f in cat.stored:
        if f.type != "money":  # a bare money label would leave the unit unclear
            out.setdefault(norm(f.zh), f.name)
            out.setdefault(norm(f.name), f.name)
    out[norm("credit_code")] = "credit_code"
    out[norm("信用代码")] = "credit_code"
    return out


def is_graduates_header(headers: list[Any]) -> bool:
    """Whether a header row is the graduates template's (it names a hire-only column)."""
    known = {norm(text): key for text, key in graduates.aliases().items()}
    return any(known.get(norm(str(h))) in graduates.MARKERS for h in headers if h is not None)


def map_headers(headers: list[Any], *, hires: bool = False) -> dict[int, str]:
    """Column index → field key; raises ImportRefused naming every header it cannot read.

    ``hires`` reads the graduates template, whose required columns must all be present.
    """
    if hires:
        aliases = {norm(text): key for text, key in graduates.aliases().items()}
        expected = "、".join(c[1] for c in graduates.COLUMNS)
        required: tuple[str, ...] = graduates.REQUIRED
    else:
        aliases = _aliases()
        expected = "、".join(zh for _k, zh, _en in columns())
        required = ("credit_code",)
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(headers):
        text = "" if raw is None else str(raw).strip()
        if not text:
            continue
        key = aliases.get(norm(text))
        if key is None:
            unknown.append(text)
            continue
        if key in seen:
            raise ImportRefused(f"列 {text!r} 与 {seen[key]!r} 重复 / duplicate column for {key}")
        seen[key] = text
        mapping[i] = key
    if unknown:
        raise ImportRefused(
            f"无法识别的表头 / unreadable headers: {', '.join(repr(u) for u in unknown[:10])}；"
            f"请使用导入模板的表头 / use the template headers: {expected}"
        )
    if "credit_code" not in mapping.values():
        raise ImportRefused("缺少“统一社会信用代码”列 / no credit_code column")
    missing = [key for key in required if key not in mapping.values()]
    if missing:
        names = "、".join(c[1] for c in graduates.COLUMNS if c[0] in missing)
        raise ImportRefused(f"缺少必填列 {names} / missing columns: {', '.join(missing)}")
    return mapping
