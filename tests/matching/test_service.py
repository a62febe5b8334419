"""Matching service on a migrated database: publishing rules, full runs, targeted re-matching, staleness, queries."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.codes import make_credit_code
from huiqi.enterprise import service as registry
from huiqi.enterprise.models import enterprise_current
from huiqi.matching import service
from huiqi.matching.models import MatchState, RuleVersion
from huiqi.rules.library import load_library

ON = date(2024, 6, 30)
A = make_credit_code("9", "1", "620102", "MA7TJH01")  # small Lanzhou manufacturer hiring graduates
B = make_credit_code("9", "1", "620503", "MA7TJH02")  # medium, no figures for assets
C = make_credit_code("9", "1", "110105", "MA7TJH03")  # outside Gansu, size unknown


def add(session: Session, code: str, profile: dict, yearly: dict) -> None:
    registry.apply_changes(session, code, profile, source="市场监管", as_of=date(2024, 1, 1))
    registry.apply_changes(session, code, yearly, source="税务", as_of=date(2024, 5, 31), year=2023)


@pytest.fixture
def populated(db_session: Session) -> Session:
    add(
        db_session,
        A,
        {
            "name": "兰州甲公司",
            "region_code": "620102",
            "industry_code": "3311",
            "founded_on": date(2015, 3, 1),
            "tax_credit_rating": "A",
        },
        {
            "employees": 40,
            "revenue": 2500 * 1_000_000,
            "total_assets": 1800 * 1_000_000,
            "taxable_income": 120 * 1_000_000,
            "rd_expense": 60 * 1_000_000,
        },
    )
    registry.apply_changes(
        db_session,
        A,
        {"graduate_hires": 3, "graduate_insurance_paid": 2_400_000},
        source="人社",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    registry.apply_changes(  # below the above-scale line the year before: newly above scale
        db_session,
        A,
        {"revenue": 1800 * 1_000_000},
        source="税务",
        as_of=date(2023, 5, 31),
        year=2022,
    )
    add(
        db_session,
        B,
        {
            "name": "天水乙公司",
            "region_code": "620503",
            "industry_code": "5131",
            "founded_on": date(2023, 3, 1),
        },
        {"employees": 150, "revenue": 12000 * 1_000_000},
    )
    add(db_session, C, {"name": "北京丙公司", "region_code": "110105"}, {"employees": 8})
    return db_session


def results(session: Session) -> dict[tuple[str, str], service.StoredResult]:
    # the eligible and unknown results, decoded from the packed rows as stored
    return {(m.credit_code, m.rule_id): m for m in service.stored_results(session)}


def test_loading_rules_is_idempotent_and_versions_changes(db_session: Session) -> None:
    lib = load_library()
    first = service.load_rules(db_session, lib)
    assert len(first.added) == len(lib.rules) >= 8
    again = service.load_rules(db_session, lib)
    assert again.added == [] and again.updated == [] and len(again.unchanged) == len(lib.rules)
    rule = lib.rules["gs351-10-procurement-small-micro"]
    changed = lib.parse_rule(
        rule.source.replace("value: [small, micro]", "value: [medium, small, micro]"), "x"
    )
    version, did = service.publish_rule(db_session, changed)
    assert did and version.version == 2
    statuses = db_session.scalars(
        select(RuleVersion.status)
        .where(RuleVersion.rule_id == rule.id)
        .order_by(RuleVersion.version)
    ).all()
    assert statuses == ["retired", "published"]


def test_full_run_stores_eligible_and_unknown_pairs_and_engines_agree(populated: Session) -> None:
    service.load_rules(populated)
    changed = service.run_matching(populated, ON, engine="batch")
    stored = results(populated)
    # only eligible and unknown pairs are stored; a pair without a row is ineligible
    assert {m.result for m in stored.values()} == {"eligible", "unknown"}
    assert len(stored) == len(changed) and all(c.previous is None for c in changed)
    for _version, rule in service.published_rules(populated):
        for code in (A, B, C):
            exp = service.explain(populated, code, rule.id, ON)
            row = stored.get((code, rule.id))
            assert (row.result if row else "ineligible") == exp.result, (code, rule.id)
            if row is not None and row.result == "unknown":
                assert row.missing.split(",") == exp.missing
    grad = stored[(A, "gs351-22-graduate-social-insurance")]
    assert grad.result == "eligible" and grad.amount_fen == 2_400_000
    assert (B, "gs351-22-graduate-social-insurance") not in stored
    unknown = stored[(B, "gs351-08-small-profit-income-tax")]
    assert unknown.result == "unknown" and "total_assets" in unknown.missing.split(",")
    snapshot = {
        k: (m.result, m.conditions, m.missing, m.amount_fen, m.rule_hash) for k, m in stored.items()
    }
    # the SQL engine computes the same results and condition codes: nothing changes
    assert service.run_matching(populated, ON, engine="sql") == []
    assert {
        k: (m.result, m.conditions, m.missing, m.amount_fen, m.rule_hash)
        for k, m in results(populated).items()
    } == snapshot
    # changed rows carry what notify needs
    row = next(
        c
        for c in changed
        if c.credit_code == A and c.rule_id == "gs351-22-graduate-social-insurance"
    )
    assert (
        row.mode == "auto_grant"
        and row.legal_basis == "甘工信发〔2020〕351号 (二十二)"
        and row.amount_fen == 2_400_000
    )


def test_enterprise_change_rematches_only_that_enterprise(populated: Session) -> None:
    service.load_rules(populated)
    service.run_matching(populated, ON)
    before = {k: m.updated_at for k, m in results(populated).items()}
    registry.apply_changes(
        populated,
        B,
        {"total_assets": 900 * 1_000_000},
        source="税务",
        as_of=date(2024, 6, 1),
        year=2023,
    )
    after = results(populated)
    touched = {k for k, m in after.items() if m.updated_at != before.get(k)}
    assert touched and {code for code, _ in touched} == {B}
    assert all(after[k].evaluated_on == clock.today() for k in touched)


def test_stale_rows_are_detected_and_refreshed(populated: Session) -> None:
    service.load_rules(populated)
    service.run_matching(populated, ON)
    assert service.stale_results(populated, ON) == []
    # a write that bypassed the registry hook
    populated.execute(
        update(enterprise_current)
        .where(enterprise_current.c.credit_code == C)
        .values(size_class="micro")
    )
    stale = service.stale_results(populated, ON)
    assert (
        stale
        and {s.credit_code for s in stale} == {C}
        and all(s.why == "enterprise data changed" for s in stale)
    )
    changed = service.refresh_stale(populated, ON)
    assert {c.credit_code for c in changed} <= {C}
    assert service.stale_results(populated, ON) == []
    # on a later date, exactly the pairs whose result a run on that date changes are stale
    later = service.stale_results(populated, date(2025, 6, 30))
    rerun = service.run_matching(populated, date(2025, 6, 30))
    assert {(s.credit_code, s.rule_id) for s in later} == {
        (c.credit_code, c.rule_id) for c in rerun
    }


def test_rule_change_rematches_only_that_rule(populated: Session) -> None:
    lib = load_library()
    service.load_rules(populated, lib)
    service.run_matching(populated, ON)
    rule = lib.rules["gs351-10-procurement-small-micro"]
    service.publish_rule(
        populated,
        lib.parse_rule(rule.source.replace("[small, micro]", "[medium, small, micro]"), "x"),
    )
    stale = service.stale_results(populated, ON)
    assert {s.rule_id for s in stale} == {rule.id}
    changed = service.rematch_rule(populated, rule.id, ON)
    assert {c.rule_id for c in changed} == {rule.id}
    assert results(populated)[(B, rule.id)].result == "eligible"


def test_reverse_query_counts_inside_the_database(populated: Session) -> None:
    service.load_rules(populated)
    report = service.reverse_query(populated, "gs351-23-above-scale-upgrade", ON)
    assert report.totals == {"eligible": 1, "ineligible": 2, "unknown": 0}
    assert report.eligible == [A]
    assert ("6201", "eligible", 1) in report.by_region
    assert ("33", "eligible", 1) in report.by_industry
    with pytest.raises(service.MatchingError):
        service.reverse_query(populated, "no-such-rule", ON)


def test_sandbox_counts_and_exposure_without_storing(populated: Session) -> None:
    draft = (
        load_library()
        .rules["gs351-22-graduate-social-insurance"]
        .source.replace("id: gs351-22-graduate-social-insurance", "id: draft-grad")
    )
    report = service.sandbox(populated, draft, ON)
    assert (
        report.errors == [] and report.totals["eligible"] == 1 and report.exposure_fen == 2_400_000
    )
    bad = service.sandbox(populated, draft.replace("graduate_hires, op", "graduate_hire, op"), ON)
    assert (
        bad.errors
        and "draft.yaml:" in bad.errors[0]
        and "unknown field 'graduate_hire'" in bad.errors[0]
    )
    assert populated.scalar(select(MatchState.enterprise_id).limit(1)) is None


def test_explain_and_my_policies(populated: Session) -> None:
    service.load_rules(populated)
    exp = service.explain(populated, A, "gs351-22-graduate-social-insurance", ON).to_json()
    assert exp["result"] == "eligible" and exp["amount_fen"] == 2_400_000
    mine = service.my_policies(populated, A, ON)
    assert "gs351-22-graduate-social-insurance" in [v.rule_id for v, _ in mine.eligible]
    with pytest.raises(service.MatchingError, match="no enterprise"):
        service.explain(populated, "91620000XXXXXXXXXX", "gs351-22-graduate-social-insurance", ON)


def test_rematch_in_small_batches_agrees_with_a_full_run(populated: Session) -> None:
    service.load_rules(populated)
    service.run_matching(populated, ON)
    snapshot = {
        k: (m.result, m.conditions, m.missing, m.amount_fen) for k, m in results(populated).items()
    }
    report = service.match(populated, [A, B, C], on=ON, batch_size=1)
    # inputs and rules unchanged: each enterprise is skipped after comparing its input hash
    assert (report.batches, report.changes, report.evaluated, report.skipped) == (3, 0, 0, 3)
    report = service.match(populated, [A, B, C], on=ON, batch_size=1, engine="sql")
    assert report.evaluated == 3 * len(service.published_versions(populated))
    assert (report.changes, report.inserted, report.updated) == (0, 0, 0)
    assert {
        k: (m.result, m.conditions, m.missing, m.amount_fen) for k, m in results(populated).items()
    } == snapshot
