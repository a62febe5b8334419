"""What every part of financing shares: its errors, the lender's object check, reasons
and display helpers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.core import errors
from huiqi.core.errors import DomainError
from huiqi.core.money import format_fen
from huiqi.enterprise import catalogue as ent_catalogue
from huiqi.enterprise import repository as ent_repo
from huiqi.finance.models import COLLATERAL_LABELS

ELIGIBILITY_ORDER = {"eligible": 0, "unknown": 1, "ineligible": 2}
IDENTITY_FIELDS = ("credit_code", "name")


class FinanceError(DomainError):
    """A finance request was refused; zh and en say why."""

    def __init__(self, zh: str, en: str, problems: Sequence[str] = ()) -> None:
        self.zh = zh
        self.en = en
        super().__init__(zh, en, problems=problems)


class NotFound(FinanceError, errors.NotFound):
    """The object does not exist or is not visible to this user."""

    def __init__(self, what: str = "对象") -> None:
        super().__init__(f"{what}不存在或无权查看", "not found")


class Forbidden(FinanceError, errors.Forbidden):
    """The user's role may not do this."""


class InvalidInput(FinanceError, errors.Invalid):
    """The input breaks a rule of the domain."""


class TransitionError(FinanceError, errors.Conflict):
    """The application's state does not allow that step."""


def lender_owns(user: User, institution: str) -> bool:
    """The finance object check: a bank user acts only for its own institution's objects.

    Administrators oversee lenders but never act as one, so they are not owners here.
    """
    return user.role == Role.bank and can_access(scope_of(user), institution=institution)


def officer_reaches(session: Session, user: User, credit_code: str) -> bool:
    """The finance object check for officers: a city or county officer oversees only needs and
    applications of enterprises registered in its region; provincial officers and
    administrators oversee all."""
    if user.role not in (Role.officer, Role.admin):
        return False
    if not user.region_prefix:
        return True
    region = ent_repo.region_of(session, credit_code) or ""
    return can_access(scope_of(user), region=region)


@dataclass(frozen=True)
class Reason:
    """One reason in Chinese and English; ok is None for a neutral remark."""

    zh: str
    en: str
    ok: bool | None = None


# ------------------------------------------------------------------------------- display helpers


def pct(bp: int | None) -> str:
    """Basis points as a percentage: 345 → '3.45%'."""
    if bp is None:
        return "—"
    return f"{(Decimal(bp) / 100).quantize(Decimal('0.01'))}%"


def wan(fen: int) -> str:
    """Money in 万元 for reasons."""
    return format_fen(fen, "wan")


def collateral_text(items: Iterable[str], lang: int = 0) -> str:
    """Collateral kinds as words (lang 0 = Chinese, 1 = English)."""
    sep = "、" if lang == 0 else ", "
    return sep.join(COLLATERAL_LABELS.get(c, (c, c))[lang] for c in items) or (
        "无" if lang == 0 else "none"
    )


def shareable_fields() -> list[ent_catalogue.Field]:
    """Profile fields an enterprise may share with a lender (identity is always part of an application)."""
    return [f for f in ent_catalogue.catalogue().contract if f.name not in IDENTITY_FIELDS]


def shareable_names() -> set[str]:
    """Names of the registry fields an enterprise may share with a lender."""
    return {f.name for f in shareable_fields()}
