"""Topic tagging: the candidate search finds exactly what counting every keyword finds."""

from __future__ import annotations

from pathlib import Path

from huiqi.policy.topics import tag_topics, topics

CORPUS = Path(__file__).resolve().parents[1] / "data" / "policy" / "corpus"


def _every_keyword(title: str, text: str) -> list[str]:
    """The rule as written: a keyword in the title, or min_hits keyword occurrences in the text."""
    tags = []
    for topic in topics():
        if any(k in title for k in topic.keywords):
            tags.append(topic.code)
        elif sum(text.count(k) for k in topic.keywords) >= topic.min_hits:
            tags.append(topic.code)
    return tags


def test_tags_equal_counting_every_keyword() -> None:
    paragraphs = [
        line
        for path in sorted(CORPUS.glob("*.txt"))
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]
    assert len(paragraphs) > 300
    tagged = 0
    for at, text in enumerate(paragraphs):
        title = paragraphs[at - 1][:30]
        assert tag_topics(title, text) == _every_keyword(title, text), text
        tagged += bool(tag_topics("", text))
    assert tagged > 20


def test_overlapping_keywords_all_count() -> None:
    # 公平竞争审查 holds 公平竞争 (rights) and is itself a market keyword; 征信 is in two topics.
    text = "开展公平竞争审查，加强监管。健全征信体系，推进信用修复，维护公平竞争。"
    assert tag_topics("", text) == _every_keyword("", text)
    assert {"market", "credit", "rights"} <= set(tag_topics("", text))
