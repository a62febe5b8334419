"""The corpus scorer names every unit by its full path."""

from __future__ import annotations

from huiqi.policy.parser import parse_text
from tests.policy.corpus import _units

CODE = """某某法典
第一编 总则
第一章 一般规定
第一条 为了规范某某关系，制定本法。
第二条 本法适用于某某关系。
第二编 分则
第一章 一般规定
第三条 分则适用本编规定。
第二章 特别规定
第四条 特别事项依照特别规定。
"""


def test_chapters_are_named_with_their_book() -> None:
    # Chapters restart in every 编: named without it, the two 第一章 would be one unit.
    names = [name for name, _ in _units(parse_text(CODE))]
    assert names == [
        "第一编/第一章",
        "第一编/第一章/第一条",
        "第一编/第一章/第二条",
        "第二编/第一章",
        "第二编/第一章/第三条",
        "第二编/第二章",
        "第二编/第二章/第四条",
    ]
