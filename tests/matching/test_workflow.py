"""Rules belong to departments: who may change, move, approve and withdraw a rule, and what the
grant ledger records when a rule version changes money."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import AuditEvent, User
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.grants.models import Grant, LedgerEntry
from huiqi.matching import service, workflow
from huiqi.rules.compiler import Rule
from huiqi.rules.library import load_base, load_library

from ..conftest import csrf_from

ON = date(2024, 6, 30)
GRAD = "gs351-22-graduate-social-insurance"
A = make_credit_code("9", "1", "620102", "MA7WFL01")
RST = "甘肃省人力资源和社会保障厅"  # 省人社厅, the graduate rule's department
GXT = "甘肃省工业和信息化厅"  # 省工信厅


@pytest.fixture
def world(db_session: Session) -> Session:
    """One small enterprise with 3 qualifying graduates, the library published, a pending grant."""
    registry.apply_changes(
        db_session,
        A,
        {"name": "兰州流程有限公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    registry.apply_changes(
        db_session,
        A,
        {
            "employees": 40,
            "revenue": 2500 * 1_000_000,
            "total_assets": 1500 * 1_000_000,
            "graduate_hires": 3,
            "graduate_insurance_paid": 3_645_000,
        },
        source="人社",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    service.load_rules(db_session)
    service.run_matching(db_session, ON)
    return db_session


def grant(session: Session) -> Grant:
    found = session.scalar(select(Grant).where(Grant.credit_code == A, Grant.rule_id == GRAD))
    assert found is not None
    return found


def ten_times(department: str = "省人社厅") -> Rule:
    """The attack of the issue: the graduate subsidy ×10 (and the department changed)."""
    text = load_library().rules[GRAD].source
    text = text.replace("formula: graduate_insurance_paid", "formula: graduate_insurance_paid * 10")
    text = text.replace("department: 省人社厅", f"department: {department}")
    return load_base().parse_rule(text, "attack.yaml")


def officer(make_user: Callable[..., object], name: str, department: str) -> User:
    user = make_user(name, "officer", department=department)
    assert isinstance(user, User)
    return user


def test_an_officer_of_another_department_cannot_change_the_rule(
    world: Session, make_user: Callable[..., object]
) -> None:
    before = grant(world).amount_fen
    intruder = officer(make_user, "gxt-1", GXT)
    for attack in (ten_times(), ten_times("省工信厅")):  # amount ×10, and moved to their own
        with pytest.raises(workflow.RuleAccessError):
            workflow.submit(world, attack, intruder)
    assert service.latest_version(world, GRAD).version == 1  # type: ignore[union-attr]
    assert grant(world).amount_fen == before == 3_645_000
    with pytest.raises(workflow.RuleAccessError):
        workflow.withdraw(world, GRAD, intruder, "不需要了")
    assert workflow.published_version(world, GRAD) is not None


def test_a_raise_waits_for_a_second_officer_and_the_ledger_names_who_changed_it(
    world: Session, make_user: Callable[..., object]
) -> None:
    first = officer(make_user, "rst-1", RST)
    second = officer(make_user, "rst-2", RST)
    outcome = workflow.submit(world, ten_times(), first, note="调整")
    assert not outcome.published and outcome.version.status == "review"
    assert grant(world).amount_fen == 3_645_000  # nothing reaches a grant before the review
    with pytest.raises(workflow.RuleAccessError, match="second person"):
        workflow.approve(world, outcome.version.id, first)
    assert outcome.version.status == "review"
    workflow.approve(world, outcome.version.id, second, "已核对", on=ON)
    assert outcome.version.status == "published" and outcome.version.reviewed_by == "rst-2"
    assert outcome.version.reviewed_at is not None and outcome.version.submitted_by == "rst-1"
    g = grant(world)
    assert g.amount_fen == 36_450_000 and g.rule_version == 2
    entry = world.scalars(
        select(LedgerEntry).where(LedgerEntry.grant_id == g.id).order_by(LedgerEntry.id.desc())
    ).first()
    assert entry is not None and entry.event == "recomputed" and entry.actor == "rst-2"
    assert entry.detail["new"]["rule_version"] == 2


def test_a_move_needs_the_receiving_department(
    world: Session, make_user: Callable[..., object]
) -> None:
    owner = officer(make_user, "rst-1", RST)
    colleague = officer(make_user, "rst-2", RST)
    receiver = officer(make_user, "gxt-1", GXT)
    moved = workflow.submit(world, ten_times("省工信厅"), owner).version
    assert moved.status == "review" and moved.moved_from == "省人社厅"
    with pytest.raises(workflow.RuleAccessError):
        workflow.approve(world, moved.id, colleague)  # not the receiving department
    workflow.approve(world, moved.id, receiver, on=ON)
    assert workflow.published_version(world, GRAD).department == "省工信厅"  # type: ignore[union-attr]


def test_an_administrator_is_recorded_as_such(
    world: Session, make_user: Callable[..., object]
) -> None:
    admin = make_user("admin-1", "admin")
    assert isinstance(admin, User)
    version = workflow.withdraw(world, GRAD, admin, "政策到期", on=ON)
    assert version.status == "withdrawn" and version.withdrawn_by == "admin-1"
    event = world.scalars(select(AuditEvent).where(AuditEvent.event == "rule.withdrawn")).one()
    assert event.detail["as_admin"] is True and event.detail["rule_id"] == GRAD
    # its pending grant can no longer be paid as if nothing happened
    assert "no_longer_eligible" in {f["code"] for f in grant(world).risk_flags}


def test_other_departments_get_403_in_the_editor_and_the_review_page_shows_the_sources(
    client: TestClient,
    world: Session,
    login_as: Callable[..., object],
    make_user: Callable[..., object],
) -> None:
    login_as("officer", department=GXT)
    token = csrf_from(client, "/rules/editor")
    attack = ten_times().source
    refused = client.post(
        "/rules/editor", data={"text": attack, "csrf_token": token, "action": "publish"}
    )
    assert refused.status_code == 403
    assert "省人社厅" in BeautifulSoup(refused.text, "html.parser").select_one("#errors").text
    assert service.latest_version(world, GRAD).version == 1  # type: ignore[union-attr]
    withdraw = client.post(f"/rules/{GRAD}/withdraw", data={"reason": "x", "csrf_token": token})
    assert withdraw.status_code == 403

    submitter = officer(make_user, "rst-9", RST)
    waiting = workflow.submit(world, ten_times(), submitter).version
    world.commit()
    login_as("officer", department=RST)
    page = client.get(f"/rules/versions/{waiting.id}")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    cited = soup.select_one('[data-citation="甘工信发〔2020〕351号 (二十二)"]')
    assert cited is not None and "社会保险补贴" in cited.select_one(".article-text").text
    assert soup.select_one('[data-citation="财社〔2017〕164号 第七条"] .unverified') is not None
    assert "假设" in soup.select_one("#assumptions").text
    assert soup.select_one("#decide") is not None  # a second officer of the department decides
    listing = BeautifulSoup(client.get("/rules/review").text, "html.parser")
    assert listing.select_one(f'[data-version="{waiting.id}"]') is not None
    token = csrf_from(client, f"/rules/versions/{waiting.id}")
    decided = client.post(
        f"/rules/versions/{waiting.id}/decide",
        data={"decision": "approve", "note": "已核对", "csrf_token": token},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    after = BeautifulSoup(client.get(f"/rules/versions/{waiting.id}").text, "html.parser")
    assert after.select_one("#status")["data-status"] == "published"
    assert "rst-9" not in after.select_one("#reviewed").text


def test_review_page_lists_parameters_with_their_kind_of_source(
    client: TestClient, world: Session, login_as: Callable[..., object]
) -> None:
    login_as("officer", department=GXT)
    version = workflow.published_version(world, "gs351-08-small-scale-vat-exemption")
    assert version is not None
    soup = BeautifulSoup(client.get(f"/rules/versions/{version.id}").text, "html.parser")
    kinds = {tr["data-param"]: tr["data-kind"] for tr in soup.select("#parameters tbody tr")}
    assert kinds["vat_small_scale_exempt_annual_revenue"] == "estimate"
    assert kinds["vat_small_scale_levy_rate"] == "legal"
    row = soup.select_one('tr[data-param="vat_small_scale_exempt_annual_revenue"]')
    assert row is not None and "估算" in row.text


def changed(*edits: tuple[str, str]) -> Rule:
    """The graduate rule with text replacements applied (each must apply)."""
    text = load_library().rules[GRAD].source
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return load_base().parse_rule(text, "change.yaml")


def test_a_lowering_publishes_at_once_and_the_ledger_names_the_officer(
    world: Session, make_user: Callable[..., object]
) -> None:
    first = officer(make_user, "rst-1", RST)
    halved = changed(("formula: graduate_insurance_paid", "formula: graduate_insurance_paid / 2"))
    outcome = workflow.submit(world, halved, first, on=ON)
    assert outcome.published and outcome.version.status == "published"
    assert outcome.version.reviewed_by is None and outcome.version.published_by == "rst-1"
    g = grant(world)
    assert g.amount_fen == 1_822_500 and g.rule_version == 2
    entry = world.scalars(
        select(LedgerEntry).where(LedgerEntry.grant_id == g.id).order_by(LedgerEntry.id.desc())
    ).first()
    assert entry is not None and entry.event == "recomputed" and entry.actor == "rst-1"
    submitted = world.scalars(select(AuditEvent).where(AuditEvent.event == "rule.submitted")).one()
    assert submitted.detail["review_reason"] is None
    # raising it back is a raise again: it waits for the second person
    back = workflow.submit(world, load_library().rules[GRAD], first, on=ON)
    assert not back.published and grant(world).amount_fen == 1_822_500


def test_unchanged_amounts_and_narrower_conditions_publish_at_once(
    world: Session, make_user: Callable[..., object]
) -> None:
    first = officer(make_user, "rst-1", RST)
    worded = changed(("最长不超过1年", "最长不超过一年"))
    assert workflow.submit(world, worded, first, on=ON).published
    narrower = changed(
        ("最长不超过1年", "最长不超过一年"),
        ('op: ">=", value: 1, id: hired_graduates', 'op: ">=", value: 2, id: hired_graduates'),
    )
    assert workflow.submit(world, narrower, first, on=ON).published
    # neither version changes the result or the amount: the pending grant stays as computed
    assert grant(world).amount_fen == 3_645_000 and grant(world).rule_version == 1
    assert workflow.published_version(world, GRAD).version == 3  # type: ignore[union-attr]
    assert workflow.published_version(world, GRAD).department == "省人社厅"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        (
            (("value: [small, micro]", "value: [small, micro, medium]"),),
            "more_qualify",
        ),
        (
            (("formula: graduate_insurance_paid", "formula: graduate_insurance_paid * 11 / 10"),),
            "amount_raised",
        ),
        ((("valid_from: 2021-01-01", "valid_from: 2019-01-01"),), "window_longer"),
        (
            (
                (
                    "accept_sources: [registry, officer, computed]",
                    "accept_sources: [registry, officer, computed, self_reported]",
                ),
            ),
            "more_sources",
        ),
    ],
)
def test_a_change_that_can_pay_more_waits_for_a_second_officer(
    world: Session,
    make_user: Callable[..., object],
    edits: tuple[tuple[str, str], ...],
    reason: str,
) -> None:
    medium = make_credit_code("9", "1", "620102", "MA7WFL02")
    registry.apply_changes(
        world,
        medium,
        {"name": "兰州中型有限公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    registry.apply_changes(
        world,
        medium,
        {
            "employees": 400,
            "revenue": 30_000 * 1_000_000,
            "total_assets": 15_000 * 1_000_000,
            "graduate_hires": 2,
            "graduate_insurance_paid": 2_430_000,
        },
        source="人社",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    first = officer(make_user, "rst-1", RST)
    outcome = workflow.submit(world, changed(*edits), first, on=ON)
    assert not outcome.published and outcome.version.status == "review"
    assert (
        workflow.raise_reason(world, changed(*edits), workflow.published_version(world, GRAD), ON)
        == reason
    )
    assert grant(world).amount_fen == 3_645_000 and grant(world).rule_version == 1
