"""Roles and scopes: one access primitive, each facet refusing what lies outside it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import Assignment, Scope, assign, can_access, load_scope, unassign

GANSU_MIIT = "甘肃省工业和信息化厅"


def test_admin_reaches_everything() -> None:
    admin = Scope(role=Role.admin)
    assert can_access(admin, department="甘肃省财政厅", region="620702", credit_code="X" * 18)


def test_department_facet() -> None:
    officer = Scope(role=Role.officer, department=GANSU_MIIT)
    assert can_access(officer, department=GANSU_MIIT)
    assert not can_access(officer, department="甘肃省财政厅")
    assert not can_access(Scope(role=Role.officer), department=GANSU_MIIT)
    aliases = {"省工信厅": GANSU_MIIT}

    def same(a: str, b: str) -> bool:
        return aliases.get(a, a) == aliases.get(b, b)

    assert can_access(officer, department="省工信厅", same_department=same)


def test_region_prefix_facet() -> None:
    county = Scope(role=Role.officer, department=GANSU_MIIT, region_prefix="620102")
    assert can_access(county, region="620102")
    assert not can_access(county, region="620103")
    province = Scope(role=Role.officer, department=GANSU_MIIT)
    assert can_access(province, region="620702")  # no prefix: the whole province


def test_enterprise_and_lender_facets() -> None:
    ours = Scope(role=Role.enterprise, credit_code="91620102MA72H8K3X0")
    assert can_access(ours, credit_code="91620102MA72H8K3X0")
    assert not can_access(ours, credit_code="91620100MA74ABCD1X")
    assert not can_access(ours, institution="甘肃银行股份有限公司")
    bank = Scope(role=Role.bank, institution="甘肃银行股份有限公司")
    assert can_access(bank, institution="甘肃银行股份有限公司")
    assert not can_access(bank, institution="兰州银行股份有限公司")
    assert not can_access(bank, credit_code="91620102MA72H8K3X0")


def test_facets_combine_and_assignments_come_from_the_database(
    db_session: Session, make_user: Callable[..., object]
) -> None:
    reviewer = make_user("reviewer-a", "officer", department=GANSU_MIIT)
    assert isinstance(reviewer, User)
    item = Assignment("grant", "42")
    assert not can_access(load_scope(db_session, reviewer), assignment=item)
    assign(db_session, reviewer, item)
    assign(db_session, reviewer, item)  # idempotent
    scope = load_scope(db_session, reviewer)
    assert scope.assignments == frozenset({item})
    assert can_access(scope, department=GANSU_MIIT, assignment=item)
    assert not can_access(scope, department="甘肃省财政厅", assignment=item)
    assert not can_access(scope, assignment=Assignment("grant", "43"))
    unassign(db_session, reviewer, item)
    assert not can_access(load_scope(db_session, reviewer), assignment=item)
