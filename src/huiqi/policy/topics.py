"""Topic tags for policy articles, from a keyword list kept as data (data/topics.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class Topic:
    """A topic tag with its Chinese label and keywords."""

    code: str
    label: str
    keywords: tuple[str, ...]
    min_hits: int = 2


@lru_cache(maxsize=1)
def topics() -> tuple[Topic, ...]:
    """Load the packaged topic list."""
    raw = yaml.safe_load(
        resources.files("huiqi.policy").joinpath("data/topics.yaml").read_text("utf-8")
    )
    return tuple(
        Topic(code, item["label"], tuple(item["keywords"]), int(item.get("min_hits", 2)))
        for code, item in raw.items()
    )


def topic_labels() -> dict[str, str]:
    """Topic code → Chinese label."""
    return {t.code: t.label for t in topics()}


@lru_cache(maxsize=1)
def _keywords_by_first_char() -> dict[str, tuple[str, ...]]:
    """Keywords grouped by their first character, so a text is only searched for candidates."""
    out: dict[str, list[str]] = {}
    for k in sorted({k for t in topics() for k in t.keywords}):
        out.setdefault(k[0], []).append(k)
    return {ch: tuple(ks) for ch, ks in out.items()}


@lru_cache(maxsize=1)
def _first_chars() -> frozenset[str]:
    """The keywords' first characters."""
    return frozenset(_keywords_by_first_char())


def _present(text: str) -> set[str]:
    """The keywords occurring in ``text`` (only those starting with a character it holds)."""
    by_first = _keywords_by_first_char()
    return {k for ch in _first_chars().intersection(text) for k in by_first[ch] if k in text}


@lru_cache(maxsize=1)
def _topics_of_keyword() -> dict[str, frozenset[int]]:
    """Keyword → the positions (in :func:`topics`) of the topics listing it."""
    out: dict[str, set[int]] = {}
    for at, topic in enumerate(topics()):
        for k in topic.keywords:
            out.setdefault(k, set()).add(at)
    return {k: frozenset(v) for k, v in out.items()}


def tag_topics(title: str, text: str) -> list[str]:
    """Topics of one article: a keyword in the title, or enough keyword hits in the text."""
    in_title = _present(title) if title else set()
    in_text = _present(text)
    if not in_title and not in_text:
        return []
    of_keyword = _topics_of_keyword()
    by_title = {at for k in in_title for at in of_keyword[k]}
    by_text = {at for k in in_text for at in of_keyword[k]}
    all_topics = topics()
    tags = []
    for at in sorted(by_title | by_text):
        topic = all_topics[at]
        if at in by_title:
            tags.append(topic.code)
        elif sum(text.count(k) for k in topic.keywords if k in in_text) >= topic.min_hits:
            tags.append(topic.code)
    return tags
