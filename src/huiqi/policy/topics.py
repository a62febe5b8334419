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


def tag_topics(title: str, text: str) -> list[str]:
    """Topics of one article: a keyword in the title, or enough keyword hits in the text."""
    tags = []
    for topic in topics():
        if any(k in title for k in topic.keywords):
            tags.append(topic.code)
            continue
        hits = sum(text.count(k) for k in topic.keywords)
        if hits >= topic.min_hits:
            tags.append(topic.code)
    return tags
