"""Notification bodies (inbox, e-mail, SMS and webhook all carry them) name registry fields,
derived values and parameters as the forms and rules label them, never by internal names."""

from __future__ import annotations

import re

from huiqi.enterprise.catalogue import catalogue, label_of, name_fields
from huiqi.events import ResultChange
from huiqi.grants.disbursement import readable_formula
from huiqi.notify.messages import compose_result_message, summary_note

CODE = "91620102MA72H8K3X0"
INTERNAL = re.compile(
    r"(?<![A-Za-z0-9_])("
    + "|".join(re.escape(n) for n in catalogue().fields)
    + r"|[a-z]+_[a-z_]+)(?![A-Za-z0-9_])"
)


def _unknown(rule: str, *missing: str) -> ResultChange:
    return ResultChange(
        CODE,
        rule,
        "1",
        "unknown",
        missing=missing,
        rule_title="测试政策",
        enterprise_name="兰州测试有限公司",
        legal_basis="甘工信发〔2020〕351号 (二十二)",
    )


def test_a_result_message_names_the_missing_data_by_label() -> None:
    _topic, subject, body = compose_result_message(
        _unknown("r1", "employees", "size_class", "graduate_insurance_paid")
    )
    assert INTERNAL.search(subject + body) is None, body
    labels = "、".join(label_of(n) for n in ("employees", "size_class", "graduate_insurance_paid"))
    assert f"缺少的数据:{labels}" in body
    assert label_of("employees") != "employees"


def test_a_summary_names_them_too() -> None:
    note = summary_note(CODE, [_unknown(f"r{i}", "revenue", "total_assets") for i in range(5)])
    assert INTERNAL.search(note.subject + note.body) is None, note.body
    assert label_of("revenue") in note.body


def test_formulas_read_in_words_in_both_languages() -> None:
    formula = (
        "min(taxable_income, small_profit_tier1_ceiling) * (cit_standard_rate - "
        "small_profit_rate_tier1) + graduate_insurance_paid"
    )
    zh = readable_formula(formula)
    assert INTERNAL.search(zh) is None, zh
    assert zh.startswith("min(" + label_of("taxable_income"))
    en = readable_formula(formula, "en")
    assert INTERNAL.search(en) is None, en
    assert label_of("taxable_income", "en") in en


def test_name_fields_leaves_words_that_only_contain_a_field_name() -> None:
    assert name_fields("employees_total employees", "en") == (
        f"employees_total {label_of('employees', 'en')}"
    )
