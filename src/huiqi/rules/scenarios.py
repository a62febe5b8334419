"""Scenario tests: each rule's YAML cases (inputs → expected result, amount, failing and missing conditions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from huiqi.rules.batch import run_batch
from huiqi.rules.catalogue import Catalogue, default_catalogue
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import Evaluator, normalize_row
from huiqi.rules.library import Library
from huiqi.rules.plan import RESULT_NAMES, compile_plan
from huiqi.rules.schema import Scenario
from huiqi.rules.values import ValueProblem, parse_money

_POLARS = {"money": pl.Int64, "int": pl.Int64, "date": pl.Date, "bool": pl.Boolean}


@dataclass
class ScenarioOutcome:
    """Whether one scenario passed, and what differed."""

    rule_id: str
    name: str
    file: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No differences found."""
        return not self.problems


def one_row_frame(row: dict[str, Any], catalogue: Catalogue) -> pl.DataFrame:
    """A single-row frame typed per the catalogue (for checking the batch engine agrees)."""
    return pl.DataFrame(
        {
            name: pl.Series(name, [row.get(name)], dtype=_POLARS.get(f.kind, pl.Utf8))
            for name, f in catalogue.fields.items()
        }
    )


def run_scenario(
    rule: Rule, sc: Scenario, file: str, catalogue: Catalogue | None = None
) -> ScenarioOutcome:
    """Run one scenario through the single-enterprise and batch engines and compare with expectations."""
    cat = catalogue or default_catalogue()
    out = ScenarioOutcome(rule.id, sc.name, file)
    try:
        row = normalize_row(sc.inputs, cat)
    except ValueProblem as exc:
        out.problems.append(f"inputs: {exc}")
        return out
    plan = compile_plan([rule], sc.date)
    exp = Evaluator(plan, cat).explain(row, rule.id)
    want = sc.expect
    if exp.result != want.result:
        out.problems.append(f"result {exp.result}, expected {want.result}")
    batch_code = int(run_batch(plan, one_row_frame(row, cat)).codes(0)[0])
    if RESULT_NAMES[batch_code] != exp.result:
        out.problems.append(
            f"batch engine says {RESULT_NAMES[batch_code]}, single evaluator {exp.result}"
        )
    if want.amount == "unknown":
        if exp.amount_fen is not None:
            out.problems.append(f"amount {exp.amount_fen} fen, expected unknown (to confirm)")
    elif want.amount is not None:
        try:
            expected_fen = parse_money(want.amount)
        except ValueProblem as exc:
            out.problems.append(f"expect.amount: {exc}")
        else:
            if exp.amount_fen != expected_fen:
                out.problems.append(f"amount {exp.amount_fen} fen, expected {expected_fen} fen")
    if want.failing is not None and sorted(exp.failing) != sorted(want.failing):
        out.problems.append(f"failing {exp.failing}, expected {want.failing}")
    if want.missing is not None and sorted(exp.missing) != sorted(want.missing):
        out.problems.append(f"missing {exp.missing}, expected {want.missing}")
    if want.near_miss is not None:
        got = sorted(c.condition for c in exp.near_miss.changes) if exp.near_miss else []
        if got != sorted(want.near_miss):
            out.problems.append(f"near-miss changes {got}, expected {want.near_miss}")
    return out


def run_library_scenarios(lib: Library) -> list[ScenarioOutcome]:
    """Every scenario of every rule in the library."""
    results = []
    for rule_id, (file, sfile) in sorted(lib.scenarios.items()):
        rule = lib.rules[rule_id]
        for sc in sfile.scenarios:
            results.append(run_scenario(rule, sc, file, lib.catalogue))
    return results
