"""The batch engine, the SQL compiler and the single-enterprise evaluator give the same answers.

Random rules in the documented YAML format over random populations with missing values and
values sitting exactly on the thresholds; every rule result and every condition outcome is compared.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from huiqi.rules.batch import run_batch
from huiqi.rules.evaluate import Evaluator, eval_prim
from huiqi.rules.library import load_base
from huiqi.rules.plan import compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import results_query

from .helpers import frame, sql_table

INJECTION = "x' OR '1'='1'; DROP TABLE enterprise_current; --"
DATES = [date(2024, 6, 30), date(2024, 2, 29), date(2023, 3, 1)]

VALUES: dict[str, list[Any]] = {
    "employees": [None, 0, 9, 10, 11, 300, 301],
    "revenue": [None, 0, -500, 1_000_000, 3_000_000, 3_000_001],
    "rd_expense": [None, 0, 90_000, 89_999, 1_000_000],
    "export_revenue": [None, 0, 1],
    "founded_on": [
        None,
        date(2022, 6, 30),
        date(2022, 7, 1),
        date(2022, 2, 28),
        date(2020, 2, 29),
        date(2021, 3, 1),
    ],
    "size_class": [None, "small", "micro", "medium", "large"],
    "region_code": [None, "620102", "620502", "110105", INJECTION],
    "industry_code": [None, "3311", "0610", "5131", "1310"],
    "tax_credit_rating": [None, "A", "B", "M", "C", "D"],
    "above_scale": [None, True, False],
    "cert_high_tech_from": [None, date(2021, 3, 1), date(2024, 6, 30), date(2024, 7, 1)],
    "cert_high_tech_to": [None, date(2024, 6, 30), date(2024, 2, 28), date(2026, 1, 1)],
    "name": [None, INJECTION, "甘肃某某科技有限公司", "x"],
}

OPS = ["=", "!=", "<", "<=", ">", ">=", "≥", "≤", "≠"]
ATOMS = st.one_of(
    st.builds(
        lambda op, v: {"field": "employees", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from([0, 10, 300]),
    ),
    st.builds(
        lambda op: {"field": "employees", "op": op, "value": [10, 300]},
        st.sampled_from(["in", "not in"]),
    ),
    st.builds(
        lambda op, v: {"field": "revenue", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from(["0元", "1万元", "30000元", "30000.01元"]),
    ),
    st.builds(
        lambda op, v: {"field": "rd_ratio", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from(["3%", "0.03", "0%", "33.33%"]),
    ),
    st.builds(
        lambda op, v: {"field": "export_ratio", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from(["0%", "1%"]),
    ),
    st.builds(
        lambda op, v: {"field": "years_since_founding", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from([0, 1, 2, 4]),
    ),
    st.builds(
        lambda op, v: {"field": "founded_on", "op": op, "value": v},
        st.sampled_from(OPS),
        st.sampled_from(
            [{"years_before": 2}, "2022-06-30", {"months_before": 4}, "evaluation_date"]
        ),
    ),
    st.builds(
        lambda op, v: {"field": "size_class", "op": op, "value": v},
        st.sampled_from(["in", "not in"]),
        st.sampled_from([["small", "micro"], ["large"]]),
    ),
    st.builds(
        lambda op, v: {"field": "size_class", "op": op, "value": v},
        st.sampled_from(["=", "!="]),
        st.sampled_from(["small", "large"]),
    ),
    st.builds(
        lambda v: {"field": "region_code", "op": "prefix", "value": v},
        st.sampled_from([["62"], ["6205", "11"], "620102"]),
    ),
    st.builds(
        lambda v: {"field": "industry_code", "op": "prefix", "value": v},
        st.sampled_from([["C"], ["B", "F"], ["06"], ["331"]]),
    ),
    st.builds(
        lambda op, v: {"field": "tax_credit_rating", "op": op, "value": v},
        st.sampled_from(["in", "not in"]),
        st.sampled_from([["A", "B"], ["D"]]),
    ),
    st.builds(
        lambda op, v: {"field": "above_scale", "op": op, "value": v},
        st.sampled_from(["=", "!="]),
        st.booleans(),
    ),
    st.just({"cert": "high_tech"}),
    st.builds(
        lambda op, v: {"field": "name", "op": op, "value": v},
        st.sampled_from(["=", "!="]),
        st.sampled_from([INJECTION, "x"]),
    ),
    st.builds(
        lambda v: {"field": "name", "op": "in", "value": v},
        st.sampled_from([[INJECTION, "x"], ["%"]]),
    ),
)


def trees(depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    """Random condition trees over the atom pool."""
    return st.recursive(
        ATOMS,
        lambda children: st.one_of(
            st.builds(lambda cs: {"all": cs}, st.lists(children, min_size=1, max_size=4)),
            st.builds(lambda cs: {"any": cs}, st.lists(children, min_size=1, max_size=4)),
            st.builds(lambda c: {"not": c}, children),
        ),
        max_leaves=8,
    )


def rows_strategy() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Random populations drawn from value pools that sit on the thresholds."""
    row = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALUES.items()})
    return st.lists(row, min_size=1, max_size=25)


LIB = load_base()


def make_rules(conds: list[dict[str, Any]]) -> list[Any]:
    """Rules in the documented YAML format; rules the checker refuses as unreachable are skipped."""
    rules = []
    for i, c in enumerate(conds):
        doc = {
            "id": f"random-{i}",
            "title": {"zh": "随机规则", "en": "random rule"},
            "legal_basis": [{"doc_number": "甘工信发〔2020〕351号", "article": "(八)"}],
            "department": "省工信厅",
            "mode": "push",
            "valid_from": date(2020, 1, 1),
            "conditions": c,
        }
        try:
            rules.append(
                LIB.parse_rule(yaml.safe_dump(doc, allow_unicode=True), f"random-{i}.yaml")
            )
        except RuleValidationError as exc:
            assert all("unreachable" in e.reason for e in exc.errors), exc
    return rules


def check_agreement(
    rules: list[Any], rows: list[dict[str, Any]], on: date, url: str = "sqlite://"
) -> None:
    """Assert the three engines agree on every rule result and every condition outcome."""
    plan = compile_plan(rules, on)
    batch = run_batch(plan, frame(rows))
    single = Evaluator(plan)
    engine, table = sql_table(rows, url)
    with engine.connect() as conn:
        for r, pr in enumerate(plan.rules):
            sql_rows = conn.execute(results_query(plan, r, table, with_conditions=True)).all()
            batch_codes = batch.codes(r).tolist()
            batch_atoms = batch.atom_codes(r).tolist()
            for i, row in enumerate(rows):
                want = single.results(row)[r]
                assert batch_codes[i] == want, (pr.rule.doc.conditions, row)
                assert sql_rows[i].result == want, (pr.rule.doc.conditions, row)
                for j, pi in enumerate(pr.atom_prims):
                    atom = eval_prim(plan.prims[pi], row)
                    assert batch_atoms[i][j] == atom, (plan.prims[pi], row)
                    assert sql_rows[i][3 + j] == atom, (plan.prims[pi], row)
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conds=st.lists(trees(), min_size=1, max_size=4), rows=rows_strategy(), on=st.sampled_from(DATES)
)
def test_three_engines_agree(
    conds: list[dict[str, Any]], rows: list[dict[str, Any]], on: date
) -> None:
    rules = make_rules(conds)
    assume(rules)
    check_agreement(rules, rows, on)


PG_URL = os.environ.get("HUIQI_TEST_POSTGRES_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="set HUIQI_TEST_POSTGRES_URL to run against PostgreSQL")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conds=st.lists(trees(), min_size=1, max_size=3), rows=rows_strategy(), on=st.sampled_from(DATES)
)
def test_three_engines_agree_on_postgres(
    conds: list[dict[str, Any]], rows: list[dict[str, Any]], on: date
) -> None:
    rules = make_rules(conds)
    assume(rules)
    assert PG_URL
    url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    base = create_engine(url)
    with base.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS huiqi_rules_test"))
    base.dispose()
    # A schema of its own keeps the test table away from the registry's enterprise_current.
    scoped = url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dhuiqi_rules_test"
    check_agreement(rules, rows, on, scoped)
