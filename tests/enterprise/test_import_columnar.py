"""Column-wise validation gives the row validator's answers: the same problems word for word for
bad rows, and the same values, sources and as-of dates for good rows."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from huiqi.core.codes import make_credit_code
from huiqi.enterprise.catalogue import encode
from huiqi.enterprise.importer import RowContext, columns, map_headers, validate_row
from huiqi.enterprise.importer.columnar import validate_batch
from huiqi.enterprise.population import generate

TODAY = date(2025, 6, 30)
HEADER = [zh for _key, zh, _en in columns()]
KEYS = [key for key, _zh, _en in columns()]

# Cell texts that take every branch: plain and separated numbers, units, signs, magnitudes,
# date forms, enumerations by key and label, code tables, sources by alias, future dates.
VARIANTS: dict[str, list[str]] = {
    "credit_code": ["", "91620102MA72H8K3X9", "91620102ma72h8k3x0", " 9162 0102MA72H8K3X0", "123"],
    "region_code": ["620102", "620100", "999999", "62010", ""],
    "industry_code": ["3311", "0000", "33", ""],
    "founded_on": [
        "2015-03-18",
        "2015/3/18",
        "20150318",
        "2030-01-01",
        "2015-02-30",
        "x",
        "",
        "2015-3-18",
        "0000-01-01",
        "0001-01-01",
        "２０１５-03-18",
        "2015-03-18 10:00",
        "2025-06-30",
        "2025-07-01",
    ],  # fmt: skip
    "registered_capital": ["500", "1,234.5", "0.0000001", "-5", "60000000", "12.123456", "1e3", ""],
    "ownership_type": ["私营", "private", "zzz", ""],
    "tax_credit_rating": ["A", "a", "A级", "Q", ""],
    "year": ["2024", "2030", "1900", "20x4", ""],
    "employees": ["120", "007", "1,200", "-1", "12.0", "12.5", "0", ""],
    "revenue": ["5000", "9999999", "0", "-3", "abc", ""],
    "taxable_income": ["-20", "180", ""],
    "graduate_hires": ["6", "x", ""],
    "cert_high_tech_from": ["2023-11-20", "2026-01-01", ""],
    "cert_high_tech_to": ["2026-11-19", "2020-01-01", "", "2099-02-29", "2030-01-01"],
    "contact_email": [
        "finance@example.cn",
        "not-mail",
        "",
        "a b@x.cn",
        "名@例子.中国",
        "a@b",
        "a@@b.cn",
        "x@y.z",
        "x@y.",
        "@y.cn",
        "a\x1cb@x.cn",
        "a.b+c@d-e.f.cn",
    ],  # fmt: skip
    "contact_phone": [
        "13800000000",
        "12",
        "",
        "+86-138 0000 0000",
        "１３８00000000",
        "1" * 21,
        "+1234567",
        "++1234567",
        "138\n0000000",
    ],  # fmt: skip
    "contact_webhook": ["https://x.cn/h", "http://x", "ftp://x", "HTTP://x", "https:/x", ""],
    "consent_email": ["是", "否", "yes", "maybe", ""],
    "source": ["统计", "tax", "自报", "外星", ""],
    "as_of": ["2025-03-31", "2030-01-01", "bad", ""],
}


def _context() -> RowContext:
    mapping = map_headers(HEADER)
    return RowContext(
        mapping=mapping,
        header_text={key: HEADER[i] for i, key in mapping.items()},
        default_source=None,
        today=TODAY,
    )


def _rows() -> list[tuple[int, list[str]]]:
    rng = random.Random(2020)
    out: list[list[str]] = []
    for row in generate(300, seed=7):
        out.append([str(row.get(key, "") or "") for key in KEYS])
    for n in range(700):
        cells = list(out[n % 300]) if n % 3 else [""] * len(KEYS)
        if n % 50:  # every fiftieth row repeats an earlier credit code
            cells[0] = make_credit_code("9", "1", "620102", f"MB{n:06d}")
        for _ in range(rng.randint(1, 4)):
            key = rng.choice(list(VARIANTS))
            cells[KEYS.index(key)] = rng.choice(VARIANTS[key])
        out.append(cells)
    return [(i + 2, cells) for i, cells in enumerate(out)]


def _long(item: Any) -> set[tuple[Any, ...]]:
    return {
        (item.credit_code, name, year, encode(value), source, as_of)
        for (name, year), (value, source, as_of) in item.values.items()
    }


def test_columnar_validation_equals_the_row_validator() -> None:
    rows = _rows()
    by_row = _context()
    expected_issues = []
    expected_codes: list[str] = []
    expected_values: set[tuple[Any, ...]] = set()
    for number, cells in rows:
        item, issues = validate_row(by_row, number, cells)
        if issues:
            expected_issues.append(issues)
        elif item is not None:
            expected_codes.append(item.credit_code)
            expected_values |= _long(item)
    by_column = _context()
    codes: list[str] = []
    issues = []
    values: set[tuple[Any, ...]] = set()
    for start in range(0, len(rows), 128):  # several batches: duplicates across batches too
        result = validate_batch(by_column, rows[start : start + 128])
        codes += result.codes
        issues += result.rejected
        values |= set(result.values.iter_rows())
    assert len(expected_issues) > 200 and len(expected_codes) > 300  # both paths exercised
    assert issues == expected_issues
    assert codes == expected_codes
    assert values == expected_values
