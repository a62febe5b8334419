"""Roles and scopes, designed once: what a user may open is its role plus its scope.

The role (`Role`) decides which pages and API calls a user reaches at all (the `Annotated`
dependencies in `huiqi.web.deps`). The scope decides *which objects* it may touch there:

- ``department`` — an officer's department (rules, policy tasks, grant review);
- ``region_prefix`` — a city or county officer sees enterprises whose GB/T 2260 region code
  starts with it; none means the whole province;
- ``credit_code`` — the enterprise an enterprise user acts for;
- ``institution`` — the lender a bank user acts for;
- ``assignments`` — explicit items (``kind``, ``ref``) such as a reviewer's grants or an
  expert's rules, stored in ``user_assignment``.

Each domain writes one object-access check on `can_access` (grants: the rule's department;
finance: the lender's institution; enterprise: the credit code), so a new scope — a county
reviewer, an expert limited to assigned items, a four-eyes approver — is a new facet here and
one call in its domain, not a new pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User, UserAssignment
from huiqi.accounts.service import audit
from huiqi.core.errors import Invalid

# GB/T 2260 codes: 2 digits a province, 4 a city, 6 a county (longer: township codes).
REGION_PREFIX_RE = re.compile(r"^\d{2,12}$")


@dataclass(frozen=True)
class Assignment:
    """One explicitly assigned item: the domain's object kind and its key."""

    kind: str
    ref: str


@dataclass(frozen=True)
class Scope:
    """Whom a user acts for and which objects that opens; admin reaches everything."""

    role: Role
    department: str | None = None
    region_prefix: str | None = None
    credit_code: str | None = None
    institution: str | None = None
    assignments: frozenset[Assignment] = field(default_factory=frozenset)

    @property
    def unrestricted(self) -> bool:
        """Whether the scope reaches every object (administrators)."""
        return self.role == Role.admin


def scope_of(user: User, assignments: Iterable[Assignment] = ()) -> Scope:
    """The scope of a user from its bindings (assignments as given; see `load_scope`)."""
    return Scope(
        role=Role(user.role),
        department=user.department,
        region_prefix=user.region_prefix,
        credit_code=user.credit_code,
        institution=user.institution,
        assignments=frozenset(assignments),
    )


def load_scope(session: Session, user: User) -> Scope:
    """The scope of a user with its assignments read from the database."""
    rows = session.execute(
        select(UserAssignment.kind, UserAssignment.ref).where(UserAssignment.user_id == user.id)
    )
    return scope_of(user, (Assignment(kind, ref) for kind, ref in rows))


def can_access(
    scope: Scope,
    *,
    department: str | None = None,
    region: str | None = None,
    assignment: Assignment | None = None,
    credit_code: str | None = None,
    institution: str | None = None,
    same_department: Callable[[str, str], bool] = str.__eq__,
) -> bool:
    """Whether the scope reaches an object described by the given facets (all must hold).

    ``same_department`` compares department names (grants pass one that resolves aliases such
    as 省人社厅 and its full name through the department registry).
    """
    if scope.unrestricted:
        return True
    if department is not None and (
        scope.department is None or not same_department(scope.department, department)
    ):
        return False
    if region is not None and scope.region_prefix and not region.startswith(scope.region_prefix):
        return False
    if assignment is not None and assignment not in scope.assignments:
        return False
    if credit_code is not None and (
        scope.role != Role.enterprise or scope.credit_code != credit_code
    ):
        return False
    if institution is not None and (scope.role != Role.bank or scope.institution != institution):
        return False
    return True


def set_region_prefix(
    session: Session, user: User, prefix: str | None, *, actor: User | None = None
) -> None:
    """Limit an officer to a region by code prefix, or give back the whole province (None)."""
    if prefix is not None and not REGION_PREFIX_RE.match(prefix):
        raise Invalid(
            f"地区代码前缀须为 2–12 位数字:{prefix!r}",
            f"the region prefix must be 2–12 digits: {prefix!r}",
            field="region_prefix",
        )
    if prefix is not None and user.role != Role.officer:
        raise Invalid(
            "只有部门工作人员可限定地区",
            "only officers are limited to a region",
            field="region_prefix",
        )
    old = user.region_prefix
    user.region_prefix = prefix
    audit(session, "user.region_changed", user=user, actor=actor, old=old, new=prefix)


def assign(session: Session, user: User, item: Assignment, *, actor: User | None = None) -> None:
    """Give a user one item (idempotent; audited when it is new)."""
    exists = session.scalar(
        select(UserAssignment.id).where(
            UserAssignment.user_id == user.id,
            UserAssignment.kind == item.kind,
            UserAssignment.ref == item.ref,
        )
    )
    if exists is None:
        session.add(UserAssignment(user_id=user.id, kind=item.kind, ref=item.ref))
        session.flush()
        audit(session, "user.assigned", user=user, actor=actor, kind=item.kind, ref=item.ref)


def unassign(session: Session, user: User, item: Assignment, *, actor: User | None = None) -> None:
    """Take one item away from a user (audited)."""
    session.execute(
        delete(UserAssignment).where(
            UserAssignment.user_id == user.id,
            UserAssignment.kind == item.kind,
            UserAssignment.ref == item.ref,
        )
    )
    audit(session, "user.unassigned", user=user, actor=actor, kind=item.kind, ref=item.ref)


def parse_assignment(text: str) -> Assignment:
    """An assignment written as KIND:REF (e.g. grant:42, rule:gs351-23-above-scale-upgrade)."""
    kind, sep, ref = text.partition(":")
    if not sep or not kind.strip() or not ref.strip() or len(kind) > 32 or len(ref) > 64:
        raise Invalid(
            f"分配项须写作 类别:编号(如 grant:42):{text!r}",
            f"write an assignment as KIND:REF (e.g. grant:42): {text!r}",
            field="assignment",
        )
    return Assignment(kind.strip(), ref.strip())


def assigned_user_ids(session: Session, item: Assignment) -> list[int]:
    """The users an item is assigned to (e.g. the experts of one application)."""
    return list(
        session.scalars(
            select(UserAssignment.user_id)
            .where(UserAssignment.kind == item.kind, UserAssignment.ref == item.ref)
            .order_by(UserAssignment.user_id)
        )
    )
