"""Queries over the policy tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from huiqi.policy.models import DepartmentAlias, Policy, PolicyArticle, PolicyStatus, PolicyTask


def get_policy(session: Session, policy_id: int) -> Policy | None:
    """A policy by id."""
    return session.get(Policy, policy_id)


def by_doc_number(session: Session, doc_number: str) -> Policy | None:
    """The policy with this document number (文号), if any."""
    return session.scalars(
        select(Policy).where(Policy.doc_number == doc_number).order_by(Policy.id)
    ).first()


def by_title(session: Session, title: str, issuer: str | None) -> Policy | None:
    """A policy without a document number, identified by its title and issuer."""
    stmt = select(Policy).where(Policy.title == title, Policy.doc_number.is_(None))
    if issuer:
        stmt = stmt.where(Policy.issuer == issuer)
    return session.scalars(stmt.order_by(Policy.id)).first()


def list_policies(
    session: Session,
    *,
    status: str | None = PolicyStatus.published,
    valid_on: dt.date | None = None,
    limit: int = 200,
) -> list[Policy]:
    """Policies, newest issued first."""
    stmt = select(Policy)
    if status:
        stmt = stmt.where(Policy.status == status)
    policies = list(
        session.scalars(
            stmt.order_by(Policy.issued_on.desc().nulls_last(), Policy.id.desc()).limit(limit)
        )
    )
    if valid_on is not None:
        policies = [p for p in policies if p.is_valid_on(valid_on)]
    return policies


def article_by_number(session: Session, policy_id: int, number: int) -> PolicyArticle | None:
    """The article with this number in a policy."""
    return session.scalars(
        select(PolicyArticle)
        .where(PolicyArticle.policy_id == policy_id, PolicyArticle.number == number)
        .order_by(PolicyArticle.position)
    ).first()


def tasks_of_department(
    session: Session, names: list[str], *, status: str | None = PolicyStatus.published
) -> list[PolicyTask]:
    """Every task row naming one of these department names or codes."""
    stmt = (
        select(PolicyTask)
        .join(PolicyArticle, PolicyArticle.id == PolicyTask.article_id)
        .join(Policy, Policy.id == PolicyArticle.policy_id)
        .where((PolicyTask.department.in_(names)) | (PolicyTask.department_code.in_(names)))
        .options(selectinload(PolicyTask.article).selectinload(PolicyArticle.tasks))
        .order_by(Policy.id, PolicyArticle.position, PolicyTask.position)
    )
    if status:
        stmt = stmt.where(Policy.status == status)
    return list(session.scalars(stmt))


def department_aliases(session: Session) -> dict[str, str]:
    """Officer-mapped aliases: name as written → registry code."""
    return {a.alias: a.department_code for a in session.scalars(select(DepartmentAlias))}


def unknown_department_names(session: Session) -> list[str]:
    """Department names in tasks that the registry does not know yet."""
    return list(
        session.scalars(
            select(PolicyTask.department)
            .where(PolicyTask.known.is_(False))
            .distinct()
            .order_by(PolicyTask.department)
        )
    )
