"""Who may review which grants: the departments an officer acts for."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Self

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role
from huiqi.enterprise import repository as ent_repo
from huiqi.grants.models import Grant

# The departments (as written on grants) a user may act for; None means every department.
# An officer's are a `Departments`, which also carries the region it may be limited to.
Scope = Collection[str] | None


class Departments(frozenset[str]):
    """The grant departments an officer reviews, and the region (GB/T 2260 code prefix) a city
    or county officer is limited to: it acts only on grants of enterprises in that region."""

    region_prefix: str | None

    def __new__(cls, departments: Iterable[str] = (), region_prefix: str | None = None) -> Self:
        made = super().__new__(cls, departments)
        made.region_prefix = region_prefix
        return made


def region_of(departments: Scope) -> str | None:
    """The region prefix a scope is limited to (None: the whole province)."""
    return getattr(departments, "region_prefix", None)


def department_key(session: Session, name: str | None, registry: Any = None) -> str | None:
    """A department name normalised through the policy department registry (its code), so
    省人社厅 and 甘肃省人力资源和社会保障厅 compare equal; unknown names compare as written."""
    if not name or not name.strip():
        return None
    if registry is None:
        from huiqi.policy.service import registry_for

        registry = registry_for(session)
    resolved = registry.resolve(name)
    return str(resolved.code or resolved.name)


def review_scope(
    session: Session, *, role: Role, department: str | None, region_prefix: str | None = None
) -> Scope:
    """The grant departments a user may review: all for admin, the officer's own department
    (matched through the registry) for an officer, within its region if it has one; none for
    anyone else."""
    reviewer = scopes.Scope(role=role, department=department, region_prefix=region_prefix)
    if reviewer.unrestricted:
        return None
    if reviewer.role != Role.officer:
        return frozenset()
    from huiqi.policy.service import registry_for

    registry = registry_for(session)

    def same(mine: str, theirs: str) -> bool:
        key = department_key(session, mine, registry)
        return key is not None and key == department_key(session, theirs, registry)

    written = session.scalars(select(Grant.department).distinct()).all()
    return Departments(
        (
            d
            for d in written
            # a grant without a department belongs to no officer's review
            if d and scopes.can_access(reviewer, department=d, same_department=same)
        ),
        reviewer.region_prefix,
    )


def in_scope(grant: Grant, departments: Scope) -> bool:
    """Whether a grant's rule belongs to one of the departments (None: any); the region is
    checked by `can_review`."""
    return departments is None or grant.department in departments


def can_review(session: Session, grant: Grant, departments: Scope) -> bool:
    """The grants domain's object check: the grant's rule is of the reviewer's departments and,
    for a city or county officer, its enterprise is registered in the officer's region."""
    if not in_scope(grant, departments):
        return False
    prefix = region_of(departments)
    if not prefix:
        return True
    reviewer = scopes.Scope(role=Role.officer, region_prefix=prefix)
    return scopes.can_access(reviewer, region=ent_repo.region_of(session, grant.credit_code) or "")


def scoped(q: Any, departments: Scope) -> Any:
    """A grant query limited to the departments and the region (None: unlimited)."""
    if departments is None:
        return q
    q = q.where(Grant.department.in_(sorted(departments)))
    prefix = region_of(departments)
    if prefix:
        q = q.where(Grant.credit_code.in_(ent_repo.codes_in_region(prefix)))
    return q
