"""The LPR series is complete and every change is the step its announcement states."""

from __future__ import annotations

import re
from datetime import date, timedelta
from fractions import Fraction

import pytest

from huiqi.finance.eligibility import default_params

FIRST = date(2019, 8, 20)  # the first quote after the reform (中国人民银行公告〔2019〕第15号)


@pytest.mark.parametrize("pid", ["lpr_1y", "lpr_5y"])
def test_consecutive_changes_match_the_announced_steps(pid: str) -> None:
    periods = sorted(default_params().library.params[pid].periods, key=lambda p: p[0])
    assert periods[0][0] == FIRST and periods[-1][1] is None  # from the reform to the present
    for (start, end, value, _src), (nxt, _e, new, new_src) in zip(
        periods, periods[1:], strict=False
    ):
        assert end == nxt - timedelta(days=1), f"{pid}: gap or overlap after {start}"
        assert new_src.issued == nxt, f"{pid}: announcement date of {nxt}"
        m = re.fullmatch(r"([+-]\d+)bp", new_src.change or "")
        assert m, f"{pid} {nxt}: the announced step is missing"
        step = Fraction(int(m.group(1)), 10_000)
        assert new - value == step, f"{pid} {nxt}: {value} → {new} is not {new_src.change}"
        assert step != 0 and nxt.day >= 20  # only changes are listed, quoted on/after the 20th


def test_the_june_2023_cut_of_the_five_year_rate() -> None:
    params = default_params()
    assert params.bp_on("lpr_5y", date(2023, 6, 19)) == 430
    assert params.bp_on("lpr_5y", date(2023, 6, 20)) == 420
    assert params.bp_on("lpr_5y", date(2024, 2, 19)) == 420
    assert params.bp_on("lpr_5y", date(2024, 2, 20)) == 395
    assert params.bp_on("lpr_1y", date(2023, 6, 20)) == 355
