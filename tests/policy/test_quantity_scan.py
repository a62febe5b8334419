"""The quantity scan reads only sentences holding a unit and looks back for bound words: it finds
what one pattern with the bound words in front finds, sentence by sentence."""

from __future__ import annotations

import re
from pathlib import Path

from huiqi.policy import quantities as q

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    *sorted((REPO / "tests" / "data" / "policy" / "corpus").glob("*.txt")),
    *sorted((REPO / "tests" / "data" / "reference").glob("*.txt")),
    REPO / "src" / "huiqi" / "policy" / "data" / "samples" / "gansu-gongxinfa-2020-351.txt",
]
# The bound words in front of the number pattern, leftmost match first: the reading to keep.
SENTENCE = re.compile(r"[^。;!?\n]+[。;!?]?")
ONE_PATTERN = re.compile(f"(?P<pre>{'|'.join(q._PRE_WORDS)})?(?:{q._CORE.pattern})")


def _with_one_pattern(text: str) -> list[q.Quantity]:
    found = []
    for sentence_match in SENTENCE.finditer(text):
        sentence = sentence_match.group().strip()
        for m in ONE_PATTERN.finditer(sentence):
            core = q._CORE.match(sentence, m.end("pre") if m.group("pre") else m.start())
            assert core is not None and core.end() == m.end()
            quantity = q._quantity_from_match(core, m.group("pre"), sentence)
            if quantity is not None:
                found.append(quantity)
    return found


def test_scan_equals_one_pattern_on_real_texts() -> None:
    counted = 0
    for path in TEXTS:
        whole = path.read_text("utf-8")
        assert q.find_quantities(whole) == _with_one_pattern(whole), path.name
        for line in whole.splitlines():
            assert q.find_quantities(line) == _with_one_pattern(line), line
            counted += len(q.find_quantities(line))
    assert counted > 50


def test_scan_equals_one_pattern_on_tricky_bounds() -> None:
    for text in (
        "贷款期限最长不得超过3年,担保费率不超过1.5%。",
        "规模10万元以下不超过5万元,最高奖的金额超过五万元。",
        "降至百分之二点五以下,每日利率万分之五,达到3—5个工作日内。",
        "第三年起减半,每家不低于20家,至少一年。",
    ):
        assert q.find_quantities(text) == _with_one_pattern(text), text
        assert q.find_quantities(text)
