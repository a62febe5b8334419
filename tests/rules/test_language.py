"""The rule format: what is accepted, and malformed rules refused with file, line and reason."""

from __future__ import annotations

import textwrap
from datetime import date

import pytest

from huiqi.rules.library import load_base
from huiqi.rules.source import RuleValidationError

LIB = load_base()

HEAD = """\
id: test-rule
title: {zh: 测试, en: test}
legal_basis:
  - {doc_number: 甘工信发〔2020〕351号, article: (二十二)}
department: 省工信厅
mode: push
valid_from: 2023-01-01
"""


def parse(body: str, head: str = HEAD):  # type: ignore[no-untyped-def]
    return LIB.parse_rule(head + textwrap.dedent(body), "test.yaml")


def refused(body: str, head: str = HEAD) -> list[tuple[int | None, str]]:
    with pytest.raises(RuleValidationError) as info:
        parse(body, head)
    for e in info.value.errors:
        assert e.file == "test.yaml"
    return [(e.line, e.reason) for e in info.value.errors]


def test_valid_rule_with_every_kind_of_condition() -> None:
    rule = parse("""\
        conditions:
          all:
            - {field: employees, op: "≥", value: 10}
            - {field: revenue, op: "<", value: 2000万元}
            - {field: rd_ratio, op: ">=", value: 3%}
            - {field: years_since_founding, op: ">=", value: 2}
            - {field: founded_on, op: "<=", value: {years_before: 2}}
            - {field: region_code, op: prefix, value: ["62"]}
            - {field: industry_code, op: prefix, value: [C, "65"]}
            - {field: size_class, op: in, value: [small, micro]}
            - {field: tax_credit_rating, op: not in, value: [C, D]}
            - {cert: high_tech}
            - any:
                - {field: above_scale, op: "=", value: true}
                - not: {field: ownership_type, op: "=", value: state}
        """)
    assert len(rule.atoms) == 12
    assert rule.doc.legal_basis[0].article_no == 22
    assert rule.atoms[1].value == 2_000_000_000  # 2000万元 in fen
    assert [a.id for a in rule.atoms][:3] == ["employees", "revenue", "rd_ratio"]
    assert rule.columns()[:3] == ["above_scale", "cert_high_tech_from", "cert_high_tech_to"]


def test_unknown_field_reports_its_line() -> None:
    errors = refused("""\
        conditions:
          all:
            - {field: employees, op: ">=", value: 10}
            - {field: employess, op: ">=", value: 10}
        """)
    assert errors == [
        (11, "unknown field 'employess' (not in the field catalogue or derived values)")
    ]


def test_money_needs_a_unit_and_units_must_match() -> None:
    errors = refused("""\
        conditions:
          all:
            - {field: revenue, op: ">=", value: 20000000}
            - {field: employees, op: "<=", param: small_profit_assets_max}
        """)
    assert errors[0][0] == 10 and "money needs a unit" in errors[0][1]
    assert errors[1][0] == 11 and "unit mismatch: employees is int (persons)" in errors[1][1]


def test_wrong_type_and_unknown_enum_value() -> None:
    errors = refused("""\
        conditions:
          all:
            - {field: employees, op: ">=", value: "ten"}
            - {field: size_class, op: in, value: [small, tiny]}
            - {field: size_class, op: ">", value: small}
            - {field: revenue, op: prefix, value: ["62"]}
        """)
    reasons = [r for _, r in errors]
    assert "expected a whole number" in reasons[0]
    assert "'tiny' is not one of the allowed values" in reasons[1]
    assert "> does not apply to size_class" in reasons[2]
    assert "prefix applies to code fields" in reasons[3]
    assert [ln for ln, _ in errors] == [10, 11, 12, 13]


def test_parameter_without_value_for_the_rule_window_is_refused() -> None:
    head = HEAD.replace("valid_from: 2023-01-01", "valid_from: 2023-01-01\nvalid_to: 2029-12-31")
    errors = refused(
        """\
        conditions:
          all:
            - {field: taxable_income, op: "<=", param: small_profit_taxable_income_max}
        """,
        head,
    )
    assert errors == [
        (
            11,
            "parameter small_profit_taxable_income_max has no value for 2028-01-01 (inside the rule's validity window)",
        )
    ]


def test_parameter_value_is_picked_by_evaluation_date() -> None:
    p = LIB.params["small_profit_rate_tier1"]
    assert str(p.value_on(date(2022, 5, 1))) == "1/40"  # 2.5%
    assert str(p.value_on(date(2024, 5, 1))) == "1/20"  # 5%
    assert p.source_on(date(2022, 5, 1)).doc_number == "财政部 税务总局公告2021年第12号"  # type: ignore[union-attr]
    assert p.value_on(date(2018, 5, 1)) is None


def test_unreachable_conditions_are_refused() -> None:
    errors = refused("""\
        conditions:
          all:
            - {field: employees, op: "<", value: 5}
            - {field: revenue, op: ">", value: 0元}
            - {field: employees, op: ">", value: 10}
        """)
    assert errors[0][0] == 12
    assert "unreachable condition: employees < 5 (line 10) and employees > 10" in errors[0][1]
    errors = refused("""\
        conditions:
          all:
            - {field: region_code, op: prefix, value: ["62"]}
            - all:
                - {field: region_code, op: prefix, value: ["11"]}
        """)
    assert "no code starts with both prefixes" in errors[0][1]
    errors = refused("""\
        conditions:
          all:
            - {field: size_class, op: in, value: [small]}
            - not: {field: size_class, op: in, value: [small, micro]}
        """)
    assert "unreachable" in errors[0][1]
    # integers: nothing lies strictly between 5 and 6
    assert refused("""\
        conditions:
          all: [{field: employees, op: ">", value: 5}, {field: employees, op: "<", value: 6}]
        """)
    # reachable under any, and reachable ranges, are accepted
    parse("""\
        conditions:
          any: [{field: employees, op: "<", value: 5}, {field: employees, op: ">", value: 10}]
        """)
    parse("""\
        conditions:
          all: [{field: rd_ratio, op: ">", value: 3%}, {field: rd_ratio, op: "<", value: 3.01%}]
        """)


def test_yaml_syntax_error_and_duplicate_key_have_lines() -> None:
    errors = refused("conditions:\n  all: [ {field: employees\n")
    assert errors[0][0] is not None and errors[0][1].startswith("YAML syntax")
    errors = refused("conditions: {all: [{field: employees, op: '>', value: 1}]}\nmode: apply\n")
    assert errors == [(9, "duplicate key 'mode'")]


def test_structure_errors_from_the_schema() -> None:
    errors = refused("conditions: {all: [{field: employees, op: '>', value: 1}]}\ncolour: red\n")
    assert errors == [(9, "colour: unknown key (not part of the format)")]
    head = HEAD.replace("mode: push", "mode: auto_grant")
    errors = refused("conditions: {all: [{field: employees, op: '>', value: 1}]}\n", head)
    assert "auto_grant rule needs a benefit formula" in errors[0][1]


def test_operator_certification_and_prefix_checks() -> None:
    errors = refused("""\
        conditions:
          all:
            - {field: employees, op: "=>", value: 1}
            - {cert: nobel_prize}
            - {field: region_code, op: prefix, value: ["6"]}
            - {field: industry_code, op: prefix, value: ["Z"]}
        """)
    reasons = [r for _, r in errors]
    assert "unknown operator '=>'" in reasons[0]
    assert "unknown certification 'nobel_prize'" in reasons[1]
    assert "region prefix '6' must be 2, 4 or 6 digits" in reasons[2]
    assert "section letter A–T" in reasons[3]


def test_benefit_formula_is_checked_for_units() -> None:
    head = HEAD.replace("mode: push", "mode: auto_grant")
    errors = refused(
        """\
        conditions: {all: [{field: graduate_hires, op: ">=", value: 1}]}
        benefit: {formula: graduate_hires * employees}
        """,
        head,
    )
    assert (
        errors[0][1] == "the formula must give money (multiply by a money parameter or use yuan())"
    )
    errors = refused(
        """\
        conditions: {all: [{field: graduate_hires, op: ">=", value: 1}]}
        benefit: {formula: revenue * total_assets}
        """,
        head,
    )
    assert errors[0][1] == "cannot multiply money by money"
    errors = refused(
        """\
        conditions: {all: [{field: graduate_hires, op: ">=", value: 1}]}
        benefit: {formula: "__import__('os')"}
        """,
        head,
    )
    assert "unknown function __import__()" in errors[0][1]


def test_rule_local_parameters_and_derived_values() -> None:
    rule = parse("""\
        parameters:
          - id: local_min_staff
            title: {zh: 最少人数, en: minimum staff}
            unit: persons
            values:
              - {from: 2023-01-01, value: 10, source: {doc_number: 甘工信发〔2020〕351号, article: (二十二)}}
        derived:
          - {id: asset_turnover, kind: ratio, numerator: revenue, denominator: total_assets, title: {zh: 资产周转率, en: asset turnover}}
        conditions:
          all:
            - {field: employees, op: ">=", param: local_min_staff}
            - {field: asset_turnover, op: ">=", value: "0.5"}
        """)
    assert set(rule.params) == {"local_min_staff"}
