"""Typed values in rules: reading literals (money with units, percentages, relative dates) and showing them."""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from huiqi.core.money import FEN_PER_WAN, MoneyError, to_fen

# Largest denominator a ratio threshold may have once reduced (0.0001 → 1/10000); it keeps
# cross-multiplied comparisons inside 64-bit integers for amounts below 9×10^14 fen.
MAX_RATIO_DENOMINATOR = 10_000

# Whole numbers and money (fen) in rules must fit a 64-bit signed integer, the widest column
# type the SQL engine compares with; a ratio threshold lies within ±1000%, so that
# cross-multiplied comparisons stay inside 64 bits; relative dates reach back at most 200 years.
INT64_MAX = 2**63 - 1
MAX_RATIO = 10
MAX_YEARS_BACK = 200
_REL_LIMITS = {
    "years_before": MAX_YEARS_BACK,
    "months_before": MAX_YEARS_BACK * 12,
    "days_before": MAX_YEARS_BACK * 366,
}

_MONEY_RE = re.compile(r"^\s*(-?[\d,]+(?:\.\d+)?)\s*(亿元|万元|元|分|fen|yuan|wan)\s*$")
_MONEY_UNITS = {"亿元": "yi", "万元": "wan", "元": "yuan", "分": "fen", "fen": "fen"}
_MONEY_UNITS.update({"yuan": "yuan", "wan": "wan"})
_PERCENT_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*$")
_DECIMAL_RE = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")


@dataclass(frozen=True)
class VType:
    """The type of an operand: kind (money, ratio, int, date, str, bool) and, for int, its unit."""

    kind: str
    unit: str | None = None

    def describe(self) -> str:
        """Readable name used in error messages."""
        return f"{self.kind} ({self.unit})" if self.unit else self.kind


# Units a parameter may declare, and the operand type each stands for.
PARAM_UNITS: dict[str, VType] = {
    "money": VType("money"),
    "ratio": VType("ratio"),
    "persons": VType("int", "persons"),
    "count": VType("int", "count"),
    "year": VType("int", "year"),
    "years": VType("int", "years"),
    "date": VType("date"),
    "text": VType("str"),
    "bool": VType("bool"),
}


@dataclass(frozen=True)
class RelDate:
    """A date counted back from the evaluation date (years_before: 2 → two years earlier)."""

    years: int = 0
    months: int = 0
    days: int = 0

    def resolve(self, on: date) -> date:
        """The concrete date relative to the evaluation date `on`."""
        return sub_months(on, self.years * 12 + self.months) - timedelta(days=self.days)

    def describe(self) -> tuple[str, str]:
        """Chinese and English wording."""
        if not (self.years or self.months or self.days):
            return "评估日", "the evaluation date"
        parts_zh, parts_en = [], []
        if self.years:
            parts_zh.append(f"{self.years}年")
            parts_en.append(f"{self.years} year(s)")
        if self.months:
            parts_zh.append(f"{self.months}个月")
            parts_en.append(f"{self.months} month(s)")
        if self.days:
            parts_zh.append(f"{self.days}天")
            parts_en.append(f"{self.days} day(s)")
        return f"评估日前{''.join(parts_zh)}", f"{' '.join(parts_en)} before the evaluation date"


def sub_months(on: date, months: int) -> date:
    """`on` moved back by whole months; the 29th–31st clamp to the month's last day."""
    index = on.year * 12 + (on.month - 1) - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(on.day, last))


def years_between(start: date, on: date) -> int:
    """Completed years from `start` to `on` (age arithmetic)."""
    return on.year - start.year - ((on.month, on.day) < (start.month, start.day))


class ValueProblem(ValueError):
    """A literal does not fit the operand's type or unit."""


def parse_money(raw: Any) -> int:
    """Money literal with a unit ('300万元', '1,200元', '5000分') to integer fen."""
    if isinstance(raw, bool) or isinstance(raw, int | Decimal):
        raise ValueProblem(
            f"money needs a unit: write e.g. '{raw}万元', '{raw}元' or '{raw}分' (got a bare number)"
        )
    if not isinstance(raw, str):
        raise ValueProblem(f"expected a money amount such as '300万元', got {raw!r}")
    m = _MONEY_RE.match(raw)
    if not m:
        raise ValueProblem(
            f"not a money amount: {raw!r} (write e.g. '300万元', '1,200元', '5000分')"
        )
    try:
        fen = to_fen(m.group(1), _MONEY_UNITS[m.group(2)])
    except MoneyError as exc:
        raise ValueProblem(str(exc)) from None
    if abs(fen) > INT64_MAX:
        raise ValueProblem(f"money amount {raw!r} is out of range (at most {INT64_MAX:,} fen)")
    return fen


def parse_ratio(raw: Any) -> Fraction:
    """Ratio literal ('3%', 0.03) to an exact fraction with a bounded denominator."""
    if isinstance(raw, bool):
        raise ValueProblem(f"expected a ratio such as '3%' or 0.03, got {raw!r}")
    if isinstance(raw, str):
        m = _PERCENT_RE.match(raw)
        if m:
            value = Fraction(Decimal(m.group(1))) / 100
        elif _DECIMAL_RE.match(raw):
            value = Fraction(Decimal(raw.strip()))
        else:
            raise ValueProblem(f"expected a ratio such as '3%' or 0.03, got {raw!r}")
    elif isinstance(raw, int | Decimal):
        value = Fraction(raw)
    else:
        raise ValueProblem(f"expected a ratio such as '3%' or 0.03, got {raw!r}")
    if value.denominator > MAX_RATIO_DENOMINATOR:
        raise ValueProblem(f"ratio {raw} is finer than 0.01% (at most four decimal places)")
    if abs(value) > MAX_RATIO:
        raise ValueProblem(f"ratio {raw} is out of range (between -1000% and 1000%)")
    return value


def parse_date(raw: Any) -> date | RelDate:
    """Date literal: ISO date, 'evaluation_date', or {years_before|months_before|days_before: n}."""
    if isinstance(raw, date):
        return raw
    if raw == "evaluation_date":
        return RelDate()
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueProblem(f"not a date: {raw!r} (write YYYY-MM-DD)") from None
    if isinstance(raw, dict) and raw:
        allowed = {"years_before", "months_before", "days_before"}
        extra = set(raw) - allowed
        if extra:
            raise ValueProblem(
                f"unknown relative-date key(s) {sorted(extra)}; use {sorted(allowed)}"
            )
        counts = {}
        for k, v in raw.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueProblem(f"{k} must be a whole number ≥ 0, got {v!r}")
            if v > _REL_LIMITS[k]:
                raise ValueProblem(f"{k} is out of range: at most {_REL_LIMITS[k]}, got {v}")
            counts[k] = v
        return RelDate(
            counts.get("years_before", 0),
            counts.get("months_before", 0),
            counts.get("days_before", 0),
        )
    raise ValueProblem(f"not a date: {raw!r}")


def normalise_code(raw: str) -> str:
    """A code as ASCII: full-width digits and letters (６２０１, Ｃ) become 6201, C (NFKC)."""
    return unicodedata.normalize("NFKC", raw).strip().upper()


def parse_scalar(vtype: VType, raw: Any, allowed: dict[str, Any] | None = None) -> Any:
    """One literal of the given type."""
    if vtype.kind == "money":
        return parse_money(raw)
    if vtype.kind == "ratio":
        return parse_ratio(raw)
    if vtype.kind == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueProblem(f"expected a whole number ({vtype.unit}), got {raw!r}")
        if abs(raw) > INT64_MAX:
            raise ValueProblem(
                f"whole number {raw} is out of range (at most {INT64_MAX:,} in absolute value)"
            )
        return raw
    if vtype.kind == "date":
        return parse_date(raw)
    if vtype.kind == "bool":
        if not isinstance(raw, bool):
            raise ValueProblem(f"expected true or false, got {raw!r}")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueProblem(f"expected text, got {raw!r}")
    text = str(raw)
    if allowed and text not in allowed:
        raise ValueProblem(f"{text!r} is not one of the allowed values {sorted(allowed)}")
    return text


@lru_cache(maxsize=4096)
def fmt_money(fen: int) -> tuple[str, str]:
    """Money in Chinese (万元 from ten thousand yuan up) and English (CNY) display."""
    yuan = f"{(Decimal(fen) / 100).normalize():,f}"
    if abs(fen) >= FEN_PER_WAN:
        return f"{(Decimal(fen) / FEN_PER_WAN).normalize():,f}万元", f"CNY {yuan}"
    return f"{yuan}元", f"CNY {yuan}"


@lru_cache(maxsize=4096)
def fmt_ratio(value: Fraction) -> str:
    """A ratio as a percentage with at most two decimals."""
    pct = Decimal(value.numerator) * 100 / Decimal(value.denominator)
    q = pct.quantize(Decimal("0.01"))
    text = f"{q.normalize():f}"
    if "." not in text:
        text += ".0"
    return f"{text}%"


UNIT_WORDS = {
    "persons": ("人", " persons"),
    "years": ("年", " years"),
    "count": ("", ""),
}


def fmt_value(
    vtype: VType, value: Any, labels: dict[str, tuple[str, str]] | None = None
) -> tuple[str, str]:
    """Any typed value in Chinese and English display."""
    if value is None:
        return "未知", "unknown"
    if isinstance(value, list | tuple | frozenset | set):
        parts = [fmt_value(vtype, v, labels) for v in value]
        return "、".join(p[0] for p in parts), ", ".join(p[1] for p in parts)
    if vtype.kind == "money":
        return fmt_money(int(value))
    if vtype.kind == "ratio":
        text = fmt_ratio(Fraction(value))
        return text, text
    if vtype.kind == "int":
        zh, en = UNIT_WORDS.get(vtype.unit or "count", ("", ""))
        if vtype.unit == "year":
            return f"{value}年", str(value)
        if value == 1 and en.endswith("s"):
            en = en[:-1]
        return f"{value} {zh}".rstrip(), f"{value}{en}"
    if vtype.kind == "bool":
        return ("是", "yes") if value else ("否", "no")
    if isinstance(value, RelDate):
        return value.describe()
    if isinstance(value, date):
        return value.isoformat(), value.isoformat()
    if labels and str(value) in labels:
        zh, en = labels[str(value)]
        return zh, en
    return str(value), str(value)
