"""Quantitative commitments in policy text: percentages, amounts, counts, durations and ranges."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import cn2an

GE = ">="
LE = "<="
EQ = "="
RANGE = "range"

_CN_DIGITS = "零〇一二三四五六七八九十百千万两"
_NUM = rf"(?:\d+(?:\.\d+)?|[{_CN_DIGITS}]+)"
_UNIT = r"(?:%|个百分点|万亿元|亿元|万元|元|家|个工作日|工作日|个月|年|日|天)"
_DASH = r"\s*(?:—{1,2}|–|-|~|至|到)\s*"

# Bound words before a number; found by looking back from the number (longest first), so that the
# number pattern alone is run over the text.
_PRE_WORDS = tuple(
    sorted(
        (
            "不低于", "不少于", "不高于", "不超过", "不得超过", "不得低于", "最长不得超过", "最高",
            "最多", "最低", "至少", "高于", "低于", "超过", "达到", "降至", "提升至", "提高至",
            "控制在", "每日利率",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
# The bound word ending right before a number: the leftmost match is the longest word.
_PRE_BEFORE = re.compile("(?:" + "|".join(_PRE_WORDS) + r")\Z")
_PRE_LONGEST = max(map(len, _PRE_WORDS))
_CORE = re.compile(
    rf"(?:百分之(?P<pct_cn>[{_CN_DIGITS}点]+)|万分之(?P<bp_cn>[{_CN_DIGITS}]+)"
    rf"|(?P<lo>{_NUM}){_DASH}(?P<hi>{_NUM})\s*(?P<rng_unit>{_UNIT})"
    rf"|(?P<num>{_NUM})\s*(?P<unit>{_UNIT}))"
    rf"(?P<post>及以上|以上|及以下|以下|以内|之内|内|左右)?"
)
# Every match of _CORE begins with one of these (百分之, 万分之 and Chinese numerals included); a
# pattern opening with a character class lets the regex engine skip straight to them.
_CORE_LEAD = re.compile(rf"[\d{_CN_DIGITS}]")
# Every quantity has a unit holding one of these characters (or is 百分之…/万分之…): a sentence
# without any cannot hold one, and the full pattern is not tried on it.
_UNIT_HINT = re.compile(r"[%点元家日月年天]|分之")
# A closing mark ends a sentence and belongs to it; a line break ends it too but does not.
_SENTENCE_END = re.compile(r"[。;!?\n]")
_UNIT_NAMES = {"个百分点": "百分点", "个工作日": "工作日", "天": "日", "万亿元": "万亿元"}
_KINDS = {
    "%": "percent",
    "百分点": "percent",
    "万亿元": "amount",
    "亿元": "amount",
    "万元": "amount",
    "元": "amount",
    "家": "count",
    "工作日": "duration",
    "个月": "duration",
    "年": "duration",
    "日": "duration",
}
_GE_WORDS = (
    "不低于",
    "不少于",
    "不得低于",
    "最低",
    "至少",
    "高于",
    "超过",
    "达到",
    "提升至",
    "提高至",
)
_LE_WORDS = (
    "不高于",
    "不超过",
    "不得超过",
    "最长不得超过",
    "最高",
    "最多",
    "低于",
    "降至",
    "控制在",
)

# Longest first, so that 不超过 is read as one word and not as 超过.
_BOUND_WORD = re.compile("|".join(sorted(_GE_WORDS + _LE_WORDS, key=len, reverse=True)))


class Quantity(NamedTuple):
    """One quantitative commitment found in a sentence (a tuple: thousands are made per page)."""

    text: str
    value: Decimal
    unit: str
    op: str
    kind: str
    sentence: str
    value_max: Decimal | None = None


_CLAUSE_BREAK = re.compile(r"[,，、:]")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_YEAR = re.compile(r"(19|20)\d\d|[〇零一二三四五六七八九]{4}")
_MONTH_DIGIT = re.compile(r"\d|[一二三四五六七八九十]")
_MONTH_BEFORE = re.compile(r"月\s*$")


def _to_decimal(raw: str) -> Decimal | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        if _DECIMAL.fullmatch(raw):
            return Decimal(raw)
        value = cn2an.cn2an(raw.replace("两", "二"), "smart")
        return Decimal(str(value))
    except (ValueError, KeyError, InvalidOperation):
        return None


def _is_date_part(text: str, start: int, end: int, unit: str, number: str) -> bool:
    """Whether a number+unit is part of a calendar date (2020年, 3月31日) rather than a duration."""
    after = text[end : end + 1]
    before = text[max(0, start - 1) : start]
    if unit == "年":
        if _YEAR.fullmatch(number):
            return True
        if after and (after == "度" or _MONTH_DIGIT.match(after) and "月" in text[end : end + 4]):
            return True
    if unit == "年" and after == "期":
        return True
    if unit == "日" and before == "月":
        return True
    if unit == "日" and _MONTH_BEFORE.search(text[max(0, start - 3) : start]):
        return True
    return False


def _op(pre: str | None, post: str | None) -> str:
    if post in ("以上", "及以上"):
        return GE
    if post in ("以下", "及以下", "以内", "之内", "内"):
        return LE
    if pre in _GE_WORDS:
        return GE
    if pre in _LE_WORDS:
        return LE
    return EQ


def _clause_op(before: str) -> str:
    """Direction from a bound word earlier in the same clause: 不低于预算总额的40% → ≥."""
    clause = _CLAUSE_BREAK.split(before)[-1]
    words = _BOUND_WORD.findall(clause)
    return _op(words[-1], None) if words else EQ


def find_quantities(text: str) -> list[Quantity]:
    """Find every quantitative commitment in ``text``, each with the sentence it stands in."""
    found: list[Quantity] = []
    done = 0  # end of the last sentence read
    rfind = text.rfind
    for hint in _UNIT_HINT.finditer(text):
        at = hint.start()
        if at < done:
            continue
        # Only the sentences holding a unit are read: the one around each hint (a sentence runs
        # to its closing mark, which belongs to it, a line break ends it too). Its start is
        # looked for after the last sentence read only, so a text is scanned once.
        begin = 1 + max(
            rfind("。", done, at), rfind(";", done, at), rfind("!", done, at),
            rfind("?", done, at), rfind("\n", done, at), done - 1,
        )  # fmt: skip
        close = _SENTENCE_END.search(text, at)
        done = (
            len(text) if close is None else close.start() if close.group() == "\n" else close.end()
        )
        sentence = text[begin:done].strip()
        if not sentence:
            continue
        last_end = pos = 0
        # As _CORE.finditer, but the pattern is tried only where a number can begin.
        while (lead := _CORE_LEAD.search(sentence, pos)) is not None:
            m = _CORE.match(sentence, lead.start())
            if m is None:
                pos = lead.start() + 1
                continue
            start, pos = m.start(), m.end()
            bound = _PRE_BEFORE.search(sentence, max(last_end, start - _PRE_LONGEST), start)
            last_end = m.end()
            quantity = _quantity_from_match(m, bound.group() if bound else None, sentence)
            if quantity is not None:
                found.append(quantity)
    return found


def _quantity_from_match(m: re.Match[str], pre: str | None, sentence: str) -> Quantity | None:
    post = m.group("post")
    start = m.start() - len(pre) if pre else m.start()
    before = sentence[max(0, start - 1) : start]
    if m.group("pct_cn") is not None:
        value = _to_decimal(m.group("pct_cn").replace("点", "."))
        unit, value_max = "%", None
    elif m.group("bp_cn") is not None:
        per_10k = _to_decimal(m.group("bp_cn"))
        value = per_10k / 100 if per_10k is not None else None
        unit, value_max = "%", None
    elif m.group("lo") is not None:
        unit = m.group("rng_unit")
        value, value_max = _to_decimal(m.group("lo")), _to_decimal(m.group("hi"))
        if value_max is None or (value is not None and value_max < value):
            return None
    else:
        unit = m.group("unit")
        number = m.group("num")
        if _is_date_part(sentence, m.start("num"), m.end("unit"), unit, number):
            return None
        if before in ("第", "每") and not number[0].isdigit():
            return None
        if not number[0].isdigit() and unit in ("年", "日", "家") and not post and not pre:
            # "一年" / "三家" without a bound is ordinary prose far more often than a commitment.
            return None
        value, value_max = _to_decimal(number), None
    if value is None:
        return None
    unit = _UNIT_NAMES.get(unit, unit)
    if unit == "日" and re.match(r"\s*(起|前)", sentence[m.end() : m.end() + 2]) and not post:
        return None
    op = RANGE if value_max is not None else _op(pre, post)
    if op == EQ and not pre and not post:
        op = _clause_op(sentence[:start])
    return Quantity(
        text=sentence[start : m.end()].strip(),
        value=value,
        unit=unit,
        op=op,
        kind=_KINDS[unit],
        sentence=sentence,
        value_max=value_max,
    )
