"""The encoded seed measures: each rule cites the seed, and its scenarios pass in every engine."""

from __future__ import annotations

import re

import pytest

from huiqi.rules.library import load_library
from huiqi.rules.scenarios import run_library_scenarios

from ..conftest import seed_path

LIB = load_library()
OUTCOMES = run_library_scenarios(LIB)
SEED_DOC = "甘工信发〔2020〕351号"


def test_at_least_eight_rules_cite_the_required_seed_articles() -> None:
    cited = {
        b.article for r in LIB.rules.values() for b in r.doc.legal_basis if b.doc_number == SEED_DOC
    }
    assert {"(八)", "(十)", "(十三)", "(十八)", "(二十二)", "(二十三)", "(二十四)"} <= cited
    assert len(LIB.rules) >= 8
    assert any(r.doc.mode == "auto_grant" and r.formula for r in LIB.rules.values())


def test_cited_articles_exist_in_the_seed_text() -> None:
    text = seed_path().read_text(encoding="utf-8")
    assert SEED_DOC in text
    for rule in LIB.rules.values():
        for b in rule.doc.legal_basis:
            if b.doc_number == SEED_DOC:
                assert re.search(re.escape(f"({b.article.strip('()')})"), text), b.article


def test_every_rule_has_scenarios_and_states_its_assumptions() -> None:
    for rule in LIB.rules.values():
        assert rule.id in LIB.scenarios, rule.id
        assert rule.doc.description is not None and "假设" in rule.doc.description.zh, rule.id
        assert len(LIB.scenarios[rule.id][1].scenarios) >= 3


def test_every_parameter_period_names_its_source() -> None:
    for p in LIB.params.values():
        for _start, _end, _value, src in p.periods:
            assert src.doc_number and src.article


@pytest.mark.parametrize("outcome", OUTCOMES, ids=[f"{o.rule_id}:{o.name}" for o in OUTCOMES])
def test_scenario(outcome) -> None:  # type: ignore[no-untyped-def]
    assert outcome.ok, outcome.problems
