"""Grant to-dos: officers review pending grants and held approvals; enterprises add an account."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.todo import TodoItem
from huiqi.grants import service
from huiqi.grants.models import BankAccount, Grant, GrantStatus


def todo(session: Session, user: User) -> list[TodoItem]:
    """Pending and held grants for officers; for an enterprise, grants waiting for its account."""
    if user.role in (Role.officer, Role.admin):
        scope = service.review_scope(
            session,
            role=Role(user.role),
            department=user.department,
            region_prefix=user.region_prefix,
        )
        totals = service.totals_by_status(session, departments=scope)
        held = [
            g
            for g in service.grants(session, status=GrantStatus.approved, departments=scope)
            if any(f["code"] in service.HOLD_FLAGS for f in g.risk_flags or [])
        ]
        return [
            TodoItem(
                "待审核的免申即享项目",
                "Grants to review",
                totals.get("pending", (0, 0))[0],
                "/grants",
            ),
            TodoItem(
                "批准后数据变化、待核实",
                "Approved grants whose data changed",
                len(held),
                "/grants#held",
                urgent=True,
            ),
        ]
    if user.role == Role.enterprise and user.credit_code:
        pending = (
            session.scalar(
                select(func.count())
                .select_from(Grant)
                .where(Grant.credit_code == user.credit_code, Grant.status == GrantStatus.pending)
            )
            or 0
        )
        has_account = session.scalar(
            select(BankAccount.id).where(BankAccount.credit_code == user.credit_code)
        )
        return [
            TodoItem(
                "登记收款账户,以便拨付免申即享资金",
                "Add a bank account so benefits can be paid",
                pending if has_account is None else 0,
                "/grants/mine#account",
                urgent=True,
            ),
            TodoItem("审核中的免申即享项目", "Benefits under review", pending, "/grants/mine"),
        ]
    return []
