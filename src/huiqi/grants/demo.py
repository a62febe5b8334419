"""Demo data for the grant review: receiving accounts for most enterprises with a grant, one
account that two firms share, and graduate hires some firms reported themselves — so the risk
flags on the review queue differ because the data differ."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from huiqi.grants import service
from huiqi.grants.models import BankAccount, Grant, GrantStatus
from huiqi.grants.schemas import BankAccountInput

BANKS = (
    "甘肃银行兰州分行",
    "兰州银行股份有限公司",
    "中国工商银行甘肃省分行",
    "中国农业银行甘肃省分行",
    "甘肃省农村信用社联合社",
)


def _account_no(credit_code: str) -> str:
    """A made-up 19-digit account number derived from the credit code (stable across runs)."""
    digits = "".join(str(ord(ch) % 10) for ch in credit_code)
    return ("6228" + digits)[:19]


def load_demo(session: Session, *, keep_without_account: str | None, today: date) -> None:
    """Give accounts and self-reported figures to enterprises with pending grants (idempotent).

    Three in five enterprises get an account; every seventeenth of those shares its account
    with the one before it (a flag the reviewer must check); every seventh enterprise reported
    one more graduate hire than the 人社 data show. `keep_without_account` (the demo enterprise) gets no account, so
    its log-in shows how a grant waits for one.
    """
    from huiqi.enterprise.service import SELF_REPORTED, apply_changes

    pending = session.execute(
        select(Grant.credit_code, Grant.enterprise_name, Grant.period, Grant.snapshot)
        .where(Grant.status == GrantStatus.pending)
        .order_by(Grant.credit_code)
    ).all()
    seen: set[str] = set()
    previous_no = ""
    for code, name, period, snapshot in pending:
        if code in seen:
            continue
        seen.add(code)
        i = len(seen)
        if code != keep_without_account and i % 5 in (0, 1, 3):
            number = previous_no if (i % 17 == 0 and previous_no) else _account_no(code)
            if service.bank_account(session, code) is None:
                data = BankAccountInput.parse(BANKS[i % len(BANKS)], name or code, number)
                service.set_bank_account(session, code, data, actor="demo")
            previous_no = number
        hires = (snapshot or {}).get("inputs", {}).get("graduate_hires")
        if i % 7 == 0 and isinstance(hires, int):
            apply_changes(
                session,
                code,
                {"graduate_hires": hires + 1},
                source=SELF_REPORTED,
                as_of=today,
                year=int(period),
                recorded_by="demo",
            )
    if keep_without_account:
        session.execute(delete(BankAccount).where(BankAccount.credit_code == keep_without_account))
    for grant in session.scalars(select(Grant).where(Grant.status == GrantStatus.pending)):
        service.set_flags(grant, service.assess_risk(session, grant, today))
