"""Grant lists, totals and the public notice (公示)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.grants.models import Grant, GrantStatus
from huiqi.grants.scope import Scope, scoped


def grants(
    session: Session,
    *,
    status: str | None = None,
    credit_code: str | None = None,
    rule_id: str | None = None,
    limit: int = 500,
    departments: Scope = None,
) -> Sequence[Grant]:
    """Grants, newest first, filtered (by the rule's department too when given)."""
    q = scoped(select(Grant), departments)
    if status:
        q = q.where(Grant.status == status)
    if credit_code:
        q = q.where(Grant.credit_code == credit_code)
    if rule_id:
        q = q.where(Grant.rule_id == rule_id)
    return session.scalars(q.order_by(Grant.id.desc()).limit(limit)).all()


@dataclass(frozen=True)
class NoticeRow:
    """One line of the public notice (公示): only name, policy, amount and date."""

    enterprise_name: str
    rule_title: str
    amount_fen: int
    period: int
    approved_on: date | None


def public_notice(session: Session, *, days: int | None = None) -> list[NoticeRow]:
    """Approved and disbursed grants for the public notice list."""
    q = select(Grant).where(Grant.status.in_([GrantStatus.approved, GrantStatus.disbursed]))
    if days is not None:
        q = q.where(Grant.reviewed_at >= utcnow() - timedelta(days=days))
    out = []
    for g in session.scalars(q.order_by(Grant.reviewed_at.desc(), Grant.id.desc())):
        approved = g.reviewed_at.date() if isinstance(g.reviewed_at, datetime) else None
        out.append(NoticeRow(g.enterprise_name, g.rule_title, g.amount_fen, g.period, approved))
    return out


def totals_by_status(session: Session, *, departments: Scope = None) -> dict[str, tuple[int, int]]:
    """Grant count and amount per status."""
    q = scoped(select(Grant.status, func.count(), func.sum(Grant.amount_fen)), departments)
    return {
        st: (int(n), int(total or 0)) for st, n, total in session.execute(q.group_by(Grant.status))
    }
