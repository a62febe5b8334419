"""Financing to-dos: a lender's new applications and those near their deadline; overdue ones
for officers; an enterprise's applications in progress."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.clock import today
from huiqi.core.todo import TodoItem
from huiqi.enterprise import repository as ent_repo
from huiqi.finance.models import Application, AppStatus

OPEN = (AppStatus.submitted, AppStatus.accepted)
NEAR_DAYS = 3


def _count(session: Session, *conds: object) -> int:
    return session.scalar(select(func.count()).select_from(Application).where(*conds)) or 0  # type: ignore[arg-type]


def todo(session: Session, user: User) -> list[TodoItem]:
    """Applications to act on, per role."""
    now = today()
    near = Application.due_on <= now + timedelta(days=NEAR_DAYS)
    if user.role == Role.bank:
        mine = Application.institution == user.institution
        return [
            TodoItem(
                "临近办理时限的申请",
                "Applications near their deadline",
                _count(session, mine, Application.status.in_(OPEN), near),
                "/finance#applications",
                urgent=True,
            ),
            TodoItem(
                "新提交、待受理的融资申请",
                "New applications to accept",
                _count(session, mine, Application.status == AppStatus.submitted),
                "/finance#applications",
            ),
        ]
    if user.role in (Role.officer, Role.admin):
        # a city or county officer oversees its region's applications only
        region = (
            Application.credit_code.in_(ent_repo.codes_in_region(user.region_prefix))
            if user.region_prefix
            else true()
        )
        return [
            TodoItem(
                "超过办理时限的融资申请(督办)",
                "Financing applications past their deadline",
                _count(session, region, Application.status.in_(OPEN), Application.due_on < now),
                "/finance#applications",
                urgent=True,
            )
        ]
    if user.role == Role.enterprise and user.credit_code:
        return [
            TodoItem(
                "办理中的融资申请",
                "Financing applications in progress",
                _count(
                    session,
                    Application.credit_code == user.credit_code,
                    Application.status.in_(OPEN),
                ),
                "/finance#applications",
            )
        ]
    return []
