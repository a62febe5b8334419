"""docs/rules.md stays true: its complete example is a valid rule and its scenario example passes."""

from __future__ import annotations

import re
from pathlib import Path

from huiqi.rules.library import load_base, parse_scenarios
from huiqi.rules.scenarios import run_scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_complete_example_is_valid_and_its_scenario_passes() -> None:
    example = next(b for b in blocks() if b.startswith("id: gs351-22-graduate-social-insurance"))
    rule = load_base().parse_rule(example, "docs/rules.md")
    assert rule.doc.mode == "auto_grant" and rule.formula is not None
    assert rule.formula.names == ("graduate_insurance_paid",)
    scen = next(b for b in blocks() if b.startswith("rule: gs351-22-graduate-social-insurance"))
    sfile = parse_scenarios(scen, "docs/rules.md")
    outcome = run_scenario(rule, sfile.scenarios[0], "docs/rules.md")
    assert outcome.ok, outcome.problems


def test_documented_error_messages_are_the_real_ones() -> None:
    text = DOC.read_text(encoding="utf-8")
    for fragment in (
        "unknown field 'employess' (not in the field catalogue or derived values)",
        "money needs a unit: write e.g. '5万元', '5元' or '5分' (got a bare number)",
        "no value satisfies both",
        "has no value for 2028-01-01 (inside the rule's validity window)",
    ):
        assert fragment in text
