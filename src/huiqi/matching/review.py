"""What the rule review page shows: the text of each cited article, and parameter values with units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy.orm import Session

from huiqi.core.money import format_fen
from huiqi.matching.sources import article_number, library_articles
from huiqi.policy import repository as policy_repo
from huiqi.rules.compiler import Parameter


@dataclass(frozen=True)
class CitedArticle:
    """The text of a cited article as the policy library holds it (url when it is published)."""

    label: str
    title: str
    text: str
    quantities: tuple[str, ...]
    url: str | None


def article_text(session: Session, doc_number: str, article: str) -> CitedArticle | None:
    """The cited article from the policy library (the database, else the packaged seed); None if absent."""
    number = article_number(article)
    if number is None:
        return None
    policy = policy_repo.by_doc_number(session, doc_number)
    if policy is not None:
        found = policy_repo.article_by_number(session, policy.id, number)
        if found is not None:
            return CitedArticle(
                label=found.label,
                title=found.title,
                text=found.text,
                quantities=tuple(q["text"] for q in found.quantities),
                url=f"/policy/{policy.id}#art-{number}",
            )
    packaged = library_articles().get(doc_number, {}).get(number)
    if packaged is None:
        return None
    return CitedArticle(
        packaged.label, packaged.title, packaged.text, tuple(packaged.quantity_texts()), None
    )


def show_value(param: Parameter, value: Any) -> str:
    """A parameter value as people write it (30%, 2000万元, A、B、M)."""
    if isinstance(value, tuple):
        return "、".join(str(v) for v in value)
    if param.vtype.kind == "money":
        return format_fen(int(value))
    if param.vtype.kind == "ratio":
        frac = Fraction(value) * 100
        text = f"{Decimal(frac.numerator) / Decimal(frac.denominator):f}"
        return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
    return str(value)
