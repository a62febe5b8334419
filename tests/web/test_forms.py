"""Typed form values: bad input is an `Invalid` that names the field by its label, never its name."""

from __future__ import annotations

from datetime import date

import pytest

from huiqi.core.errors import Invalid
from huiqi.web import forms


def test_a_date_is_read_and_a_bad_one_is_named_by_its_label() -> None:
    assert forms.day(" 2026-01-31 ", "on") == date(2026, 1, 31)
    with pytest.raises(Invalid) as caught:
        forms.day("31/01/2026", "on", ("评估日期", "evaluation date"))
    err = caught.value
    assert err.field == "on"
    assert err.message_zh.startswith("评估日期格式应为")
    assert "on:" not in err.message_zh and "'31/01/2026'" in err.message_zh
    assert err.message_en.startswith("evaluation date must be written YYYY-MM-DD")


@pytest.mark.parametrize("bad", ["x", "", "1.5", str(2**63)])
def test_ids_refuse_what_is_not_a_64_bit_whole_number(bad: str) -> None:
    assert forms.ids([" 7", "-2"], "grant_id") == [7, -2]
    with pytest.raises(Invalid) as caught:
        forms.ids(["1", bad], "grant_id", ("补贴", "grant"))
    assert caught.value.message_zh.startswith("补贴无效")
    assert "grant_id" not in caught.value.message_zh
