"""Who may review which grants: the departments an officer acts for."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role
from huiqi.grants.models import Grant

# The departments (as written on grants) a user may act for; None means every department.
Scope = Collection[str] | None


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


def review_scope(session: Session, *, role: str, department: str | None) -> Scope:
    """The grant departments a user may review: all for admin, the officer's own department
    (matched through the registry) for an officer, none for anyone else."""
    reviewer = scopes.Scope(role=Role(role), department=department)
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
    return frozenset(
        d
        for d in written
        # a grant without a department belongs to no officer's review
        if d and scopes.can_access(reviewer, department=d, same_department=same)
    )


def in_scope(grant: Grant, departments: Scope) -> bool:
    """Whether a grant's rule belongs to one of the departments (None: any)."""
    return departments is None or grant.department in departments


def scoped(q: Any, departments: Scope) -> Any:
    """A grant query limited to the departments (None: unlimited)."""
    return q if departments is None else q.where(Grant.department.in_(sorted(departments)))
