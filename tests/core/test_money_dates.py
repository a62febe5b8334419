"""Exact money conversions and working-day arithmetic on the official calendar."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from huiqi.core.dates import add_working_days, is_working_day, working_days_between
from huiqi.core.money import MoneyError, fen_to_decimal, format_fen, to_fen


def test_to_fen_is_exact() -> None:
    assert to_fen("199999999", "yuan") == 19_999_999_900
    assert to_fen("1999.99", "wan") == 1_999_990_000
    assert to_fen("0.01") == 1
    assert fen_to_decimal(1_999_990_000, "wan") == Decimal("1999.99")


@pytest.mark.parametrize("bad", ["abc", "0.001", "NaN", "Infinity"])
def test_to_fen_refuses(bad: str) -> None:
    with pytest.raises(MoneyError):
        to_fen(bad)


def test_float_is_refused() -> None:
    with pytest.raises(MoneyError):
        to_fen(1.5)  # type: ignore[arg-type]


def test_format() -> None:
    assert format_fen(123456789) == "1,234,567.89 元"
    assert format_fen(1_999_990_000, "wan") == "1,999.99 万元"
    assert format_fen(None) == "—"


def test_national_day_is_not_a_working_day() -> None:
    assert not is_working_day(date(2025, 10, 1))
    # 2025-09-28 (Sunday) was a make-up working day for the National Day holiday.
    assert is_working_day(date(2025, 9, 28))


def test_add_working_days_skips_the_holiday() -> None:
    # From Tuesday 30 Sep 2025, the next working day is Thursday 9 Oct (holiday 1–8 Oct).
    assert add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert working_days_between(date(2025, 9, 30), date(2025, 10, 9)) == 1
