"""Interest subsidy (贷款贴息): worked examples from the formula, and properties that hold for
every loan (exact to the fen, caps never exceeded, the stated rounding)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huiqi.funds.interest import (
    InterestError,
    Loan,
    SubsidyTerms,
    explain,
    interest_days,
    round_fen,
    subsidy,
    subsidy_line,
)

YEAR = SubsidyTerms(window_start=date(2025, 1, 1), window_end=date(2025, 12, 31))


def test_worked_example_360_half_share() -> None:
    # 100 万元 at 4.35% for 90 days, basis 360, half subsidised: 1,000,000 × 0.0435 × 90 / 360
    # × 0.5 = 5,437.50 元
    terms = SubsidyTerms(
        window_start=date(2025, 1, 1),
        window_end=date(2025, 12, 31),
        day_count_basis=360,
        share=Decimal("0.5"),
    )
    loan = Loan("JK-1", 100_000_000, Decimal("0.0435"), date(2025, 1, 1), date(2025, 4, 1))
    line = subsidy_line(loan, terms)
    assert line.days == 90
    assert line.fen == 543_750


def test_worked_example_365_rounds_half_up() -> None:
    # the same loan on basis 365: 5,363.01369… 元 → 536,301 fen
    terms = SubsidyTerms(
        window_start=date(2025, 1, 1),
        window_end=date(2025, 12, 31),
        day_count_basis=365,
        share=Decimal("0.5"),
    )
    loan = Loan("JK-1", 100_000_000, Decimal("0.0435"), date(2025, 1, 1), date(2025, 4, 1))
    line = subsidy_line(loan, terms)
    assert line.exact_fen == Fraction(391_500_000, 730)
    assert line.fen == 536_301


def test_days_count_the_first_day_not_the_repayment_day() -> None:
    assert (
        interest_days(date(2025, 3, 1), date(2025, 6, 1), YEAR.window_start, YEAR.window_end) == 92
    )
    # a loan lent before the window counts from the window's first day
    assert (
        interest_days(date(2024, 11, 15), date(2025, 2, 15), YEAR.window_start, YEAR.window_end)
        == 45
    )
    # a loan running past the window counts up to and including its last day
    assert (
        interest_days(date(2025, 12, 1), date(2026, 3, 1), YEAR.window_start, YEAR.window_end) == 31
    )
    # a loan wholly outside gets nothing
    assert (
        interest_days(date(2024, 1, 1), date(2024, 12, 31), YEAR.window_start, YEAR.window_end) == 0
    )


def test_the_rate_ceiling_limits_the_subsidised_rate() -> None:
    terms = SubsidyTerms(
        window_start=date(2025, 1, 1), window_end=date(2025, 12, 31), rate_ceiling=Decimal("0.0385")
    )
    loan = Loan("JK-2", 36_000_000, Decimal("0.06"), date(2025, 1, 1), date(2025, 1, 11))
    line = subsidy_line(loan, terms)
    assert line.rate == Decimal("0.0385")
    assert line.fen == 36_000_000 * 385 * 10 // (10_000 * 360)  # 3,850 fen exactly


def test_stated_rounding_on_an_exact_half() -> None:
    # 100 fen × 5% × 36 / 360 = 0.5 fen
    loan = Loan("X", 100, Decimal("0.05"), date(2025, 1, 1), date(2025, 2, 6))
    for rounding, fen in (("half_up", 1), ("down", 0), ("half_even", 0)):
        terms = SubsidyTerms(
            window_start=date(2025, 1, 1), window_end=date(2025, 12, 31), rounding=rounding
        )
        assert subsidy_line(loan, terms).fen == fen, rounding


def test_caps_per_loan_and_per_enterprise() -> None:
    terms = SubsidyTerms(
        window_start=date(2025, 1, 1),
        window_end=date(2025, 12, 31),
        cap_per_loan_fen=2_000_000,
        cap_per_enterprise_fen=2_100_000,
    )
    big = Loan("A", 100_000_000, Decimal("0.05"), date(2025, 1, 1), date(2025, 12, 31))
    small = Loan("B", 10_000_000, Decimal("0.05"), date(2025, 1, 1), date(2025, 7, 1))
    result = subsidy([big, small], terms)
    assert result.lines[0].capped and result.lines[0].fen == 2_000_000
    assert not result.lines[1].capped
    assert result.before_cap_fen == 2_000_000 + result.lines[1].fen
    assert result.total_fen == 2_100_000 and result.capped
    text = "\n".join(explain(result))
    assert "超过单笔上限" in text and "每户上限" in text and "(七)" in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"day_count_basis": 364}, "day_count_basis"),
        ({"share": Decimal("0")}, "share"),
        ({"share": Decimal("1.2")}, "share"),
        ({"rounding": "up"}, "rounding"),
        ({"cap_per_loan_fen": -1}, "cap_per_loan_fen"),
        ({"window_end": date(2024, 1, 1)}, "window_end"),
    ],
)
def test_bad_terms_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"window_start": date(2025, 1, 1), "window_end": date(2025, 12, 31)}
    with pytest.raises(InterestError) as err:
        SubsidyTerms(**{**base, **kwargs})  # type: ignore[arg-type]
    assert err.value.field == field


def test_bad_loans_and_double_claims_are_refused() -> None:
    with pytest.raises(InterestError, match="本金"):
        Loan("A", 0, Decimal("0.04"), date(2025, 1, 1), date(2025, 2, 1))
    with pytest.raises(InterestError, match="年利率"):
        Loan("A", 100, Decimal("4.35"), date(2025, 1, 1), date(2025, 2, 1))
    with pytest.raises(InterestError, match="到期日"):
        Loan("A", 100, Decimal("0.04"), date(2025, 2, 1), date(2025, 1, 1))
    loan = Loan("A", 100, Decimal("0.04"), date(2025, 1, 1), date(2025, 2, 1))
    with pytest.raises(InterestError, match="重复"):
        subsidy([loan, loan], YEAR)


principals = st.integers(min_value=1, max_value=10**12)  # up to 100 亿元
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.2"), places=4)
starts = st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 6, 1))
terms_st = st.builds(
    SubsidyTerms,
    window_start=st.just(date(2025, 1, 1)),
    window_end=st.just(date(2025, 12, 31)),
    day_count_basis=st.sampled_from([360, 365]),
    share=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1"), places=2),
    cap_per_loan_fen=st.none() | st.integers(min_value=0, max_value=10**9),
    rounding=st.sampled_from(["half_up", "down", "half_even"]),
)


@given(principals, rates, starts, st.integers(min_value=0, max_value=800), terms_st)
def test_line_is_the_formula_rounded_once(
    principal: int, rate: Decimal, start: date, length: int, terms: SubsidyTerms
) -> None:
    loan = Loan("L", principal, rate, start, start + timedelta(days=length))
    line = subsidy_line(loan, terms)
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(principal) * rate * line.days / terms.day_count_basis * terms.share
        rounding = {
            "half_up": "ROUND_HALF_UP",
            "down": "ROUND_DOWN",
            "half_even": "ROUND_HALF_EVEN",
        }
        expected = int(exact.quantize(Decimal(1), rounding=rounding[terms.rounding]))
    assert line.computed_fen == expected
    assert 0 <= line.days <= 365 and line.days <= length
    if terms.cap_per_loan_fen is not None:
        assert line.fen <= terms.cap_per_loan_fen
    assert line.fen <= line.computed_fen


@given(principals, rates, starts, st.integers(min_value=0, max_value=800))
def test_365_never_pays_more_than_360(
    principal: int, rate: Decimal, start: date, length: int
) -> None:
    loan = Loan("L", principal, rate, start, start + timedelta(days=length))
    a = subsidy_line(loan, SubsidyTerms(date(2025, 1, 1), date(2025, 12, 31), day_count_basis=360))
    b = subsidy_line(loan, SubsidyTerms(date(2025, 1, 1), date(2025, 12, 31), day_count_basis=365))
    assert b.fen <= a.fen


@given(
    st.lists(st.tuples(principals, rates, starts, st.integers(0, 400)), max_size=6),
    st.none() | st.integers(min_value=0, max_value=10**8),
)
def test_total_is_the_lines_summed_then_capped(
    loans: list[tuple[int, Decimal, date, int]], cap: int | None
) -> None:
    terms = SubsidyTerms(date(2025, 1, 1), date(2025, 12, 31), cap_per_enterprise_fen=cap)
    records = [
        Loan(f"L{i}", p, r, s, s + timedelta(days=n)) for i, (p, r, s, n) in enumerate(loans)
    ]
    result = subsidy(records, terms)
    assert result.before_cap_fen == sum(line.fen for line in result.lines)
    assert result.total_fen == (
        result.before_cap_fen if cap is None else min(cap, result.before_cap_fen)
    )


def test_round_fen_refuses_negative() -> None:
    with pytest.raises(InterestError):
        round_fen(Fraction(-1, 2))
