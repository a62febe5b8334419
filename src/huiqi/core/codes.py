"""National codes: 统一社会信用代码 (GB 32100-2015), divisions (GB/T 2260), industries (GB/T 4754-2017).

The region and industry tables ship as CSV files beside this module (``core/data``). Regions are
complete down to county level for Gansu (62) and carry only province-level rows elsewhere, so a
code outside Gansu is accepted when its province prefix is known. 兰州新区 has no code in GB/T 2260;
the table gives it the project's own pseudo-code 620190 (status ``pseudo``), documented in its row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from huiqi.core.errors import Invalid

# GB 32100-2015 §4: 31 symbols (no I, O, S, V, Z) and the position weights 3^(i-1) mod 31.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CHAR_VALUE = {ch: i for i, ch in enumerate(CREDIT_ALPHABET)}

# GB 11714-1997: the organisation code in positions 9–17 carries its own mod-11 check.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

GANSU = "62"


class CodeError(Invalid):
    """A code failed validation; the message says why in Chinese and English."""


@dataclass(frozen=True, slots=True)
class Region:
    """One row of the bundled GB/T 2260 table."""

    code: str
    name: str
    level: str  # province, prefecture, county, pseudo
    parent: str
    status: str  # current, retired, pseudo
    hosts: tuple[str, ...]
    note: str


@dataclass(frozen=True, slots=True)
class Industry:
    """One row of the bundled GB/T 4754-2017 table."""

    code: str
    level: str  # section, division, group, class
    parent: str
    section: str
    name_zh: str
    name_en: str


def credit_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters."""
    if len(first17) != 17:
        raise CodeError(f"需要 17 位本体代码 / need 17 characters, got {len(first17)}")
    total = 0
    for pos, ch in enumerate(first17):
        value = _CHAR_VALUE.get(ch)
        if value is None:
            raise CodeError(f"第 {pos + 1} 位字符 {ch!r} 不在代码字符集中 / character not allowed")
        total += value * CREDIT_WEIGHTS[pos]
    check = 31 - total % 31
    return CREDIT_ALPHABET[0 if check == 31 else check]


def org_check_char(first8: str) -> str:
    """The GB 11714 check character of an organisation-code body (8 characters)."""
    total = 0
    for pos, ch in enumerate(first8):
        value = _ORG_ALPHABET.find(ch)
        if value < 0:
            raise CodeError(f"组织机构代码字符 {ch!r} 无效 / invalid organisation-code character")
        total += value * _ORG_WEIGHTS[pos]
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def normalize_credit_code(raw: str) -> str:
    """Strip spaces and upper-case, the forms people paste codes in."""
    return "".join(raw.split()).upper()


def validate_credit_code(raw: str) -> str:
    """Return the normalised code or raise CodeError naming the failure (length, charset, check, division)."""
    code = normalize_credit_code(raw)
    if len(code) != 18:
        raise CodeError(f"信用代码应为 18 位，实为 {len(code)} 位 / must be 18 characters")
    for pos, ch in enumerate(code):
        if ch not in _CHAR_VALUE:
            raise CodeError(
                f"第 {pos + 1} 位字符 {ch!r} 不在代码字符集中（不含 I O S V Z）/ character not allowed"
            )
    expected = credit_check_char(code[:17])
    if code[17] != expected:
        raise CodeError(
            f"校验码错误：第 18 位应为 {expected}，实为 {code[17]} / wrong check character"
        )
    division = code[2:8]
    if not division.isdigit() or not division_known(division):
        raise CodeError(f"第 3–8 位行政区划码 {division} 未知 / unknown division code")
    return code


def is_valid_credit_code(raw: str) -> bool:
    """True when validate_credit_code accepts the code."""
    try:
        validate_credit_code(raw)
    except CodeError:
        return False
    return True


def make_credit_code(authority: str, entity_type: str, division: str, org_body: str) -> str:
    """Assemble a valid code from its parts: org_body is the 8-character organisation-code body."""
    org = org_body + org_check_char(org_body)
    first17 = authority + entity_type + division + org
    return first17 + credit_check_char(first17)


def credit_division(code: str) -> str:
    """Positions 3–8: the division code of the registering authority."""
    return code[2:8]


# ---------------------------------------------------------------- regions (GB/T 2260)


@cache
def regions() -> dict[str, Region]:
    """The bundled division table keyed by six-digit code."""
    out: dict[str, Region] = {}
    with resources.files("huiqi.core").joinpath("data/regions.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["code"]] = Region(
                code=row["code"],
                name=row["name"],
                level=row["level"],
                parent=row["parent"],
                status=row["status"],
                hosts=tuple(row["hosts"].split()),
                note=row["note"],
            )
    return out


def _province_known(code: str) -> bool:
    return f"{code[:2]}0000" in regions()


def division_known(code: str) -> bool:
    """Whether a division code printed inside a credit code is plausible.

    Inside Gansu the code must be in the table (retired codes count: credit codes keep the code of
    the day they were issued); elsewhere the province prefix must be known.
    """
    if len(code) != 6 or not code.isdigit():
        return False
    if code.startswith(GANSU):
        region = regions().get(code)
        return region is not None and region.status != "pseudo"
    return _province_known(code)


def validate_region(raw: str) -> str:
    """Return a current region code or raise CodeError (Gansu: exact match; elsewhere: province prefix)."""
    code = raw.strip()
    if len(code) != 6 or not code.isdigit():
        raise CodeError(f"行政区划码应为 6 位数字：{raw!r} / region must be 6 digits")
    if code.startswith(GANSU):
        region = regions().get(code)
        if region is None:
            raise CodeError(f"甘肃省内无此行政区划码 {code} / unknown Gansu region")
        if region.status == "retired":
            raise CodeError(f"行政区划码 {code}（{region.name}）已撤销 / retired region code")
        return code
    if not _province_known(code):
        raise CodeError(f"省级前缀 {code[:2]} 未知 / unknown province prefix")
    return code


def region_name(code: str) -> str:
    """Human name: the exact row when the table has it, otherwise the province name."""
    table = regions()
    if code in table:
        return table[code].name
    province = table.get(f"{code[:2]}0000")
    return province.name if province else code


def region_prefecture(code: str) -> str:
    """The 市州-level code a region belongs to (its own code for prefectures and provinces)."""
    region = regions().get(code)
    if region is not None and region.level in {"county", "pseudo"}:
        return region.parent
    return code


def region_matches_division(region_code: str, division: str) -> bool:
    """Whether a credit code's division fits a region: same code, an ancestor, or a pseudo-region host."""
    if division == region_code:
        return True
    region = regions().get(region_code)
    if region is not None and division in region.hosts:
        return True
    return division in {f"{region_code[:4]}00", f"{region_code[:2]}0000"}


def gansu_counties() -> list[Region]:
    """Current county-level rows in Gansu (the codes a Gansu enterprise is registered in)."""
    return [
        r
        for r in regions().values()
        if r.code.startswith(GANSU) and r.level == "county" and r.status == "current"
    ]


def gansu_prefectures() -> list[Region]:
    """Current prefecture-level rows (市州) in Gansu, in code order."""
    return sorted(
        (
            r
            for r in regions().values()
            if r.code.startswith(GANSU) and r.level == "prefecture" and r.status == "current"
        ),
        key=lambda r: r.code,
    )


# ---------------------------------------------------------------- industries (GB/T 4754-2017)


@cache
def industries() -> dict[str, Industry]:
    """The bundled industry table keyed by code (section letter, 2-, 3- or 4-digit code)."""
    out: dict[str, Industry] = {}
    with resources.files("huiqi.core").joinpath("data/industries.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["code"]] = Industry(**row)
    return out


def validate_industry(raw: str) -> str:
    """Return a four-digit class code or raise CodeError; a leading section letter (C3311) is accepted."""
    code = raw.strip().upper()
    if len(code) == 5 and code[0].isalpha():
        letter, code = code[0], code[1:]
        row = industries().get(code)
        if row is not None and row.section != letter:
            raise CodeError(
                f"门类 {letter} 与小类 {code} 不符 / section letter does not match class"
            )
    if len(code) != 4 or not code.isdigit():
        raise CodeError(f"行业代码应为 4 位小类代码：{raw!r} / industry must be a 4-digit class")
    row = industries().get(code)
    if row is None or row.level != "class":
        raise CodeError(f"GB/T 4754-2017 无此小类 {code} / unknown industry class")
    return code


def industry_section(code: str) -> str:
    """The section letter (A–T) of any industry code in the table."""
    row = industries().get(code)
    if row is None:
        raise CodeError(f"GB/T 4754-2017 无此代码 {code} / unknown industry code")
    return row.section


def industry_name(code: str) -> str:
    """Chinese name of an industry code, or the code itself when unknown."""
    row = industries().get(code)
    return row.name_zh if row else code


def industry_classes() -> list[Industry]:
    """Every four-digit class."""
    return [r for r in industries().values() if r.level == "class"]
