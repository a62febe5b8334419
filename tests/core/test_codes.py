"""Credit codes (GB 32100-2015), divisions (GB/T 2260) and industries (GB/T 4754-2017)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huiqi.core import codes
from huiqi.core.codes import CodeError

# Published codes of real registrants (printed on their business licences).
REAL_CODES = ["91440300708461136T", "91620102MA72H8K3X0"]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_pass(code: str) -> None:
    assert codes.validate_credit_code(code) == code
    assert codes.credit_check_char(code[:17]) == code[17]


def test_check_char_by_hand() -> None:
    # Recompute from the definition: check = 31 − (Σ value×weight mod 31), 31 → 0.
    body = "91440300708461136"
    total = sum(
        codes.CREDIT_ALPHABET.index(ch) * w
        for ch, w in zip(body, codes.CREDIT_WEIGHTS, strict=True)
    )
    expected = codes.CREDIT_ALPHABET[(31 - total % 31) % 31]
    assert codes.credit_check_char(body) == expected == "T"


def test_check_31_maps_to_zero() -> None:
    # Find a body whose weighted sum is divisible by 31: its check must be '0', not out of range.
    for tail in range(10_000):
        body = f"91620102MA7{tail:06d}"
        total = sum(
            codes.CREDIT_ALPHABET.index(ch) * w
            for ch, w in zip(body, codes.CREDIT_WEIGHTS, strict=True)
        )
        if total % 31 == 0:
            assert codes.credit_check_char(body) == "0"
            assert codes.is_valid_credit_code(body + "0")
            return
    pytest.fail("no body with Σ ≡ 0 (mod 31) found")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("91440300708461136X", "校验码错误"),  # wrong check character
        ("91440300708461136", "18 位"),  # too short
        ("9144030070846113IT", "不在代码字符集中"),  # I is not in the alphabet
        ("91990300708461136", "行政区划码"),  # province 99 does not exist (check made valid)
        ("91629999708461136", "行政区划码"),  # not a Gansu county (check made valid)
    ],
)
def test_invalid_codes_name_the_reason(raw: str, fragment: str) -> None:
    if fragment == "行政区划码":
        raw += codes.credit_check_char(raw)
    with pytest.raises(CodeError, match=fragment):
        codes.validate_credit_code(raw)


def test_normalises_spaces_and_case() -> None:
    assert codes.validate_credit_code(" 91440300 708461136t ") == "91440300708461136T"


def test_make_credit_code_is_valid_with_org_check() -> None:
    code = codes.make_credit_code("9", "1", "622926", "MA7ABCDE")
    assert codes.is_valid_credit_code(code)
    assert codes.credit_division(code) == "622926"
    assert code[16] == codes.org_check_char("MA7ABCDE")


@given(st.text(alphabet=codes.CREDIT_ALPHABET, min_size=17, max_size=17))
def test_any_single_substitution_is_caught(body: str) -> None:
    code = body + codes.credit_check_char(body)
    # change one character of the body: the check must no longer fit
    pos = 5
    new = codes.CREDIT_ALPHABET[(codes.CREDIT_ALPHABET.index(code[pos]) + 1) % 31]
    mutated = code[:pos] + new + code[pos + 1 :]
    assert codes.credit_check_char(mutated[:17]) != mutated[17]


def test_gansu_regions_complete() -> None:
    table = codes.regions()
    assert table["620102"].name == "城关区"
    assert table["622926"].name == "东乡族自治县"
    assert table["623000"].name == "甘南藏族自治州"
    prefectures = {
        r.code for r in table.values() if r.code.startswith("62") and r.level == "prefecture"
    }
    assert prefectures == {
        "620100", "620200", "620300", "620400", "620500", "620600", "620700",
        "620800", "620900", "621000", "621100", "621200", "622900", "623000",
    }  # fmt: skip
    assert len(codes.gansu_counties()) == 86
    every_county_has_parent = all(c.parent in table for c in codes.gansu_counties())
    assert every_county_has_parent


def test_lanzhou_new_area_is_a_documented_pseudo_code() -> None:
    row = codes.regions()["620190"]
    assert row.name == "兰州新区" and row.status == "pseudo"
    assert "非 GB/T 2260" in row.note
    assert codes.validate_region("620190") == "620190"
    # it never appears inside a credit code, and its enterprises carry the host county code
    assert not codes.division_known("620190")
    assert codes.region_matches_division("620190", "620121")


def test_region_validation() -> None:
    assert codes.validate_region("620102") == "620102"
    assert codes.validate_region("110105") == "110105"  # elsewhere: province prefix suffices
    with pytest.raises(CodeError, match="甘肃省内无此"):
        codes.validate_region("620199")
    with pytest.raises(CodeError, match="省级前缀"):
        codes.validate_region("990101")
    with pytest.raises(CodeError, match="已撤销"):
        codes.validate_region("620824")  # 华亭县 became 华亭市 620881
    assert codes.division_known("620824")  # but older credit codes still carry it
    assert codes.region_name("110105") == "北京市"


def test_region_matches_division() -> None:
    assert codes.region_matches_division("620102", "620102")
    assert codes.region_matches_division("620102", "620100")  # registered at city level
    assert not codes.region_matches_division("620102", "620502")


def test_industry_table_levels() -> None:
    table = codes.industries()
    sections = [r for r in table.values() if r.level == "section"]
    divisions = [r for r in table.values() if r.level == "division"]
    assert [s.code for s in sections] == list("ABCDEFGHIJKLMNOPQRST")
    assert len(divisions) == 97
    assert len(codes.industry_classes()) >= 1380
    for code in ("3311", "7010", "7020", "5910", "5920", "6513", "6520", "0111", "9700"):
        assert table[code].level == "class", code
    assert table["3311"].name_zh == "金属结构制造"
    # every class hangs under a group of the same first three digits and a division
    for row in codes.industry_classes():
        assert table[row.parent].level == "group" and row.parent == row.code[:3]
        assert table[row.code[:2]].level == "division"


def test_industry_validation() -> None:
    assert codes.validate_industry("3311") == "3311"
    assert codes.validate_industry("C3311") == "3311"
    assert codes.industry_section("3311") == "C"
    with pytest.raises(CodeError, match="门类"):
        codes.validate_industry("A3311")
    with pytest.raises(CodeError, match="无此小类"):
        codes.validate_industry("6510")  # a GB/T 4754-2011 class, split into 6511–6519 in 2017
    with pytest.raises(CodeError, match="4 位"):
        codes.validate_industry("33")
