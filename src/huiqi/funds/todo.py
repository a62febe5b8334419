"""Special-fund to-dos of an enterprise: drafts whose call closes within three days, and
applications returned for correction (both urgent: a missed day loses the money)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.todo import TodoItem
from huiqi.funds.models import FundApplication, FundCall
from huiqi.funds.schemas import ApplicationStatus

NEAR = timedelta(days=3)


def todo(session: Session, user: User) -> list[TodoItem]:
    """An enterprise's drafts near their deadline and returned applications."""
    if user.role != Role.enterprise or not user.credit_code:
        return []
    now = clock.now()
    mine = FundApplication.credit_code == user.credit_code
    drafts = session.scalar(
        select(func.count())
        .select_from(FundApplication)
        .join(FundCall, FundCall.id == FundApplication.call_id)
        .where(
            mine,
            FundApplication.status == ApplicationStatus.draft,
            FundCall.closes_at > now,
            FundCall.closes_at <= now + NEAR,
        )
    )
    returned = session.scalar(
        select(func.count())
        .select_from(FundApplication)
        .where(mine, FundApplication.status == ApplicationStatus.returned)
    )
    return [
        TodoItem(
            "三天内截止、尚未提交的申报草稿",
            "Draft applications whose call closes within 3 days",
            int(drafts or 0),
            "/funds/mine",
            urgent=True,
        ),
        TodoItem(
            "被退回、需修改后重新提交的申报",
            "Applications returned for correction",
            int(returned or 0),
            "/funds/mine",
            urgent=True,
        ),
    ]
