"""Consent to share registry fields with a lender, and what the lender may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.enterprise import catalogue as ent_catalogue
from huiqi.finance.base import (
    IDENTITY_FIELDS,
    shareable_fields,
)
from huiqi.finance.models import (
    Application,
    AppStatus,
    Consent,
    Disclosure,
)
from huiqi.finance.needs import enterprise_values


def active_consents(session: Session, app: Application) -> list[Consent]:
    """Consents of an application not revoked."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.application_id == app.id, Consent.revoked_at.is_(None))
            .order_by(Consent.id)
        )
    )


@dataclass(frozen=True)
class SharedField:
    """One profile field as the lender may see it."""

    name: str
    zh: str
    en: str
    shared: bool
    value: Any
    shown: str


CLOSED_TO_LENDER = frozenset({AppStatus.declined, AppStatus.withdrawn})


def shared_view(
    session: Session, user: User, app: Application, *, record: bool = True
) -> list[SharedField]:
    """The fields the lender may see now; only consented, unrevoked fields carry a value.

    A lender's view is recorded as a disclosure. The enterprise sees which fields it shares.
    """
    cat = ent_catalogue.catalogue()
    values = enterprise_values(session, app.credit_code) or {}
    consented = {c.field for c in active_consents(session, app)}
    if user.role == Role.bank and app.status in CLOSED_TO_LENDER:
        # Declined or withdrawn: the lender sees no shared value, whatever consents remain.
        consented = set()
    out: list[SharedField] = []
    for name in IDENTITY_FIELDS:
        f = cat[name]
        value = values.get(name) if name != "credit_code" else app.credit_code
        out.append(SharedField(name, f.zh, f.en, True, value, ent_catalogue.display(f, value)))
    for f in shareable_fields():
        shared = f.name in consented
        value = values.get(f.name) if shared else None
        out.append(
            SharedField(
                f.name, f.zh, f.en, shared, value, ent_catalogue.display(f, value) if shared else ""
            )
        )
    if record and user.role == Role.bank:
        session.add(Disclosure(application_id=app.id, user_id=user.id, fields=sorted(consented)))
    return out
