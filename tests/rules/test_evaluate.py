"""Three-valued evaluation, reasons, near misses, exact amounts and hostile strings."""

from __future__ import annotations

from datetime import date

from huiqi.rules.batch import pack_codes, run_batch, unpack_codes
from huiqi.rules.evaluate import Evaluator, explain_rule, normalize_row
from huiqi.rules.library import load_base, load_library
from huiqi.rules.plan import compile_plan
from huiqi.rules.sql import fitting_query

from .helpers import frame, sql_table

LIB = load_library()
BASE = load_base()
ON = date(2024, 6, 30)


def rule_text(conditions: str, extra: str = "", mode: str = "push") -> str:
    return (
        "id: t\ntitle: {zh: 测试, en: test}\n"
        "legal_basis: [{doc_number: 甘工信发〔2020〕351号, article: (二十二)}]\n"
        f"department: 省人社厅\nmode: {mode}\nvalid_from: 2021-01-01\n"
        f"conditions: {conditions}\n{extra}"
    )


def test_missing_is_unknown_never_zero_and_names_the_field() -> None:
    rule = BASE.parse_rule(rule_text("{all: [{field: employees, op: '<', value: 10}]}"))
    e = explain_rule(rule, {}, ON)
    assert e.result == "unknown" and e.missing == ["employees"]
    assert e.conditions[0].reason_zh == "缺少从业人员数据,无法判断从业人员是否 < 10 人"
    e = explain_rule(rule, {"employees": 0}, ON)
    assert e.result == "eligible"


def test_kleene_logic() -> None:
    rule = BASE.parse_rule(
        rule_text(
            "{any: [{field: employees, op: '>=', value: 10}, {field: revenue, op: '>=', value: 100万元}]}"
        )
    )
    assert explain_rule(rule, {"employees": 12}, ON).result == "eligible"  # true OR unknown
    e = explain_rule(rule, {"employees": 3}, ON)
    assert e.result == "unknown" and e.missing == ["revenue"]  # false OR unknown
    rule = BASE.parse_rule(
        rule_text(
            "{all: [{field: employees, op: '>=', value: 10}, {field: revenue, op: '>=', value: 100万元}]}"
        )
    )
    e = explain_rule(rule, {"employees": 3}, ON)
    assert e.result == "ineligible" and e.missing == [] and e.failing == ["employees"]
    rule = BASE.parse_rule(rule_text("{not: {field: size_class, op: in, value: [large]}}"))
    assert explain_rule(rule, {}, ON).result == "unknown"
    assert explain_rule(rule, {"size_class": "small"}, ON).result == "eligible"


def test_reasons_in_chinese_and_english() -> None:
    rule = BASE.parse_rule(rule_text("{all: [{field: employees, op: '>=', value: 10}]}"))
    c = explain_rule(rule, {"employees": 8}, ON).conditions[0]
    assert c.reason_zh == "从业人员 8 人,低于要求的 10 人"
    assert c.reason_en == "Employees 8 persons, below the required 10 persons"
    assert c.outcome == "false"


def test_near_miss_on_a_ratio_names_the_target_and_the_money_needed() -> None:
    rule = LIB.rules["gs351-24-srdi-candidate"]
    row = normalize_row(
        {
            "region_code": "620102",
            "size_class": "small",
            "cert_innovative_sme_from": "2023-05-01",
            "cert_innovative_sme_to": "2026-04-30",
            "founded_on": "2016-04-01",
            "rd_expense": "140万元",
            "revenue": "5000万元",
            "srdi_score": 72,
        }
    )
    e = explain_rule(rule, row, ON)
    assert e.result == "ineligible"
    assert e.near_miss is not None and len(e.near_miss.changes) == 1
    change = e.near_miss.changes[0]
    assert change.text_zh == "研发费用占营业收入比重 2.8% → 3.0%(研发费用需达到 150万元)"
    assert change.edits == {"rd_expense": 150_000_000}
    assert e.near_miss.is_near()
    # the suggested change really makes it eligible
    assert explain_rule(rule, {**row, **change.edits}, ON).result == "eligible"


def test_near_miss_picks_the_cheapest_branch_and_reports_benefit_at_stake() -> None:
    rule = LIB.rules["gs351-22-graduate-social-insurance"]
    e = explain_rule(
        rule,
        {
            "region_code": "620102",
            "size_class": "small",
            "graduate_hires": 0,
            "graduate_insurance_paid": 1_215_000,
        },
        ON,
    )
    assert e.near_miss is not None
    assert [c.text_zh for c in e.near_miss.changes] == ["吸纳高校毕业生人数 0 人 → 1 人"]
    assert e.near_miss.amount_fen == 1_215_000
    rule = BASE.parse_rule(
        rule_text(
            "{any: [{field: employees, op: '>=', value: 100}, {field: employees, op: '>=', value: 12}]}"
        )
    )
    e = explain_rule(rule, {"employees": 10}, ON)
    assert [c.text_zh for c in e.near_miss.changes] == ["从业人员 10 人 → 12 人"]  # type: ignore[union-attr]


def test_amount_is_exact_money_with_cap() -> None:
    extra = "benefit:\n  formula: graduate_hires * yuan(3333.33) / 3\n  cap: 5000元\n"
    rule = BASE.parse_rule(
        rule_text("{all: [{field: graduate_hires, op: '>=', value: 1}]}", extra, "push")
    )
    assert (
        explain_rule(rule, {"graduate_hires": 1}, ON).amount_fen == 111_111
    )  # 1111.11 元, no float drift
    assert explain_rule(rule, {"graduate_hires": 4}, ON).amount_fen == 444_444
    assert explain_rule(rule, {"graduate_hires": 5}, ON).amount_fen == 500_000  # capped
    big = BASE.parse_rule(
        rule_text(
            "{all: [{field: revenue, op: '>', value: 0元}]}",
            "benefit: {formula: revenue * 1}\n",
            "auto_grant",
        )
    )
    assert explain_rule(big, {"revenue": 19_999_999_999}, ON).amount_fen == 19_999_999_999


def test_rule_outside_its_window_is_ineligible_in_every_engine() -> None:
    rule = LIB.rules["gs351-08-small-scale-vat-exemption"]
    plan = compile_plan([rule], date(2022, 1, 1))
    row = {"revenue": 1_000_000}
    assert Evaluator(plan).results(row) == [0]
    assert run_batch(plan, frame([row])).codes(0).tolist() == [0]


def test_sql_injection_strings_are_compared_as_strings() -> None:
    hostile = "620102' OR '1'='1"
    rule = BASE.parse_rule(
        rule_text(
            "{all: [{field: name, op: '=', value: \"x'); DROP TABLE enterprise_current; --\"}]}"
        )
    )
    rows = [
        {"name": "x'); DROP TABLE enterprise_current; --", "region_code": hostile},
        {"name": "甘肃某公司", "region_code": "620102"},
    ]
    plan = compile_plan([rule], ON)
    engine, table = sql_table(rows)
    with engine.connect() as conn:
        fit = conn.execute(fitting_query(plan, 0, table)).all()
        assert [r.id for r in fit] == [1]
        assert conn.execute(table.select()).all()  # table still there
    assert run_batch(plan, frame(rows)).codes(0).tolist() == [1, 0]


def test_condition_codes_pack_two_bits_each() -> None:
    assert unpack_codes(pack_codes([1, 0, 2, 1]), 4) == [1, 0, 2, 1]
    rule = LIB.rules["gs351-22-graduate-social-insurance"]
    plan = compile_plan([rule], ON)
    rows = [{"region_code": "620102", "size_class": None, "graduate_hires": 0}]
    codes = run_batch(plan, frame(rows)).condition_codes(0)
    assert unpack_codes(int(codes[0]), 3) == [1, 2, 0]


def test_normalize_row_refuses_bad_input_clearly() -> None:
    import pytest

    from huiqi.rules.values import ValueProblem

    with pytest.raises(ValueProblem, match="unknown field 'employes'"):
        normalize_row({"employes": 3})
    with pytest.raises(ValueProblem, match="employees: expected a whole number"):
        normalize_row({"employees": "many"})
    assert normalize_row({"revenue": "1.5万元", "founded_on": "2020-01-02"}) == {
        "revenue": 1_500_000,
        "founded_on": date(2020, 1, 2),
    }
