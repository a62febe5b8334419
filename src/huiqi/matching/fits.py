"""Who a rule fits, from the stored results: the audience of a push about that rule."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.matching.models import MatchResult

FITTING = ("eligible", "unknown")


def fitting_enterprises(session: Session, rule_id: str) -> list[tuple[str, str]]:
    """(credit code, result) of every enterprise a rule fits: eligible, or unknown for want of data."""
    rows = session.execute(
        select(MatchResult.credit_code, MatchResult.result)
        .where(MatchResult.rule_id == rule_id, MatchResult.result.in_(FITTING))
        .order_by(MatchResult.credit_code)
    )
    return [(str(code), str(result)) for code, result in rows]
