"""Enterprises' receiving bank accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.grants.models import BankAccount, Grant, GrantStatus
from huiqi.grants.risk import assess_risk, set_flags
from huiqi.grants.schemas import BankAccountInput


def bank_account(session: Session, credit_code: str) -> BankAccount | None:
    """The enterprise's receiving account."""
    return session.scalar(select(BankAccount).where(BankAccount.credit_code == credit_code))


def set_bank_account(
    session: Session, credit_code: str, data: BankAccountInput, *, actor: str | None
) -> BankAccount:
    """Record the enterprise's receiving account; pending grants are re-assessed."""
    account = bank_account(session, credit_code)
    if account is None:
        account = BankAccount(credit_code=credit_code)
        session.add(account)
    old_number = account.account_no
    account.bank_name, account.account_name = data.bank_name, data.account_name
    account.account_no = data.account_no
    account.recorded_at, account.recorded_by = utcnow(), actor
    session.flush()
    # enterprises that share the old or the new number are re-assessed too
    sharing = set(
        session.scalars(
            select(BankAccount.credit_code).where(
                BankAccount.account_no.in_([n for n in (old_number, data.account_no) if n])
            )
        )
    ) | {credit_code}
    for grant in session.scalars(
        select(Grant).where(Grant.credit_code.in_(sharing), Grant.status == GrantStatus.pending)
    ):
        set_flags(grant, assess_risk(session, grant, clock.today()))
    return account
