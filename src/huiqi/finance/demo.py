"""Demo products of 甘肃银行 (the demo bank user's institution), another bank and guarantee agencies."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.finance.models import Product
from huiqi.finance.schemas import ProductIn
from huiqi.finance.service import create_product

WAN = 1_000_000
GANSU_BANK = "甘肃银行股份有限公司"
LANZHOU_BANK = "兰州银行股份有限公司"
GOV_GUARANTEE = "甘肃省融资担保集团股份有限公司"
COMMERCIAL_GUARANTEE = "陇原商业融资担保有限公司"
SEED = "甘工信发〔2020〕351号"

DEMO_PRODUCTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        GANSU_BANK,
        {
            "name": "陇原惠企信用贷",
            "kind": "credit_loan",
            "description": "面向省内纳税信用良好的中小微企业,纯信用、线上申请。",
            "amount_min_fen": 10 * WAN,
            "amount_max_fen": 500 * WAN,
            "term_min_months": 3,
            "term_max_months": 36,
            "rate_base": "lpr_1y",
            "spread_bp": 50,
            "collateral": ["none"],
            "region_prefixes": ["62"],
            "required_fields": ["revenue", "tax_credit_rating"],
            "conditions_yaml": (
                "- {field: tax_credit_rating, op: in, value: [A, B], id: tax_credit}\n"
                "- {field: years_since_founding, op: '>=', value: 1, id: founded_1y}\n"
            ),
            "legal_basis": [{"doc_number": SEED, "article": "(十三)"}],
            "decision_days": 5,
        },
    ),
    (
        GANSU_BANK,
        {
            "name": "科技知识产权质押贷",
            "kind": "ip_pledge",
            "description": "以专利权、商标专用权质押,支持科技型、专精特新中小企业。",
            "amount_min_fen": 50 * WAN,
            "amount_max_fen": 1000 * WAN,
            "term_min_months": 12,
            "term_max_months": 36,
            "rate_base": "lpr_1y",
            "spread_bp": 80,
            "collateral": ["ip"],
            "region_prefixes": ["62"],
            "required_fields": ["revenue", "rd_expense"],
            "conditions_yaml": (
                "any:\n  - {cert: high_tech}\n  - {cert: tech_sme}\n  - {cert: srdi_sme}\n"
            ),
            "legal_basis": [{"doc_number": SEED, "article": "(十三)"}],
        },
    ),
    (
        LANZHOU_BANK,
        {
            "name": "银税互动·税融贷",
            "kind": "tax_bank",
            "description": "依据纳税信用等级授信,银税数据直连,线上“一站式”办理。",
            "amount_min_fen": 5 * WAN,
            "amount_max_fen": 300 * WAN,
            "term_min_months": 3,
            "term_max_months": 12,
            "rate_base": "lpr_1y",
            "spread_bp": 95,
            "collateral": ["none"],
            "region_prefixes": ["6201", "6204", "6205"],
            "required_fields": ["revenue", "tax_credit_rating", "taxable_income"],
            "conditions_yaml": "- {field: tax_credit_rating, op: in, value: [A, B]}\n",
            "legal_basis": [{"doc_number": SEED, "article": "(十三)"}],
        },
    ),
    (
        LANZHOU_BANK,
        {
            "name": "应收账款融资(中征平台)",
            "kind": "receivables",
            "description": "在人民银行中征应收账款融资服务平台登记确权后放款。",
            "amount_min_fen": 20 * WAN,
            "amount_max_fen": 800 * WAN,
            "term_min_months": 3,
            "term_max_months": 12,
            "rate_base": "lpr_1y",
            "spread_bp": 60,
            "collateral": ["receivables"],
            "region_prefixes": ["62"],
            "required_fields": ["revenue"],
            "legal_basis": [{"doc_number": SEED, "article": "(十三)"}],
        },
    ),
    (
        GOV_GUARANTEE,
        {
            "name": "政府性融资担保(普惠降费)",
            "kind": "guarantee",
            "provider_kind": "guarantee",
            "description": "政府性融资担保,降低反担保要求。",
            "amount_min_fen": 10 * WAN,
            "amount_max_fen": 1000 * WAN,
            "term_min_months": 6,
            "term_max_months": 36,
            "guarantee_fee_bp": 100,
            "collateral": ["none"],
            "region_prefixes": ["62"],
            "required_fields": ["revenue", "employees"],
            "legal_basis": [{"doc_number": SEED, "article": "(十八)"}],
        },
    ),
    (
        COMMERCIAL_GUARANTEE,
        {
            "name": "流动资金贷款担保",
            "kind": "guarantee",
            "provider_kind": "guarantee",
            "description": "商业性融资担保;担保费率高于(十八)要求,平台予以标注。",
            "amount_min_fen": 50 * WAN,
            "amount_max_fen": 2000 * WAN,
            "term_min_months": 6,
            "term_max_months": 24,
            "guarantee_fee_bp": 200,
            "collateral": ["property", "equipment", "equity"],
            "size_classes": ["large", "medium", "small", "micro"],
            "region_prefixes": ["62"],
            "legal_basis": [{"doc_number": SEED, "article": "(十八)"}],
        },
    ),
)


def load_demo(session: Session, *, on: date | None = None) -> list[Product]:
    """Create the demo products that do not exist yet (by institution and name); returns them all."""
    out = []
    for institution, raw in DEMO_PRODUCTS:
        existing = session.scalar(
            select(Product).where(Product.institution == institution, Product.name == raw["name"])
        )
        if existing is None:
            data = ProductIn.model_validate({"valid_from": date(2025, 1, 1), **raw})
            existing = create_product(session, institution, data, on=on)
        out.append(existing)
    return out
