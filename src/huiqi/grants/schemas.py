"""Checked input for grants: bank accounts and review decisions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from huiqi.core.errors import Conflict, Forbidden, Invalid

ACCOUNT_RE = re.compile(r"^\d{8,30}$")


class GrantError(Invalid):
    """A grant request was refused; the message says why."""


class GrantForbidden(Forbidden, GrantError):
    """The user may not act on a grant (it belongs to another department's rule)."""


class GrantFourEyes(GrantForbidden):
    """The same person may not both approve grants and build their payment file."""


class LedgerMismatch(Conflict, GrantError):
    """A grant differs from what its ledger proves; nothing may be paid on it (409)."""


@dataclass(frozen=True)
class BankAccountInput:
    """A bank account as entered (checked)."""

    bank_name: str
    account_name: str
    account_no: str

    @classmethod
    def parse(cls, bank_name: str, account_name: str, account_no: str) -> BankAccountInput:
        """Trim and check: names 2–100 characters, account 8–30 digits (spaces allowed)."""
        bank = bank_name.strip()
        holder = account_name.strip()
        number = re.sub(r"[\s-]", "", account_no)
        if not 2 <= len(bank) <= 100:
            raise GrantError("开户银行应为 2–100 个字符 / bank name: 2–100 characters")
        if not 2 <= len(holder) <= 255:
            raise GrantError("户名应为 2–255 个字符 / account name: 2–255 characters")
        if not ACCOUNT_RE.match(number):
            raise GrantError("银行账号应为 8–30 位数字 / account number: 8–30 digits")
        return cls(bank, holder, number)


def mask_account(number: str | None) -> str:
    """An account number with all but the last four digits hidden."""
    if not number:
        return "—"
    return "*" * max(0, len(number) - 4) + number[-4:]
