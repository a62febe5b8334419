"""Rule constants beyond 64 bits are refused by validation, and codes written with full-width
digits are read as the ASCII codes they stand for."""

from __future__ import annotations

import textwrap
from datetime import date

import pytest

from huiqi.rules.evaluate import Evaluator
from huiqi.rules.library import load_base
from huiqi.rules.plan import compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import results_query

from .helpers import sql_table

LIB = load_base()

HEAD = """\
id: bounds-rule
title: {zh: 测试, en: test}
legal_basis:
  - {doc_number: 甘工信发〔2020〕351号, article: (二十二)}
department: 省工信厅
mode: push
valid_from: 2023-01-01
"""


def parse(body: str):  # type: ignore[no-untyped-def]
    return LIB.parse_rule(HEAD + textwrap.dedent(body), "bounds.yaml")


def reasons(body: str) -> str:
    with pytest.raises(RuleValidationError) as info:
        parse(body)
    return " | ".join(e.reason for e in info.value.errors)


@pytest.mark.parametrize(
    "condition",
    [
        '{field: employees, op: ">=", value: 18446744073709551616}',
        "{field: employees, op: in, value: [1, -9223372036854775809]}",
        '{field: revenue, op: "<", value: "99999999999999999999万元"}',
        '{field: rd_ratio, op: ">=", value: "100000000000000000000%"}',
        '{field: founded_on, op: "<=", value: {years_before: 100000000000000000000}}',
    ],
)
def test_constants_beyond_64_bits_are_refused(condition: str) -> None:
    text = reasons(f"""\
        conditions:
          all:
            - {condition}
        """)
    assert "out of range" in text


def test_formula_constants_are_bounded() -> None:
    text = reasons("""\
        conditions:
          all:
            - {field: employees, op: ">=", value: 1}
        benefit:
          title: {zh: 补贴, en: subsidy}
          formula: graduate_hires * 100000000000000000000000
        """)
    assert "out of range" in text


def test_the_largest_64_bit_constant_still_runs_in_sql() -> None:
    rule = parse("""\
        conditions:
          all:
            - {field: employees, op: "<", value: 9223372036854775807}
        """)
    plan = compile_plan([rule], date(2025, 6, 30))
    engine, table = sql_table([{"employees": 12}, {"employees": None}])
    with engine.connect() as conn:
        rows = conn.execute(results_query(plan, 0, table)).all()
    engine.dispose()
    assert [r.result for r in rows] == [
        Evaluator(plan).results(x)[0] for x in ({"employees": 12}, {"employees": None})
    ]


def test_full_width_region_and_industry_codes_are_normalised() -> None:
    full = parse("""\
        conditions:
          all:
            - {field: region_code, op: prefix, value: ["６２０１"]}
            - {field: industry_code, op: prefix, value: ["Ｃ", "６５"]}
            - {field: region_code, op: in, value: ["６２０１０２"]}
        """)
    assert [a.value for a in full.atoms] == [("6201",), ("C", "65"), ("620102",)]
    plan = compile_plan([full], date(2025, 6, 30))
    lanzhou = {"region_code": "620102", "industry_code": "3424"}
    engine, table = sql_table([lanzhou])
    with engine.connect() as conn:
        (row,) = conn.execute(results_query(plan, 0, table)).all()
    engine.dispose()
    # The full-width rule matches the Lanzhou manufacturer as the ASCII rule would.
    assert Evaluator(plan).results(lanzhou)[0] == row.result
    ascii_rule = parse("""\
        conditions:
          all:
            - {field: region_code, op: prefix, value: ["6201"]}
            - {field: industry_code, op: prefix, value: ["C", "65"]}
            - {field: region_code, op: in, value: ["620102"]}
        """)
    ascii_plan = compile_plan([ascii_rule], date(2025, 6, 30))
    assert Evaluator(ascii_plan).results(lanzhou)[0] == Evaluator(plan).results(lanzhou)[0]


def test_codes_in_other_scripts_are_refused_with_a_message() -> None:
    text = reasons("""\
        conditions:
          all:
            - {field: region_code, op: prefix, value: ["六二"]}
        """)
    assert "region prefix" in text or "ASCII" in text


def test_a_stored_rule_refused_by_todays_checks_does_not_stop_a_sql_run(db_session) -> None:  # type: ignore[no-untyped-def]
    """A version published before the bounds existed is left out; the other rules still run."""
    from sqlalchemy import update

    from huiqi.matching import service
    from huiqi.matching.models import RuleVersion
    from huiqi.rules.library import load_library

    lib = load_library()
    service.load_rules(db_session, lib)
    target = "gs351-10-procurement-small-micro"
    bad = HEAD.replace("bounds-rule", target) + textwrap.dedent("""\
        conditions:
          all:
            - {field: employees, op: ">=", value: 18446744073709551616}
        """)
    db_session.execute(
        update(RuleVersion)
        .where(RuleVersion.rule_id == target, RuleVersion.status == "published")
        .values(source=bad, hash="pre-bounds")
    )
    kept = {v.rule_id for v, _ in service.published_rules(db_session)}
    assert target not in kept and len(kept) >= 3
    service.run_matching(db_session, date(2024, 6, 30), engine="sql")
