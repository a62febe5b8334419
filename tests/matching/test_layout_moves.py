"""A new rule version rewrites only the stored rows whose codes it changes; the others move with
their layout, and read back under the new version."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.enterprise.population import generate, load_rows
from huiqi.matching import service
from huiqi.matching.models import MatchLayout, MatchState
from huiqi.notify.models import Notification
from huiqi.rules.library import load_library

ON = date(2025, 6, 30)
RULE = "gs351-10-procurement-small-micro"


@pytest.fixture
def province(db_session: Session) -> Session:
    """120 generated enterprises, the rule library and a first full run."""
    load_rows(db_session, generate(120, seed=7), today=ON)
    service.load_rules(db_session)
    service.match(db_session, on=ON)
    db_session.commit()
    return db_session


def rows(session: Session) -> dict[int, tuple[Any, ...]]:
    """Every stored row: its layout, packed codes and write time."""
    m = MatchState
    return {
        eid: (layout, bytes(res), bytes(cond), written)
        for eid, layout, res, cond, written in session.execute(
            select(m.enterprise_id, m.layout_id, m.results, m.conditions, m.updated_at)
        )
    }


def publish(session: Session, old: str, new: str) -> Any:
    """Publish the rule's source with `old` replaced by `new`; the new version."""
    lib = load_library()
    source = lib.rules[RULE].source
    assert old in source
    version, changed = service.publish_rule(session, lib.parse_rule(source.replace(old, new), "x"))
    assert changed
    return version


def notes(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Notification)) or 0)


def test_a_version_that_changes_no_code_rewrites_no_row(province: Session) -> None:
    session = province
    before, told = rows(session), notes(session)
    version = publish(
        session, "政府采购小微企业预留份额与价格扣除", "政府采购小微企业预留份额和价格扣除"
    )
    report = service.match(session, on=ON, rule_ids=[RULE], checkpoint=session.commit)
    session.commit()

    # every enterprise was compared by the edited rule alone; none was written, all 120 moved
    # with their layout
    assert (report.evaluated, report.inserted, report.updated) == (120, 0, 0)
    assert (report.moved, report.changes) == (120, 0)
    assert rows(session) == before and notes(session) == told
    old_layouts = {layout for layout, *_ in before.values()}
    target = session.scalars(select(MatchLayout.moved_to).where(MatchLayout.moved_to.is_not(None)))
    assert (
        set(session.scalars(select(MatchLayout.id).where(MatchLayout.moved_to.is_not(None))))
        == old_layouts
        and len(set(target)) == 1
    )

    # the stored results read back under the new version, words included
    results = service.stored_results(session, rule_ids=[RULE], results=("eligible", "unknown"))
    assert results and {(r.rule_version, r.rule_hash) for r in results} == {
        (version.version, version.hash)
    }
    assert all(r.missing == "size_class" for r in results if r.result == "unknown")
    assert service.stale_results(session, ON) == []
    # and the next run finds nothing to do
    again = service.match(session, on=ON)
    assert (again.skipped, again.evaluated, again.updated, again.moved) == (120, 0, 0, 0)


def test_a_version_that_changes_outcomes_rewrites_exactly_those_rows(province: Session) -> None:
    session = province
    before = rows(session)
    codes_before = dict(service.codes_of_rule(session, RULE))
    version = publish(session, "[small, micro]", "[medium, small, micro]")
    report = service.match(session, on=ON, rule_ids=[RULE], checkpoint=session.commit)
    session.commit()
    after = rows(session)

    rewritten = {eid for eid in after if after[eid][1:3] != before[eid][1:3]}
    written = {eid for eid in after if after[eid][3] != before[eid][3]}
    assert rewritten and rewritten == written
    assert (report.inserted, report.updated) == (0, len(rewritten))
    assert report.moved == 120 - len(rewritten)
    # the edited rule is evaluated for everyone, every rule for the rewritten rows
    rules = len(service.published_rules(session))
    assert report.evaluated == 120 + len(rewritten) * rules
    codes_after = dict(service.codes_of_rule(session, RULE))
    changed = {c for c in codes_after if codes_after[c] != codes_before.get(c, 0)}
    assert changed and report.changes == len(changed)

    # rewritten and moved rows alike read back under the new version
    results = service.stored_results(session, rule_ids=[RULE])
    kept = {r.credit_code for r in results} - changed
    assert changed - {c for c in changed if codes_after[c] == 0} <= {r.credit_code for r in results}
    assert kept and {r.rule_version for r in results} == {version.version}
    assert service.stale_results(session, ON) == []
    again = service.match(session, on=ON)
    assert (again.skipped, again.updated, again.moved) == (120, 0, 0)


def test_a_layout_current_again_counts_its_own_rows(province: Session) -> None:
    """Rows kept under a later date's layout are ON's again when ON's layout is current again."""
    session = province
    stored = service.stored_results(session, results=("eligible", "unknown", "ineligible"))
    later = date(2027, 1, 1)  # rules expire: their tests read differently
    ahead = service.match(session, on=later)
    assert ahead.moved > 0 and ahead.updated > 0
    back = service.match(session, on=ON)
    # the rows kept at ON's layout are current again (skipped); the rewritten ones are redone
    assert (back.skipped, back.updated, back.moved) == (ahead.moved, ahead.updated, 0)
    again = service.stored_results(session, results=("eligible", "unknown", "ineligible"))
    drop = ("evaluated_on", "updated_at")
    assert [{k: v for k, v in vars(r).items() if k not in drop} for r in again] == [
        {k: v for k, v in vars(r).items() if k not in drop} for r in stored
    ]
    assert service.stale_results(session, ON) == []


def test_an_old_layout_whose_tests_are_unknown_is_compared_in_full(province: Session) -> None:
    """When today's parameters no longer give an old layout's key, its rows are evaluated with
    every rule (the rules that differ cannot be told apart), and still not rewritten."""
    session = province
    before = rows(session)
    for layout in session.scalars(select(MatchLayout)):
        layout.key = "0" * 32  # as if a parameter its tests read had changed since
    publish(session, "政府采购小微企业预留份额与价格扣除", "政府采购小微企业预留份额和价格扣除")
    report = service.match(session, on=ON, rule_ids=[RULE])
    rules = len(service.published_rules(session))
    assert (report.evaluated, report.updated, report.moved) == (120 * rules, 0, 120)
    assert rows(session) == before
