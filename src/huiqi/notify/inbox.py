"""The inbox: an enterprise's or a user's notifications, read receipts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.db import utcnow
from huiqi.notify.models import (
    Notification,
    ReadReceipt,
)


def _addressed_to(user: User) -> Any:
    """The condition selecting the notifications a user may read."""
    if user.role == Role.enterprise:
        # an enterprise user reads its enterprise's messages; without a binding, none
        return Notification.credit_code == (user.credit_code or "")
    return Notification.recipient_user_id == user.id


def can_read(user: User, note: Notification) -> bool:
    """Whether the notification belongs to the user's inbox."""
    if user.role == Role.enterprise:
        return note.credit_code is not None and note.credit_code == user.credit_code
    return note.recipient_user_id is not None and note.recipient_user_id == user.id


def inbox_for(
    session: Session, user: User, *, unread_only: bool = False, limit: int = 200
) -> Sequence[Notification]:
    """The user's inbox, newest first: its enterprise's messages, or its own as bank or officer."""
    q = select(Notification).where(_addressed_to(user))
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return session.scalars(q.order_by(Notification.id.desc()).limit(limit)).all()


def _stamp_of(addressed: Any) -> Any:
    """The inbox stamp query for one way of addressing messages (built once: it runs per view)."""
    unread = Notification.read_at.is_(None)
    return select(
        func.count(),
        func.max(Notification.id),
        func.sum(case((unread, 1), else_=0)),
        func.sum(case((unread, Notification.id), else_=0)),
        func.max(Notification.read_at),
    ).where(addressed == bindparam("who"))


_ENTERPRISE_STAMP = _stamp_of(Notification.credit_code)
_USER_STAMP = _stamp_of(Notification.recipient_user_id)


def inbox_stamp(session: Session, user: User) -> tuple[Any, ...]:
    """What the user's inbox page shows, in one small row: it changes when the page would.

    Messages are only ever added (the newest id and the count move) and read or made unread
    again (the unread count and the sum of unread ids move, and a read moves the newest read
    time), so a kept page of an older stamp is not shown for a newer inbox. Addressed as in
    `_addressed_to`.
    """
    if user.role == Role.enterprise:
        row = session.execute(_ENTERPRISE_STAMP, {"who": user.credit_code or ""}).one()
    else:
        row = session.execute(_USER_STAMP, {"who": user.id}).one()
    return tuple(str(v) if v is not None else None for v in row)


def unread_count_for(session: Session, user: User) -> int:
    """How many notifications of the user's inbox are unread."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(_addressed_to(user), Notification.read_at.is_(None))
        )
        or 0
    )


def inbox(
    session: Session, credit_code: str, *, unread_only: bool = False, limit: int = 200
) -> Sequence[Notification]:
    """The enterprise's notifications, newest first."""
    q = select(Notification).where(Notification.credit_code == credit_code)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return session.scalars(q.order_by(Notification.id.desc()).limit(limit)).all()


def unread_count(session: Session, credit_code: str) -> int:
    """How many notifications the enterprise has not read."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.credit_code == credit_code, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(
    session: Session, note: Notification, *, via: str, user_id: int | None = None
) -> ReadReceipt:
    """Record a read receipt; the first one sets the notification's read time."""
    now = utcnow()
    if note.read_at is None:
        note.read_at = now
    receipt = ReadReceipt(notification_id=note.id, at=now, via=via, user_id=user_id)
    session.add(receipt)
    session.flush()
    return receipt


def mark_unread(session: Session, note: Notification) -> None:
    """Show a notification as unread again (its receipts stay)."""
    note.read_at = None
