"""Demo data for `make run`: accounts for each role, then each domain's sample data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User


@dataclass(frozen=True)
class DemoAccount:
    """A demo log-in printed by `make run`."""

    username: str
    password: str
    role: str
    display_name: str
    department: str | None = None
    credit_code: str | None = None
    institution: str | None = None


# A valid code (GB 32100-2015 check character) used until the demo population provides one.
FALLBACK_CREDIT_CODE = "91620102MA72H8K3X0"

DEMO_ACCOUNTS = (
    DemoAccount("admin", "huiqi-admin-2020", "admin", "系统管理员"),
    DemoAccount(
        "officer",
        "huiqi-officer-2020",
        "officer",
        "省工信厅 张科长",
        department="甘肃省工业和信息化厅",
    ),
    DemoAccount(
        "enterprise",
        "huiqi-enterprise-2020",
        "enterprise",
        "企业经办人 李会计",
        credit_code=FALLBACK_CREDIT_CODE,
    ),
    DemoAccount(
        "bank", "huiqi-bank-2020", "bank", "甘肃银行 王经理", institution="甘肃银行股份有限公司"
    ),
)


def load_accounts(session: Session, enterprise_credit_code: str | None = None) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet (idempotent) and return them all."""
    for acct in DEMO_ACCOUNTS:
        existing = session.scalar(select(User).where(User.username == acct.username))
        credit_code = enterprise_credit_code or acct.credit_code
        if existing is None:
            accounts.create_user(
                session,
                username=acct.username,
                password=acct.password,
                role=acct.role,
                display_name=acct.display_name,
                department=acct.department,
                credit_code=credit_code if acct.role == "enterprise" else None,
                institution=acct.institution,
            )
        elif acct.role == "enterprise" and credit_code and existing.credit_code != credit_code:
            existing.credit_code = credit_code
    return list(DEMO_ACCOUNTS)


def load_all(session: Session) -> list[DemoAccount]:
    """Load every domain's demo data, then the accounts bound to it."""
    from huiqi.policy import service as policy

    policy.load_demo(session)
    return load_accounts(session)
