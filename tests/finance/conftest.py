"""Finance fixtures: lenders, enterprises in the registry, and products built from the demo set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core.db import utcnow
from huiqi.enterprise.models import Enterprise, enterprise_current

GANSU_BANK = "甘肃银行股份有限公司"
OTHER_BANK = "兰州银行股份有限公司"
GUARANTEE = "甘肃省融资担保集团股份有限公司"
# A small precision-machinery maker in Lanzhou (城关区), and a micro retailer in Baiyin (白银区).
ENT_A = "91620102MA72H8K3X0"
ENT_B = "91620402MA71QW8E56"
# Monday 2025-09-29: the National Day holiday (10-01…10-08) falls inside the working-day limits.
DAY = date(2025, 9, 29)
PASSWORD = "correct-horse-battery"


def profile_a() -> dict[str, Any]:
    """Registry values of enterprise A."""
    return {
        "name": "兰州精工机械有限公司",
        "region_code": "620102",
        "industry_code": "3424",
        "founded_on": date(2016, 5, 12),
        "registered_capital": 5_000_000_00,
        "ownership_type": "private",
        "figures_year": 2024,
        "employees": 86,
        "revenue": 48_000_000_00,
        "total_assets": 61_000_000_00,
        "rd_expense": 2_100_000_00,
        "tax_credit_rating": "A",
        "cert_high_tech_from": date(2023, 11, 1),
        "cert_high_tech_to": date(2026, 10, 31),
        "size_class": "small",
        "above_scale": True,
    }


def profile_b() -> dict[str, Any]:
    """Registry values of enterprise B (no tax credit rating on file)."""
    return {
        "name": "白银惠民便利店有限公司",
        "region_code": "620402",
        "industry_code": "5213",
        "founded_on": date(2022, 3, 1),
        "employees": 6,
        "revenue": 1_800_000_00,
        "size_class": "micro",
    }


def register(session: Session, credit_code: str, values: dict[str, Any]) -> None:
    """Put an enterprise and its current field-contract row into the registry."""
    now: datetime = utcnow()
    ent = Enterprise(credit_code=credit_code, created_at=now, updated_at=now)
    session.add(ent)
    session.flush()
    session.execute(insert(enterprise_current).values(id=ent.id, credit_code=credit_code, **values))


@pytest.fixture
def users(db_session: Session) -> dict[str, User]:
    """One user per party of a matchmaking."""

    def make(name: str, role: str, **binding: str) -> User:
        return accounts.create_user(
            db_session, username=name, password=PASSWORD, role=role, **binding
        )

    out = {
        "gsbank": make("gsbank", "bank", institution=GANSU_BANK),
        "lzbank": make("lzbank", "bank", institution=OTHER_BANK),
        "guarantor": make("guarantor", "bank", institution=GUARANTEE),
        "ent_a": make("ent_a", "enterprise", credit_code=ENT_A),
        "ent_b": make("ent_b", "enterprise", credit_code=ENT_B),
        "officer": make("officer1", "officer", department="甘肃省工业和信息化厅"),
    }
    register(db_session, ENT_A, profile_a())
    register(db_session, ENT_B, profile_b())
    db_session.flush()
    return out


@pytest.fixture
def product_data() -> Callable[..., Any]:
    """Build a ProductIn with realistic defaults, overridable per test."""
    from huiqi.finance.schemas import ProductIn

    def build(**over: Any) -> ProductIn:
        base: dict[str, Any] = {
            "name": "陇原科技信用贷",
            "kind": "credit_loan",
            "amount_min_fen": 50 * 1_000_000,
            "amount_max_fen": 1000 * 1_000_000,
            "term_min_months": 6,
            "term_max_months": 36,
            "rate_base": "lpr_1y",
            "spread_bp": 45,
            "collateral": ["none"],
            "size_classes": ["medium", "small", "micro"],
            "region_prefixes": ["62"],
            "required_fields": ["revenue", "tax_credit_rating"],
            "conditions_yaml": "- {field: tax_credit_rating, op: in, value: [A, B]}\n",
            "valid_from": date(2025, 1, 1),
        }
        base.update(over)
        return ProductIn.model_validate(base)

    return build
