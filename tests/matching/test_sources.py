"""Every citation of a document held in the policy library is checked against the article's text."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction

import pytest
from typer.testing import CliRunner

from huiqi.cli.main import app
from huiqi.finance.eligibility import default_params
from huiqi.matching.sources import (
    MISMATCH,
    UNVERIFIED,
    VERIFIED,
    check_period,
    library_articles,
    parameter_checks,
    rule_checks,
)
from huiqi.rules.library import load_library
from huiqi.rules.schema import ParamSource
from huiqi.rules.values import VType

SEED = "甘工信发〔2020〕351号"
RATIO = VType("ratio")
MONEY = VType("money")


def legal(article: str, doc: str = SEED) -> ParamSource:
    return ParamSource(doc_number=doc, article=article)


def test_the_seed_is_read_from_the_packaged_sample() -> None:
    seed = library_articles()[SEED]
    assert seed[10].label == "(十)" and "30%以上" in seed[10].quantity_texts()


def test_every_library_citation_matches_its_article() -> None:
    checks = parameter_checks(default_params().library.params) + rule_checks(load_library())
    bad = [f"{c.subject} {c.citation}\n{c.reason}" for c in checks if c.status == MISMATCH]
    assert bad == []
    verified = {c.subject for c in checks if c.status == VERIFIED}
    assert {"procurement_sme_reserve_share", "guarantee_fee_rate_max"} <= verified
    # a document outside the library is never silently trusted
    unverified = [c for c in checks if c.status == UNVERIFIED]
    assert unverified and all(c.citation and c.kind == "legal" for c in unverified)


def test_a_wrong_figure_fails_with_both_texts_side_by_side() -> None:
    check = check_period(
        "guarantee_fee_rate_max", date(2021, 1, 1), None, Fraction(2, 100), RATIO, legal("(十八)")
    )
    assert check.status == MISMATCH
    assert "2%" in check.reason  # the parameter's figure …
    assert "降至1.5%以下" in check.reason  # … beside the article's quantity …
    assert "将平均担保费率降至1.5%以下" in check.reason  # … and the article's own words
    right = check_period(
        "guarantee_fee_rate_max", date(2021, 1, 1), None, Fraction(15, 1000), RATIO, legal("(十八)")
    )
    assert right.status == VERIFIED


def test_a_wrong_article_fails() -> None:
    moved = check_period(
        "procurement_sme_reserve_share",
        date(2021, 1, 1),
        None,
        Fraction(3, 10),
        RATIO,
        legal("(十一)"),
    )
    assert moved.status == MISMATCH and "30%" in moved.reason
    absent = check_period(
        "procurement_sme_reserve_share",
        date(2021, 1, 1),
        None,
        Fraction(3, 10),
        RATIO,
        legal("(九十九)"),
    )
    assert absent.status == MISMATCH and "has no article (九十九)" in absent.reason


@pytest.mark.parametrize(
    ("pid", "article", "fen"),
    [
        ("above_scale_revenue_min", "(二十三)", 2_000_000_000),  # the statistics bureau's line
        ("grad_subsidy_cap", "(二十二)", 20_000_000),  # the article sets no cap
    ],
)
def test_the_citations_the_library_used_to_make_fail(pid: str, article: str, fen: int) -> None:
    check = check_period(pid, date(2021, 1, 1), None, fen, MONEY, legal(article))
    assert check.status == MISMATCH


def test_a_document_outside_the_library_is_unverified_with_its_citation() -> None:
    check = check_period(
        "x", date(2022, 7, 1), None, Fraction(1, 5), RATIO, legal("二", doc="财库〔2022〕19号")
    )
    assert check.status == UNVERIFIED and check.citation.startswith("财库〔2022〕19号 二")


def test_cli_lists_every_parameter_with_its_kind_of_source() -> None:
    result = CliRunner().invoke(app, ["rules", "sources", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    by = {(r["subject"], r["from"]): r for r in rows}
    assert by[("finance_decision_working_days", "2020-12-18")]["kind"] == "setting"
    assert by[("vat_small_scale_exempt_annual_revenue", "2023-01-01")]["status"] == "estimate"
    assert by[("procurement_price_deduction_max", "2022-07-01")]["status"] == "unverified"
    assert "财库〔2022〕19号" in by[("procurement_price_deduction_max", "2022-07-01")]["citation"]
    assert by[("guarantee_fee_rate_max", "2020-12-18")]["status"] == "verified"
    plain = CliRunner().invoke(app, ["rules", "sources"])
    assert plain.exit_code == 0 and "unverified" in plain.output
