"""Enterprises' financing needs, posted once per idempotency key."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.clock import today
from huiqi.enterprise import repository as ent_repo
from huiqi.finance.base import (
    Forbidden,
    InvalidInput,
    NotFound,
    officer_reaches,
)
from huiqi.finance.models import (
    Collateral,
    Need,
)
from huiqi.finance.schemas import NeedIn


def enterprise_values(session: Session, credit_code: str) -> dict[str, Any] | None:
    """The enterprise's current field-contract row, or None when it is not in the registry."""
    row = ent_repo.current_row(session, credit_code)
    return None if row is None else dict(row._mapping)


def post_need(
    session: Session,
    user: User,
    data: NeedIn,
    *,
    on: date | None = None,
    idempotency_key: str | None = None,
) -> Need:
    """Post an enterprise's financing need; region, industry and size are taken from the registry.

    With an idempotency key, a repeated submission (a double click, a client's retry, twenty
    parallel requests) returns the need the first one created instead of posting another.
    """
    if user.role != Role.enterprise or not user.credit_code:
        raise Forbidden(
            "只有企业用户可以发布融资需求", "only enterprise users post financing needs"
        )
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if not key or len(key) > 64 or not key.isascii() or not key.isprintable():
            raise InvalidInput(
                "幂等键须为 1–64 个可打印 ASCII 字符",
                "the idempotency key must be 1–64 printable ASCII characters",
            )
        existing = _need_by_key(session, user.credit_code, key)
        if existing is not None:
            return existing
        try:
            with session.begin_nested():
                return _insert_need(session, user, data, on, key)
        except IntegrityError:
            # A parallel submission with the same key won the insert; answer with its need.
            found = _need_by_key(session, user.credit_code, key)
            if found is None:
                raise
            return found
    return _insert_need(session, user, data, on, None)


def _need_by_key(session: Session, credit_code: str, key: str) -> Need | None:
    return session.scalar(
        select(Need).where(Need.credit_code == credit_code, Need.idempotency_key == key)
    )


def _insert_need(
    session: Session, user: User, data: NeedIn, on: date | None, key: str | None
) -> Need:
    """Check and insert one need (flushed, not committed)."""
    assert user.credit_code is not None
    on = on or today()
    if data.deadline is not None and data.deadline < on:
        raise InvalidInput(
            f"期望放款日期 {data.deadline} 早于今天 {on}",
            f"the deadline {data.deadline} is before today {on}",
        )
    values = enterprise_values(session, user.credit_code) or {}
    need = Need(
        credit_code=user.credit_code,
        amount_fen=data.amount_fen,
        term_months=data.term_months,
        purpose=data.purpose.strip(),
        collateral=[c.value for c in dict.fromkeys(data.collateral)] or [Collateral.none.value],
        deadline=data.deadline,
        first_loan=data.first_loan,
        source_rule_id=data.source_rule_id,
        region_code=values.get("region_code"),
        industry_code=values.get("industry_code"),
        size_class=values.get("size_class"),
        status="open",
        idempotency_key=key,
        created_by=user.id,
    )
    session.add(need)
    session.flush()
    return need


def get_need(session: Session, user: User, need_id: int) -> Need:
    """A need of the user's own enterprise, or one an officer oversees (`officer_reaches`)."""
    need = session.get(Need, need_id)
    if need is None:
        raise NotFound("融资需求")
    if user.role == Role.enterprise and need.credit_code == user.credit_code:
        return need
    if officer_reaches(session, user, need.credit_code):
        return need
    raise NotFound("融资需求")


def needs_of(session: Session, credit_code: str) -> list[Need]:
    """An enterprise's needs, newest first."""
    return list(
        session.scalars(
            select(Need).where(Need.credit_code == credit_code).order_by(Need.id.desc())
        )
    )
