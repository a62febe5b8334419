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
            if src.kind == "legal":
                assert src.doc_number and src.article, p.id
            elif src.kind == "setting":
                assert src.by and src.when and src.why, p.id
            else:
                assert src.why, p.id


NATIONAL = {"national_tax.yaml"}
NATIONAL_PARAMS = {
    "procurement_price_deduction_min",
    "procurement_price_deduction_max",
    "procurement_works_price_deduction_min",
    "procurement_works_price_deduction_max",
}


def test_national_parameters_carry_their_announcement_date() -> None:
    from huiqi.finance.eligibility import default_params

    lib_files = load_yaml_params()
    names = {pid for pid, file in lib_files.items() if file in NATIONAL} | NATIONAL_PARAMS
    assert names >= {"vat_small_scale_exempt_monthly_sales", "small_profit_rate_tier1"}
    finance = default_params()
    for pid in names:
        for start, _end, _value, src in LIB.params[pid].periods:
            legal = src if src.kind == "legal" else None
            if legal is not None:
                assert legal.issued is not None, (pid, start)
    for pid in ("lpr_1y", "lpr_5y"):
        for _start, _end, _value, src in finance.library.params[pid].periods:
            assert src.kind == "legal" and src.issued is not None


def load_yaml_params() -> dict[str, str]:
    """Parameter id → the library file that declares it."""
    import yaml

    from huiqi.rules.library import LIBRARY_DIR

    out = {}
    for path in (LIBRARY_DIR / "parameters").glob("*.yaml"):
        for item in yaml.safe_load(path.read_text(encoding="utf-8"))["parameters"]:
            out[item["id"]] = path.name
    return out


@pytest.mark.parametrize("outcome", OUTCOMES, ids=[f"{o.rule_id}:{o.name}" for o in OUTCOMES])
def test_scenario(outcome) -> None:  # type: ignore[no-untyped-def]
    assert outcome.ok, outcome.problems
