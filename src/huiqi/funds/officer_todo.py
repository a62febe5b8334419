"""Special-fund to-dos of the officer half: applications waiting at the officer's stage,
lists to put on or approve after 公示, projects flagged on performance; for an enterprise, the
performance reports it owes."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.todo import TodoItem
from huiqi.funds import awarding, outcomes, review
from huiqi.funds.models import FundApplication, FundCall
from huiqi.funds.schemas import ApplicationStatus, CallStatus


def todo(session: Session, user: User) -> list[TodoItem]:
    """What the user has to act on in the special funds."""
    if user.role in (Role.officer, Role.admin):
        waiting = review.queue(session, user)
        ready, due = 0, 0
        today = clock.today()
        for call in session.scalars(
            select(FundCall).where(
                FundCall.status.in_([CallStatus.in_review, CallStatus.publicity])
            )
        ):
            try:
                awarding.ensure_awarder(session, user, call)
            except review.ReviewForbidden:
                continue
            if call.status == CallStatus.publicity:
                due += int(call.publicity_to is not None and today > call.publicity_to)
                continue
            open_ = session.scalar(
                select(func.count())
                .select_from(FundApplication)
                .where(
                    FundApplication.call_id == call.id,
                    FundApplication.status.in_(
                        [
                            ApplicationStatus.submitted,
                            ApplicationStatus.in_review,
                            ApplicationStatus.returned,
                        ]
                    ),
                )
            )
            scored = session.scalar(
                select(func.count())
                .select_from(FundApplication)
                .where(
                    FundApplication.call_id == call.id,
                    FundApplication.status == ApplicationStatus.scored,
                )
            )
            ready += int(not open_ and bool(scored))
        return [
            TodoItem(
                "待审核的专项资金申报", "Applications to review", len(waiting), "/funds/review"
            ),
            TodoItem(
                "评审完成、待排序公示的申报批次",
                "Calls ready for the ranked list and 公示",
                ready,
                "/funds/review#award-calls",
            ),
            TodoItem(
                "公示期满、待批准立项",
                "Publicity over: awards to approve",
                due,
                "/funds/review#award-calls",
                urgent=True,
            ),
        ]
    if user.role == Role.enterprise and user.credit_code:
        rows = outcomes.due_for_enterprise(session, user.credit_code)
        today = clock.today()
        overdue = [r for r in rows if r.due_on < today]
        return [
            TodoItem(
                "逾期未报的绩效报告",
                "Overdue performance reports",
                len(overdue),
                "/funds/performance/mine",
                urgent=True,
            ),
            TodoItem(
                "待报送的绩效报告",
                "Performance reports due",
                len(rows) - len(overdue),
                "/funds/performance/mine",
            ),
        ]
    return []
