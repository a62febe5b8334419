"""A disbursement message says the same in English as in Chinese, formula included."""

from __future__ import annotations

from huiqi.grants.disbursement import grant_message, grant_message_en
from huiqi.grants.models import Grant


def test_english_grant_message_names_the_formula_like_the_chinese_one() -> None:
    grant = Grant(
        credit_code="91620102MA00000001",
        enterprise_name="兰州示例公司",
        rule_title="小微企业招用高校毕业生社会保险补贴",
        legal_basis="甘工信发〔2020〕351号 第(二十二)条",
        period=2025,
        amount_fen=1_600_000,
        bank_name="甘肃银行",
        account_no="6217001234567890",
        department="省人社厅",
        snapshot={"inputs": {}, "formula": "graduate_insurance_paid"},
    )
    _, zh = grant_message(grant)
    _, en = grant_message_en(grant)
    assert "计算方式:" in zh
    formula_line = next(line for line in en.splitlines() if line.startswith("How it is computed:"))
    assert "graduate_insurance_paid" not in formula_line  # named as people read it
    assert "6217001234567890" not in en and "7890" in en
