"""Validating rows: every cell of a row parsed and checked; a row with any problem is not written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import TYPE_CHECKING, Any

from huiqi.core.codes import CodeError, validate_credit_code, validate_industry, validate_region
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise.catalogue import Field, ValueProblem, catalogue
from huiqi.enterprise.importer.reading import cell_text
from huiqi.enterprise.importer.report import Issue
from huiqi.enterprise.importer.seen import SeenCodes
from huiqi.enterprise.incoming import Incoming

if TYPE_CHECKING:
    from huiqi.enterprise import graduates

# Implausible magnitudes: a money value in a 万元 column above 5万亿元 exceeds the revenue of any
# Chinese enterprise, and revenue above 5亿元 per employee points at 元 typed into a 万元 column.
MAX_WAN = 50_000_000 * FEN_PER_WAN
MAX_REVENUE_PER_EMPLOYEE = 50_000 * FEN_PER_WAN
NON_NEGATIVE_EXCEPT = {"taxable_income"}  # a loss gives a negative taxable income

SOURCE_ALIASES = {
    "tax": "税务",
    "market": "市场监管",
    "samr": "市场监管",
    "hr": "人社",
    "stats": "统计",
    "statistics": "统计",
    "science": "科技",
    "miit": "工信",
    "self": "self-reported",
    "自报": "self-reported",
    "企业自报": "self-reported",
}


# Values of these kinds repeat across rows (dates, codes, small counts, enums), so a file's parse and
# check results are remembered per (field, text); the cap keeps memory bounded on any input.
_MEMO_TYPES = frozenset({"date", "enum", "bool", "int"})
_MEMO_FIELDS = frozenset({"region_code", "industry_code"})
MEMO_LIMIT = 200_000


@dataclass
class RowContext:
    """What validation of one file needs to remember between rows."""

    mapping: dict[int, str]
    header_text: dict[str, str]
    default_source: str | None
    today: date
    seen: SeenCodes = field(default_factory=SeenCodes)
    hires_seen: dict[str, int] = field(default_factory=dict)
    memo: dict[tuple[str, str], tuple[Any, str | None]] = field(default_factory=dict)


def _source(raw: str) -> str:
    text = raw.strip()
    text = SOURCE_ALIASES.get(text.lower(), SOURCE_ALIASES.get(text, text))
    if text not in catalogue().sources:
        raise ValueProblem(f"未知数据来源，应为 {'、'.join(catalogue().sources)} / unknown source")
    return text


def _meta_value(key: str, text: str, today: date) -> tuple[Any, str | None]:
    """Parsed source / as-of date / figures year of a row, or the reason it is rejected."""
    cat = catalogue()
    try:
        if key == "source":
            return _source(text), None
        if key == "as_of":
            day = cat["founded_on"].parse(text)
            return day, ("数据日期晚于今天 / date is in the future" if day > today else None)
        year = cat["employees"].parse(text)
        if year > today.year:
            return year, "年度晚于今年 / year is in the future"
        if year < 1949:
            return year, "年度不合理 / implausible year"
        return year, None
    except ValueProblem as exc:
        return None, str(exc)


def field_value(ctx: RowContext, f: Field, text: str) -> tuple[Any, str | None]:
    """Parsed and checked value of one cell, or the reason it is rejected (memoised when cheap)."""
    memoise = f.type in _MEMO_TYPES or f.name in _MEMO_FIELDS
    if memoise:
        hit = ctx.memo.get((f.name, text))
        if hit is not None:
            return hit
    try:
        value = f.parse(text)
        result: tuple[Any, str | None] = (value, _check_value(f, value, ctx.today))
    except ValueProblem as exc:
        result = (None, str(exc))
    if memoise and len(ctx.memo) < MEMO_LIMIT:
        ctx.memo[(f.name, text)] = result
    return result


def meta(ctx: RowContext, key: str, text: str) -> tuple[Any, str | None]:
    """Parsed source / as-of date / figures year of a cell, or why it is rejected (memoised)."""
    hit = ctx.memo.get((key, text))
    if hit is None:
        hit = _meta_value(key, text, ctx.today)
        if len(ctx.memo) < MEMO_LIMIT:
            ctx.memo[(key, text)] = hit
    return hit


_META_KEYS = frozenset({"credit_code", "source", "as_of", "year"})


@cache
def _field_kinds() -> dict[str, tuple[Field, bool]]:
    """Stored field → (field, whether it is yearly)."""
    return {f.name: (f, f.kind == "yearly") for f in catalogue().stored}


def validate_row(
    ctx: RowContext, number: int, cells: list[Any]
) -> tuple[Incoming | None, list[Issue]]:
    """Check one data row; a row with any issue yields no Incoming at all."""
    raw: dict[str, str] = {}
    width = len(cells)
    for i, key in ctx.mapping.items():
        raw[key] = cell_text(cells[i]) if i < width else ""
    issues: list[Issue] = []

    def bad(key: str, reason: str) -> None:
        issues.append(Issue(number, ctx.header_text[key], raw.get(key, ""), reason))

    code = ""
    try:
        code = validate_credit_code(raw.get("credit_code", ""))
    except CodeError as exc:
        bad("credit_code", str(exc))
    if code:
        first = ctx.seen.get(code)
        if first is not None:
            bad("credit_code", f"与第 {first} 行信用代码重复 / duplicate of row {first}")
            code = ""
        else:
            ctx.seen[code] = number

    source: str | None = ctx.default_source
    as_of = ctx.today
    year = 0
    for key in ("source", "as_of", "year"):
        text = raw.get(key)
        if not text:
            continue
        value, problem = meta(ctx, key, text)
        if problem:
            bad(key, problem)
        elif key == "source":
            source = value
        elif key == "as_of":
            as_of = value
        else:
            year = value

    kinds = _field_kinds()
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if not text or key in _META_KEYS:
            continue
        value, problem = field_value(ctx, kinds[key][0], text)
        if problem:
            bad(key, problem)
        else:
            values[key] = value

    employees = values.get("employees")
    revenue = values.get("revenue")
    if employees and revenue and revenue > MAX_REVENUE_PER_EMPLOYEE * employees:
        bad(
            "revenue",
            "营业收入与从业人员不相称（人均超过 5 亿元），疑似以元填入万元列"
            " / implausible revenue per employee: 元 in the 万元 column?",
        )
    for start, end in validity_pairs():
        if start in values and end in values and values[end] < values[start]:
            bad(end, "有效期止早于起始日期 / validity ends before it starts")
    has_yearly = any(kinds[k][1] for k in values)
    year_header = ctx.header_text.get("year", "年度")
    if has_yearly and not year and year_header not in {i.column for i in issues}:
        issues.append(
            Issue(
                number,
                year_header,
                "",
                "年度数据需要填写年度 / yearly figures need a year",
            )
        )
    if issues or not code:
        return None, issues
    item = Incoming(code)
    yearly_as_of = as_of if raw.get("as_of") or not year else min(as_of, date(year, 12, 31))
    for key, value in values.items():
        f, is_yearly = kinds[key]
        item.values[(key, year if is_yearly else 0)] = (
            value,
            source or f.source,
            yearly_as_of if is_yearly else as_of,
        )
    return item, []


@cache
def validity_pairs() -> tuple[tuple[str, str], ...]:
    """(start, end) field pairs of validity periods (``…_from`` / ``…_to``)."""
    return tuple(
        (f.name, f.name[:-5] + "_to") for f in catalogue().stored if f.name.endswith("_from")
    )


# The text fields _check_value looks at; every other text field is stored as written.
CHECKED_TEXT = frozenset(
    {"region_code", "industry_code", "contact_email", "contact_webhook", "contact_phone"}
)


def _check_value(f: Field, value: Any, today: date) -> str | None:
    if f.name == "region_code":
        try:
            validate_region(value)
        except CodeError as exc:
            return str(exc)
    elif f.name == "industry_code":
        try:
            validate_industry(value)
        except CodeError as exc:
            return str(exc)
    elif f.type in ("int", "money") and value < 0 and f.name not in NON_NEGATIVE_EXCEPT:
        return "不能为负数 / must not be negative"
    elif f.type == "money" and abs(value) > MAX_WAN:
        return "金额超过 5 万亿元，疑似以元填入万元列 / implausible amount: 元 in the 万元 column?"
    elif f.type == "date" and not f.name.endswith("_to") and value > today:
        return "日期晚于今天 / date is in the future"
    elif f.name == "contact_email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return "邮箱格式不正确 / not an e-mail address"
    elif f.name == "contact_webhook" and not re.match(r"https?://", value):
        return "Webhook 地址应以 http(s):// 开头 / webhook must be an http(s) URL"
    elif f.name == "contact_phone" and not re.fullmatch(r"\+?[0-9\- ]{7,20}", value):
        return "电话号码格式不正确 / not a phone number"
    return None


def validate_hire(
    ctx: RowContext, number: int, cells: list[Any]
) -> tuple[graduates.Hire | None, list[Issue]]:
    """Check one row of the graduates template; a row with any issue yields no Hire."""
    # imported here: graduates brings the database layer, which enterprise rows (and the
    # import's reading process, which reads only those) do without
    from huiqi.enterprise import graduates

    width = len(cells)
    raw = {key: cell_text(cells[i]) if i < width else "" for i, key in ctx.mapping.items()}
    issues: list[Issue] = []

    def bad(key: str, reason: str) -> None:
        issues.append(Issue(number, ctx.header_text[key], raw.get(key, ""), reason))

    code = ""
    try:
        code = validate_credit_code(raw.get("credit_code", ""))
    except CodeError as exc:
        bad("credit_code", str(exc))
    values, problems = graduates.parse_fields(raw, ctx.today)
    for key, reason in problems:
        bad(key, reason)
    source = ctx.default_source or graduates.DEFAULT_SOURCE
    if raw.get("source"):
        value, problem = meta(ctx, "source", raw["source"])
        if problem:
            bad("source", problem)
        else:
            source = value
    if code and "person_ref" in values and "hired_on" in values:
        record = f"{code}|{values['person_ref']}|{values['hired_on']}"
        first = ctx.hires_seen.get(record)
        if first is not None:
            bad("person_ref", f"与第 {first} 行为同一条录用记录 / duplicate of row {first}")
        elif not issues:
            ctx.hires_seen[record] = number
    if issues or not code:
        return None, issues
    return (
        graduates.Hire(
            row=number,
            credit_code=code,
            person_ref=values["person_ref"],
            graduated_on=values["graduated_on"],
            hired_on=values["hired_on"],
            contract_months=values["contract_months"],
            social_insurance=values["social_insurance"],
            source=source,
            as_of=values.get("as_of", ctx.today),
            insured_months=values.get("insured_months"),
            pension_fen=values.get("pension_fen"),
            medical_fen=values.get("medical_fen"),
            unemployment_fen=values.get("unemployment_fen"),
        ),
        [],
    )
