"""Chinese full-text search over policy titles and article text.

Text is segmented with jieba (search mode) into a space-delimited token column, so the same
bound-parameter ``LIKE '% token %'`` query runs on SQLite and PostgreSQL alike. A query is
segmented the same way; every query word must occur (as a token or, for words jieba splits
differently, as a substring of the title or text). Hits are ranked and highlighted in Python.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from huiqi.policy.models import Policy, PolicyArticle, PolicyTask
from huiqi.policy.repository import department_aliases, department_condition

_STOP = set("的 了 和 与 及 或 在 对 等 为 是 将 把 被 并 其 之 以 于 由 从 向 a the".split())
_PUNCT = re.compile(r"^[\s\W_]+$")
MAX_ARTICLE_ROWS = 2000
"""Most matching articles ranked per query; ranking happens in Python, so the work is bounded."""

_CUSTOM_WORDS = (
    "专精特新",
    "不来即享",
    "免申即享",
    "一键办结",
    "小巨人",
    "规下转规上",
    "政银企",
    "银税互动",
)


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    for word in _CUSTOM_WORDS:
        jieba.add_word(word)
    return jieba


def warm() -> None:
    """Load the segmenter's dictionary now (a few seconds), so the first search is quick."""
    _jieba().initialize()


def tokens_for_index(*texts: str) -> str:
    """Space-delimited distinct search tokens of the texts (with a leading and trailing space)."""
    jieba = _jieba()
    words: set[str] = set()
    for text in texts:
        for token in jieba.cut_for_search(text or ""):
            token = token.strip().lower()
            if token and not _PUNCT.match(token):
                words.add(token)
    return " " + " ".join(sorted(words)) + " "


def query_terms(query: str) -> list[str]:
    """The words of a search query, segmented like the index."""
    jieba = _jieba()
    terms: list[str] = []
    for chunk in query.split():
        for token in jieba.cut(chunk):
            token = token.strip().lower()
            if token and token not in _STOP and not _PUNCT.match(token) and token not in terms:
                terms.append(token)
    return terms


def _like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class SearchHit:
    """One matching article (or a policy whose title matched) with a highlighted snippet."""

    policy_id: int
    policy_title: str
    doc_number: str | None
    status: str
    article_id: int | None
    article_number: int | None
    article_label: str
    article_title: str
    snippet: str
    terms: tuple[str, ...]
    score: float

    @property
    def url(self) -> str:
        """Link to the policy page, anchored at the article."""
        anchor = f"#art-{self.article_number}" if self.article_number is not None else ""
        return f"/policy/{self.policy_id}{anchor}"

    @property
    def snippet_html(self) -> Markup:
        """The snippet, escaped, with the query words in <mark>."""
        return highlight(self.snippet, self.terms)

    @property
    def title_html(self) -> Markup:
        """The article title, escaped, with the query words in <mark>."""
        return highlight(self.article_title or self.policy_title, self.terms)


def highlight(
    text: str, terms: tuple[str, ...] | list[str] | set[str], css_class: str | None = None
) -> Markup:
    """Escape ``text`` and wrap every occurrence of the terms in <mark>."""
    if not terms:
        return Markup(escape(text))
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
    opening = f'<mark class="{css_class}">' if css_class else "<mark>"
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(str(escape(text[last : m.start()])))
        out.append(f"{opening}{escape(m.group())}</mark>")
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


def highlight_console(text: str, terms: tuple[str, ...] | list[str]) -> str:
    """Rich console markup with the terms in bold yellow."""
    from rich.markup import escape as rich_escape

    if not terms:
        return rich_escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(rich_escape(text[last : m.start()]))
        out.append(f"[bold yellow]{rich_escape(m.group())}[/]")
        last = m.end()
    out.append(rich_escape(text[last:]))
    return "".join(out)


def snippet(text: str, terms: list[str], width: int = 60) -> str:
    """A window of ``text`` around the first query word."""
    lowered = text.lower()
    positions = [p for p in (lowered.find(t) for t in terms) if p >= 0]
    if not positions:
        return text[: 2 * width] + ("…" if len(text) > 2 * width else "")
    first = min(positions)
    start = max(0, first - width)
    end = min(len(text), first + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def search(
    session: Session,
    query: str,
    *,
    department: str | None = None,
    topic: str | None = None,
    status: str | None = "published",
    valid_on: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[SearchHit]:
    """Find articles (and policy titles) containing every word of ``query``, best first."""
    hits = ranked_hits(
        session, query, department=department, topic=topic, status=status, valid_on=valid_on
    )
    return hits[offset : offset + limit]


def search_page(
    session: Session,
    query: str,
    *,
    department: str | None = None,
    topic: str | None = None,
    status: str | None = "published",
    valid_on: dt.date | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[SearchHit], int]:
    """One page of hits (``limit`` after ``offset``) and how many hits there are in all."""
    hits = ranked_hits(
        session, query, department=department, topic=topic, status=status, valid_on=valid_on
    )
    return hits[offset : offset + limit], len(hits)


def ranked_hits(
    session: Session,
    query: str,
    *,
    department: str | None = None,
    topic: str | None = None,
    status: str | None = "published",
    valid_on: dt.date | None = None,
) -> list[SearchHit]:
    """Every hit for ``query`` (at most MAX_ARTICLE_ROWS articles), ranked best first."""
    terms = query_terms(query)
    if not terms:
        return []
    policy_filters = []
    if status:
        policy_filters.append(Policy.status == status)
    if valid_on is not None:
        policy_filters.append(or_(Policy.valid_from.is_(None), Policy.valid_from <= valid_on))
        policy_filters.append(or_(Policy.valid_to.is_(None), Policy.valid_to >= valid_on))
    article_filters = []
    for term in terms:
        like = f"%{_like(term)}%"
        article_filters.append(
            or_(
                PolicyArticle.search_tokens.like(f"% {_like(term)} %", escape="\\"),
                PolicyArticle.title.like(like, escape="\\"),
                PolicyArticle.text.like(like, escape="\\"),
            )
        )
    if department:
        article_filters.append(
            exists().where(
                and_(
                    PolicyTask.article_id == PolicyArticle.id,
                    department_condition(_department_code(session, department), department),
                )
            )
        )
    if topic:
        article_filters.append(PolicyArticle.topics.like(f"% {_like(topic)} %", escape="\\"))
    rows = session.execute(
        select(PolicyArticle, Policy)
        .join(Policy, Policy.id == PolicyArticle.policy_id)
        .where(*policy_filters, *article_filters)
        .limit(MAX_ARTICLE_ROWS)
    ).all()
    hits: list[SearchHit] = []
    for article, policy in rows:
        score = sum(
            3 * article.title.lower().count(t) + article.text.lower().count(t) for t in terms
        )
        hits.append(
            SearchHit(
                policy_id=policy.id,
                policy_title=policy.title,
                doc_number=policy.doc_number,
                status=policy.status,
                article_id=article.id,
                article_number=article.number,
                article_label=article.label,
                article_title=article.title,
                snippet=snippet(article.text, terms),
                terms=tuple(terms),
                score=float(score),
            )
        )
    if not department and not topic:
        title_filters = [
            or_(
                Policy.search_tokens.like(f"% {_like(t)} %", escape="\\"),
                Policy.title.like(f"%{_like(t)}%", escape="\\"),
            )
            for t in terms
        ]
        for policy in session.scalars(
            select(Policy).where(*policy_filters, *title_filters).limit(200)
        ):
            hits.append(
                SearchHit(
                    policy_id=policy.id,
                    policy_title=policy.title,
                    doc_number=policy.doc_number,
                    status=policy.status,
                    article_id=None,
                    article_number=None,
                    article_label="",
                    article_title="",
                    snippet=policy.title,
                    terms=tuple(terms),
                    score=1000.0 + sum(policy.title.lower().count(t) for t in terms),
                )
            )
    hits.sort(key=lambda h: (-h.score, h.policy_id, h.article_number or 0))
    return hits


def _department_code(session: Session, department: str) -> str | None:
    """The registry code of a department name (officer-mapped aliases included), if any."""
    from huiqi.policy.departments import default_registry

    registry = default_registry().with_aliases(department_aliases(session))
    dept = registry.lookup(department)
    return dept.code if dept is not None else None
