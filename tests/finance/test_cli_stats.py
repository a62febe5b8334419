"""`huiqi finance …` commands and the officer statistics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from huiqi.accounts.models import User
from huiqi.cli.main import app
from huiqi.core.config import get_settings
from huiqi.finance import service as svc
from huiqi.finance.schemas import NeedIn
from huiqi.finance.stats import finance_stats

from .conftest import DAY

runner = CliRunner()
WAN = 1_000_000


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HUIQI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HUIQI_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    from huiqi.core import db

    monkeypatch.setattr(db, "_engine", None)
    monkeypatch.setattr(db, "_factory", None)
    return tmp_path


def test_cli_lpr_demo_remind_and_stats(cli_env: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["finance", "lpr", "--on", "2024-07-22"])
    assert result.exit_code == 0 and "3.35%" in result.output and "3.85%" in result.output
    result = runner.invoke(app, ["finance", "lpr", "--on", "2019-01-01"])
    assert result.exit_code == 1 and "no LPR value" in result.output
    result = runner.invoke(app, ["finance", "lpr", "--on", "22/07/2024"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    result = runner.invoke(app, ["finance", "demo"])
    assert result.exit_code == 0 and "6 demo product(s)" in result.output
    assert "6 demo product(s)" in runner.invoke(app, ["finance", "demo"]).output  # idempotent
    result = runner.invoke(app, ["finance", "remind", "--on", "2026-11-26"])
    assert result.exit_code == 0 and "0 reminder(s) sent" in result.output
    result = runner.invoke(app, ["finance", "stats"])
    assert result.exit_code == 0 and "guarantee fees within" in result.output


def test_statistics(
    db_session: Session, users: dict[str, User], product_data: Callable[..., Any]
) -> None:
    s = db_session
    credit = svc.publish_product(s, users["gsbank"], product_data(), on=DAY)
    dear = svc.publish_product(
        s,
        users["guarantor"],
        product_data(
            name="高费率担保",
            kind="guarantee",
            provider_kind="guarantee",
            rate_base=None,
            spread_bp=None,
            guarantee_fee_bp=200,
            conditions_yaml="",
            required_fields=[],
        ),
        on=DAY,
    )

    def need(user: User, amount: int, first: bool | None) -> Any:
        data = {"amount_fen": amount, "term_months": 12, "purpose": "流动资金", "first_loan": first}
        return svc.post_need(s, user, NeedIn.model_validate(data), on=DAY)

    fields = ["revenue", "tax_credit_rating"]
    a1 = need(users["ent_a"], 300 * WAN, True)
    b1 = need(users["ent_b"], 60 * WAN, None)
    (o1, o2) = svc.apply(s, users["ent_a"], a1.id, [credit.id, dear.id], fields, on=DAY)
    (o3,) = svc.apply(s, users["ent_b"], b1.id, [credit.id], fields, on=DAY)
    app1, app2, app3 = (o.application for o in (o1, o2, o3))
    assert app1 and app2 and app3
    svc.transition(s, users["gsbank"], app1.id, "accept", on=DAY)
    # decided 2025-10-10: working days after 09-29 are 09-30, 10-09, 10-10 → 3
    svc.transition(s, users["gsbank"], app1.id, "approve", rate_bp=340, on=date(2025, 10, 10))
    svc.transition(s, users["gsbank"], app1.id, "disburse", on=date(2025, 10, 10))
    svc.transition(s, users["guarantor"], app2.id, "accept", on=DAY)
    svc.transition(s, users["guarantor"], app2.id, "approve", on=DAY)
    svc.transition(s, users["guarantor"], app2.id, "disburse", on=DAY)
    svc.transition(s, users["gsbank"], app3.id, "decline", reason="缺少纳税信用评级", on=DAY)

    st = finance_stats(s, on=DAY)
    assert st.applications == 3 and st.decided == 3 and st.approved == 2
    assert st.approval_rate == Decimal("0.6667")
    assert st.average_rate_bp == Decimal("340.00")  # the guarantee has no loan rate
    assert st.average_days_to_decision == Decimal("1.00")  # (3 + 0 + 0) / 3
    assert st.disbursed == 2 and st.disbursed_amount_fen == 600 * WAN
    assert st.first_loans == 2 and st.first_loan_share == Decimal("1.0000")
    assert st.fees.cap_bp == 150 and st.fees.average_fee_bp == Decimal("200.00")
    assert st.fees.compliant is False
    assert [p[2] for p in st.fees.products_over_cap] == ["高费率担保"]
    regions = {c.key: c for c in st.by_region}
    assert regions["620100"].needs == 1 and regions["620100"].disbursed == 2
    assert regions["620400"].need_amount_fen == 60 * WAN and regions["620400"].disbursed == 0
    # both products serve all of Gansu (prefix 62), so each 市州 with demand counts both
    assert regions["620100"].products == 2 and regions["620400"].products == 2
    industries = {c.key: c for c in st.by_industry}
    assert industries["C"].needs == 1 and industries["F"].needs == 1
    assert industries["C"].products == 2
