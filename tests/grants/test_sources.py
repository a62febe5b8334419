"""Self-reported values are visible and bounded: the snapshot marks each input's source, a
self-reported value that changes an amount raises a flag shown to the officer, and a rule's
accept_sources makes such a grant "to confirm", never paid."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.enterprise import service as registry
from huiqi.events import ResultChange
from huiqi.grants import service, snapshots
from huiqi.grants.models import Grant
from huiqi.grants.schemas import BankAccountInput
from huiqi.rules.library import load_base
from huiqi.rules.source import RuleValidationError
from tests.grants.conftest import GRAD_RULE, ON, A

CHANGE = ResultChange(A, GRAD_RULE, "1", "eligible", mode="auto_grant")
# The packaged graduate subsidy pays the recorded employer contributions, which no enterprise
# can report itself; these tests exercise the self-report guard with a variant paying a sourced
# amount per self-reportable graduate count.
PER_PERSON = """
parameters:
  - id: test_subsidy_per_person
    title: {zh: 每人补贴(测试), en: per person (test)}
    unit: money
    values:
      - {from: 2021-01-01, value: 8000元, source: {doc_number: 测试文件, article: 第一条}}
"""


@pytest.fixture(autouse=True)
def per_person_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Grants evaluate the graduate rule as a per-graduate amount (see PER_PERSON)."""
    original = snapshots.rule_of

    def variant(source: str, rule_id: str, version: int) -> Any:
        if rule_id != GRAD_RULE:
            return original(source, rule_id, version)
        text = source.replace(
            "formula: graduate_insurance_paid", "formula: graduate_hires * test_subsidy_per_person"
        )
        return load_base().parse_rule(text + PER_PERSON, f"{rule_id} v{version} per person")

    monkeypatch.setattr(snapshots, "rule_of", variant)


def _grant(session: Session) -> Grant:
    found = session.scalar(select(Grant).where(Grant.credit_code == A))
    assert found is not None
    return found


def _two_official_then_six_self_reported(session: Session, matched: list[ResultChange]) -> Grant:
    registry.apply_changes(
        session, A, {"graduate_hires": 2}, source="人社", as_of=date(2024, 6, 1), year=2023
    )
    service.grants_from_results(session, matched, today=ON)
    grant = _grant(session)
    assert grant.amount_fen == 1_600_000
    assert grant.snapshot["sources"]["graduate_hires"]["kind"] == "registry"
    assert "self_reported" not in {f["code"] for f in grant.risk_flags}
    service.set_bank_account(
        session, A, BankAccountInput.parse("甘肃银行", "兰州甲", "6228480012345678901"), actor="e"
    )
    registry.self_report(
        session, A, {"graduate_hires": "6"}, year=2023, recorded_by="ent-a", today=ON
    )
    service.grants_from_results(session, [CHANGE], today=ON)
    return _grant(session)


def test_self_reported_raise_is_flagged_and_held_to_confirm(
    db_session: Session, matched: list[ResultChange]
) -> None:
    grant = _two_official_then_six_self_reported(db_session, matched)
    source = grant.snapshot["sources"]["graduate_hires"]
    assert source["kind"] == "self_reported" and source["by"] == "ent-a"
    assert grant.snapshot["sources"]["region_code"]["kind"] == "registry"
    flags = {f["code"]: f for f in grant.risk_flags}
    flag = flags["self_reported"]
    assert (flag["official_value"], flag["reported_value"]) == (2, 6)
    assert flag["amount_without_fen"] == 1_600_000 and grant.amount_fen == 4_800_000
    assert "16,000.00 元" in flag["zh"] and "48,000.00 元" in flag["zh"]
    # the graduate subsidy accepts registry, officer and computed values only
    assert flags["source_not_accepted"]["fields"] == ["graduate_hires"]
    report = service.review(db_session, [grant.id], "approve", actor="officer1", ack_risk=True)
    assert report.done == [] and "to confirm" in report.skipped[0][1]
    assert service.disbursable(db_session) == []
    # the flags survive a re-assessment (a new bank account re-assesses pending grants)
    service.set_bank_account(
        db_session,
        A,
        BankAccountInput.parse("甘肃银行", "兰州甲", "6228480012345678902"),
        actor="e",
    )
    assert {"self_reported", "source_not_accepted"} <= {
        f["code"] for f in _grant(db_session).risk_flags
    }
    # 人社 confirms 6 graduates: the value is official now, the grant can be approved
    registry.apply_changes(db_session, A, {"graduate_hires": 6}, source="人社", as_of=ON, year=2023)
    service.grants_from_results(db_session, [CHANGE], today=ON)
    grant = _grant(db_session)
    codes = {f["code"] for f in grant.risk_flags}
    assert not codes & {"self_reported", "source_not_accepted"}
    assert grant.snapshot["sources"]["graduate_hires"]["kind"] == "registry"
    report = service.review(db_session, [grant.id], "approve", actor="officer1", ack_risk=True)
    assert report.done == [grant.id] and grant.amount_fen == 4_800_000


def test_a_rule_that_accepts_self_reports_still_flags_them(
    db_session: Session, matched: list[ResultChange], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = snapshots.rule_of

    def accepting(source: str, rule_id: str, version: int) -> Any:
        rule = original(source, rule_id, version)
        rule.doc = rule.doc.model_copy(update={"accept_sources": None})
        return rule

    monkeypatch.setattr(snapshots, "rule_of", accepting)
    grant = _two_official_then_six_self_reported(db_session, matched)
    codes = {f["code"] for f in grant.risk_flags}
    assert "self_reported" in codes and "source_not_accepted" not in codes
    skipped = service.review(db_session, [grant.id], "approve", actor="officer1")
    assert skipped.skipped == [(grant.id, "risk flags not acknowledged")]
    done = service.review(db_session, [grant.id], "approve", actor="officer1", ack_risk=True)
    assert done.done == [grant.id]


def test_a_self_report_that_changes_nothing_raises_nothing(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    # A has 3 graduates from the feed; reporting employees 41 instead of 40 moves no amount
    registry.self_report(db_session, A, {"employees": "41"}, year=2023, recorded_by="e", today=ON)
    service.grants_from_results(db_session, [CHANGE], today=ON)
    grant = _grant(db_session)
    assert grant.snapshot["sources"]["employees"]["kind"] == "self_reported"
    assert "self_reported" not in {f["code"] for f in grant.risk_flags}
    # but the rule does not take self-reported inputs: to confirm
    assert "source_not_accepted" in {f["code"] for f in grant.risk_flags}


def test_officer_page_shows_sources_and_the_flag(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    grant = _two_official_then_six_self_reported(db_session, matched)
    db_session.commit()
    login_as("officer", department="甘肃省人力资源和社会保障厅")
    page = BeautifulSoup(client.get(f"/grants/{grant.id}").text, "lxml")
    row = page.select_one('#snapshot tr[data-field="graduate_hires"]')
    assert row is not None and row["data-source-kind"] == "self_reported"
    assert "企业自报" in row.get_text() and "ent-a" in row.get_text()
    assert page.select_one('#grant-facts [data-flag="self_reported"]') is not None
    assert page.select_one('#grant-facts [data-flag="source_not_accepted"]') is not None
    queue = BeautifulSoup(client.get("/grants").text, "lxml")
    assert queue.select_one(f'#queue tr[data-id="{grant.id}"] [data-flag="self_reported"]')


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("accept_sources: [registry, rumour]", "accept_sources"),
        ("accept_sources: []", "at least one"),
        ("accept_sources: [registry, registry]", "listed twice"),
    ],
)
def test_accept_sources_is_validated(line: str, error: str) -> None:
    text = (
        load_base().root / "rules" / f"{GRAD_RULE}.yaml"  # type: ignore[operator]
    ).read_text(encoding="utf-8")
    bad = text.replace("accept_sources: [registry, officer, computed]", line)
    assert bad != text
    with pytest.raises(RuleValidationError, match=error):
        load_base().parse_rule(bad, "bad.yaml")


def test_accept_sources_is_for_auto_grant_rules_only() -> None:
    text = (
        load_base().root / "rules" / f"{GRAD_RULE}.yaml"  # type: ignore[operator]
    ).read_text(encoding="utf-8")
    bad = text.replace("mode: auto_grant", "mode: push")
    with pytest.raises(RuleValidationError, match="auto_grant rules only"):
        load_base().parse_rule(bad, "bad.yaml")
