"""Rule to-dos: rule versions of the officer's department awaiting publication; for an enterprise,
policies that wait for its data (待确认)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.todo import TodoItem
from huiqi.matching.models import RuleVersion
from huiqi.matching.stored import unknown_count

SETTLED = ("published", "retired")


def todo(session: Session, user: User) -> list[TodoItem]:
    """Rules awaiting publication (officers) or policies to confirm (enterprises)."""
    if user.role in (Role.officer, Role.admin):
        waiting = (
            session.scalar(
                select(func.count())
                .select_from(RuleVersion)
                .where(RuleVersion.status.not_in(SETTLED))
            )
            or 0
        )
        return [TodoItem("待发布的政策规则", "Rules awaiting publication", waiting, "/rules")]
    if user.role == Role.enterprise and user.credit_code:
        unknown = unknown_count(session, user.credit_code)
        return [
            TodoItem(
                "待确认的政策:补充数据即可判断",
                "Policies to confirm: supply data to decide",
                unknown,
                "/matching/mine#to-confirm",
            )
        ]
    return []
