"""Message to-dos: unread messages in the user's inbox."""

from __future__ import annotations

from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.todo import TodoItem
from huiqi.notify.service import unread_count_for


def todo(session: Session, user: User) -> list[TodoItem]:
    """Unread messages (enterprises and lenders read theirs in the inbox)."""
    if user.role not in (Role.enterprise, Role.bank):
        return []
    return [
        TodoItem("未读消息", "Unread messages", unread_count_for(session, user), "/notify/inbox")
    ]
