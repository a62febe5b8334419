"""Size classes under 工信部联企业〔2011〕300号: every industry group at and just under each bound.

The expected bounds are written out here from the standard itself (not read from the YAML the code
uses), so a wrong number in the parameter file fails these tests.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huiqi.core.codes import CodeError
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise.sizing import above_scale, classify, classify_frame, classify_rows, size_class

E, R, A = "employees", "revenue", "total_assets"

# group: (sample class, SME ceiling, medium lower bounds, small lower bounds); money in 万元.
STANDARD: dict[str, tuple[str, dict[str, int], dict[str, int], dict[str, int]]] = {
    "agriculture": ("0111", {R: 20000}, {R: 500}, {R: 50}),
    "industry": ("3311", {E: 1000, R: 40000}, {E: 300, R: 2000}, {E: 20, R: 300}),
    "construction": ("4710", {R: 80000, A: 80000}, {R: 6000, A: 5000}, {R: 300, A: 300}),
    "wholesale": ("5111", {E: 200, R: 40000}, {E: 20, R: 5000}, {E: 5, R: 1000}),
    "retail": ("5211", {E: 300, R: 20000}, {E: 50, R: 500}, {E: 10, R: 100}),
    "transport": ("5431", {E: 1000, R: 30000}, {E: 300, R: 3000}, {E: 20, R: 200}),
    "warehousing": ("5920", {E: 200, R: 30000}, {E: 100, R: 1000}, {E: 20, R: 100}),
    "postal": ("6020", {E: 1000, R: 30000}, {E: 300, R: 2000}, {E: 20, R: 100}),
    "accommodation": ("6110", {E: 300, R: 10000}, {E: 100, R: 2000}, {E: 10, R: 100}),
    "catering": ("6210", {E: 300, R: 10000}, {E: 100, R: 2000}, {E: 10, R: 100}),
    "information_transmission": ("6311", {E: 2000, R: 100000}, {E: 100, R: 1000}, {E: 10, R: 100}),
    "software_it": ("6513", {E: 300, R: 10000}, {E: 100, R: 1000}, {E: 10, R: 50}),
    "real_estate_development": (
        "7010",
        {R: 200000, A: 10000},
        {R: 1000, A: 5000},
        {R: 100, A: 2000},
    ),
    "property_management": ("7020", {E: 1000, R: 5000}, {E: 300, R: 1000}, {E: 100, R: 500}),
    "leasing_business": ("7212", {E: 300, A: 120000}, {E: 100, A: 8000}, {E: 10, A: 100}),
    "other": ("7310", {E: 300}, {E: 100}, {E: 10}),
}

ON = date(2024, 6, 30)


def _classify_fen(code: str, values_wan: dict[str, int], under: str | None) -> str:
    employees = values_wan.get(E)
    revenue = values_wan[R] * FEN_PER_WAN if R in values_wan else None
    assets = values_wan[A] * FEN_PER_WAN if A in values_wan else None
    if under == E:
        employees = employees - 1  # type: ignore[operator]
    elif under == R:
        revenue = revenue - 1  # type: ignore[operator]
    elif under == A:
        assets = assets - 1  # type: ignore[operator]
    return classify(code, employees, revenue, assets, on=ON).size


def _fill(
    group: tuple[str, dict[str, int], dict[str, int], dict[str, int]], tier: dict[str, int]
) -> dict[str, int]:
    """Every indicator the group uses: the tier's bound where it has one, else the medium bound."""
    _, ceiling, medium, small = group
    names = set(ceiling) | set(medium) | set(small)
    return {n: tier.get(n, medium.get(n, small.get(n, 0))) for n in names}


@pytest.mark.parametrize("key", STANDARD)
def test_group_mapping(key: str) -> None:
    code = STANDARD[key][0]
    assert classify(code, 1, 1, 1, on=ON).group == key


@pytest.mark.parametrize("key", STANDARD)
def test_at_ceiling_is_large_one_under_is_sme(key: str) -> None:
    group = STANDARD[key]
    code, ceiling, medium, _ = group
    values = _fill(group, ceiling)
    assert _classify_fen(code, values, None) == "large"
    for name in ceiling:
        # one under any single ceiling makes it an SME; all other values still reach medium
        assert _classify_fen(code, values, name) == "medium", name


@pytest.mark.parametrize("key", STANDARD)
def test_at_medium_bound_is_medium_one_under_is_small(key: str) -> None:
    group = STANDARD[key]
    code, _, medium, _ = group
    values = _fill(group, medium)
    assert _classify_fen(code, values, None) == "medium"
    for name in medium:
        assert _classify_fen(code, values, name) == "small", name


@pytest.mark.parametrize("key", STANDARD)
def test_at_small_bound_is_small_one_under_is_micro(key: str) -> None:
    group = STANDARD[key]
    code, _, _, small = group
    values = _fill(group, small)
    assert _classify_fen(code, values, None) == "small"
    for name in small:
        assert _classify_fen(code, values, name) == "micro", name


def test_reasons_name_each_bound() -> None:
    result = classify("3311", 120, 5000 * FEN_PER_WAN, on=ON)
    assert result.size == "small" and result.group == "industry" and result.missing == []
    text = "\n".join(result.reasons)
    assert "从业人员 120人 ≥ 300人（中型下限）：不满足" in text
    assert "营业收入 5000万元 ≥ 2000万元（中型下限）：满足" in text
    assert "工信部联企业〔2011〕300号" in (result.basis or "")


def test_railways_fall_to_other_transport_handling_counts_as_transport() -> None:
    assert classify("5311", 50, None, on=ON).group == "other"
    assert classify("5910", 50, None, on=ON).group == "transport"
    assert classify("5941", 50, None, on=ON).group == "warehousing"
    assert classify("6421", 50, None, on=ON).group == "information_transmission"
    assert classify("7030", 50, None, on=ON).group == "other"
    assert classify("4411", 50, None, on=ON).group == "industry"
    assert classify("0610", 50, None, on=ON).group == "industry"


def test_missing_input_that_matters_gives_unknown() -> None:
    result = classify("3311", None, 5000 * FEN_PER_WAN, on=ON)
    assert result.size == "unknown"
    assert result.missing == ["employees"]
    assert any("可能为" in r for r in result.reasons)
    assert size_class("3311", None, 5000 * FEN_PER_WAN, None, on=ON) is None


def test_missing_input_that_cannot_matter_is_not_a_guess() -> None:
    # revenue under 300万 makes an industrial firm micro whatever its head count
    result = classify("3311", None, 299 * FEN_PER_WAN, on=ON)
    assert result.size == "micro" and result.missing == []
    assert any("不影响结果" in r for r in result.reasons)
    # agriculture reads revenue only; staff does not matter at all
    assert classify("0111", None, 600 * FEN_PER_WAN, on=ON).size == "medium"
    # other industries read staff only
    assert classify("7310", 150, None, None, on=ON).size == "medium"
    # 10 staff: micro or small for software depends on revenue
    assert classify("6513", 10, None, on=ON).size == "unknown"


def test_unknown_industry_and_bad_input() -> None:
    result = classify(None, 10, 10, on=ON)
    assert result.size == "unknown" and result.missing == ["industry_code"]
    with pytest.raises(CodeError):
        classify("9999", 10, 10, on=ON)
    with pytest.raises(ValueError, match="负数"):
        classify("3311", -1, 10, on=ON)


def test_dated_parameters() -> None:
    result = classify("3311", 120, 5000 * FEN_PER_WAN, on=date(2010, 1, 1))
    assert result.size == "unknown" and result.missing == ["standard"]
    assert classify("3311", 120, 5000 * FEN_PER_WAN, on=date(2011, 6, 18)).size == "small"


def test_above_scale() -> None:
    assert above_scale("3311", 2000 * FEN_PER_WAN, ON) is True
    assert above_scale("3311", 2000 * FEN_PER_WAN - 1, ON) is False
    assert above_scale("5211", 90000 * FEN_PER_WAN, ON) is False  # retail is not 工业
    assert above_scale("3311", None, ON) is None
    assert above_scale(None, 5000, ON) is None
    assert classify("3311", 10, 2000 * FEN_PER_WAN, on=ON).above_scale is True


def test_classify_frame_answers_as_row_by_row() -> None:
    import random

    from huiqi.core.codes import industries

    rng = random.Random(5)
    classes = sorted(c for c, row in industries().items() if row.level == "class")
    figures = [None, -1, 0, 5, 20, 100, 300, 1000, 2000, 10**9, 4 * 10**10, 10**12]
    rows = [
        (
            rng.choice([*rng.sample(classes, 40), None, "", "99", "0511x"]),
            rng.choice(figures),
            rng.choice(figures),
            rng.choice(figures),
        )
        for _ in range(3000)
    ]
    for on in (date(2025, 6, 30), date(2011, 1, 1)):
        expected = classify_rows(rows, on)
        assert expected == [
            (size_class(i, e, r, a, on), above_scale(i, r, on)) for i, e, r, a in rows
        ]
        got = classify_frame(_frame(rows), on)
        assert list(got.iter_rows()) == expected


def _frame(rows: list[Any]) -> Any:
    """The import's figure columns as a Polars frame of these (industry, employees, revenue,
    assets) rows."""
    import polars as pl

    return pl.DataFrame(
        rows,
        schema={
            "industry_code": pl.Utf8,
            "employees": pl.Int64,
            "revenue": pl.Int64,
            "total_assets": pl.Int64,
        },
        orient="row",
    )


def _bounds_and_neighbours() -> list[int | None]:
    """Every bound of every group in fen and people, one below and one above, and the edges."""
    from huiqi.enterprise.sizing import _load

    values: set[int] = {0, 1, 10**13}
    for version in _load()[0]:
        for group in version.groups.values():
            for bounds in (group.sme_ceiling, group.medium, group.small):
                for bound in bounds.values():
                    values |= {bound - 1, bound, bound + 1}
    return [None, -1, *sorted(values)]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_vector_classification_equals_the_row_rule_at_every_bound(data: Any) -> None:
    from huiqi.core.codes import industries

    classes = sorted(c for c, row in industries().items() if row.level == "class")
    figure = st.sampled_from(_bounds_and_neighbours())
    industry = st.one_of(st.sampled_from(classes), st.sampled_from([None, "", "99", "0511x"]))
    rows = data.draw(
        st.lists(st.tuples(industry, figure, figure, figure), min_size=1, max_size=300)
    )
    on = data.draw(st.sampled_from([date(2025, 6, 30), date(2011, 1, 1), date(2011, 9, 1)]))
    assert list(classify_frame(_frame(rows), on).iter_rows()) == classify_rows(rows, on)
