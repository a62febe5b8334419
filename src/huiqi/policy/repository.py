"""Queries over the policy tables."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, func, or_, select
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


def _policy_filters(status: str | None, valid_on: dt.date | None) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if status:
        filters.append(Policy.status == status)
    if valid_on is not None:
        # Open validity bounds count as in force, as in Policy.is_valid_on.
        filters.append(or_(Policy.valid_from.is_(None), Policy.valid_from <= valid_on))
        filters.append(or_(Policy.valid_to.is_(None), Policy.valid_to >= valid_on))
    return filters


def list_policies(
    session: Session,
    *,
    status: str | None = PolicyStatus.published,
    valid_on: dt.date | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Policy]:
    """Policies, newest issued first (one page of them: ``limit`` rows after ``offset``)."""
    stmt = (
        select(Policy)
        .where(*_policy_filters(status, valid_on))
        .order_by(Policy.issued_on.desc().nulls_last(), Policy.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(stmt))


def count_policies(
    session: Session,
    *,
    status: str | None = PolicyStatus.published,
    valid_on: dt.date | None = None,
) -> int:
    """How many policies :func:`list_policies` would page through."""
    stmt = select(func.count()).select_from(Policy).where(*_policy_filters(status, valid_on))
    return int(session.scalar(stmt) or 0)


def article_by_number(session: Session, policy_id: int, number: int) -> PolicyArticle | None:
    """The article with this number in a policy."""
    return session.scalars(
        select(PolicyArticle)
        .where(PolicyArticle.policy_id == policy_id, PolicyArticle.number == number)
        .order_by(PolicyArticle.position)
    ).first()


def department_condition(code: str | None, name: str) -> ColumnElement[bool]:
    """Tasks of a registry department (by ``code``), else tasks naming ``name`` the registry lacks.

    A name the registry knows but a task left unknown came from another province's document
    (its own 省财政厅), so a registry department never collects those by name.
    """
    if code:
        return PolicyTask.department_code == code
    return and_(PolicyTask.department == name, PolicyTask.known.is_(False))


def tasks_of_department(
    session: Session,
    code: str | None,
    name: str,
    *,
    status: str | None = PolicyStatus.published,
) -> list[PolicyTask]:
    """Every task row of a department (see :func:`department_condition`)."""
    stmt = (
        select(PolicyTask)
        .join(PolicyArticle, PolicyArticle.id == PolicyTask.article_id)
        .join(Policy, Policy.id == PolicyArticle.policy_id)
        .where(department_condition(code, name))
        .options(selectinload(PolicyTask.article).selectinload(PolicyArticle.tasks))
        .order_by(Policy.id, PolicyArticle.position, PolicyTask.position)
    )
    if status:
        stmt = stmt.where(Policy.status == status)
    return list(session.scalars(stmt))


def department_aliases(session: Session) -> dict[str, str]:
    """Officer-mapped aliases: name as written → registry code."""
    return {a.alias: a.department_code for a in session.scalars(select(DepartmentAlias))}


def unknown_department_names(session: Session, policy_id: int | None = None) -> list[str]:
    """Department names in tasks (of one policy, or of all) that the registry does not know yet."""
    stmt = select(PolicyTask.department).where(PolicyTask.known.is_(False))
    if policy_id is not None:
        stmt = stmt.join(PolicyArticle, PolicyArticle.id == PolicyTask.article_id).where(
            PolicyArticle.policy_id == policy_id
        )
    return list(session.scalars(stmt.distinct().order_by(PolicyTask.department)))
