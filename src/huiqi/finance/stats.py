"""Financing statistics for officers: demand and supply by region and industry, approvals,
rates, time to decision, first-loan share and the guarantee-fee ceiling of article (十八)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.clock import today
from huiqi.core.codes import (
    CodeError,
    industry_name,
    industry_section,
    region_name,
    region_prefecture,
)
from huiqi.core.dates import working_days_between
from huiqi.enterprise import repository as ent_repo
from huiqi.finance import eligibility as elig
from huiqi.finance.models import Application, AppStatus, Need, Product, ProductStatus
from huiqi.finance.service import in_force

UNKNOWN = "—"


@dataclass
class Cell:
    """Demand and supply of one region or industry."""

    key: str
    label: str
    needs: int = 0
    need_amount_fen: int = 0
    products: int = 0
    applications: int = 0
    disbursed: int = 0
    disbursed_amount_fen: int = 0


@dataclass
class FeeCompliance:
    """Guarantee fees against the article (十八) ceiling."""

    cap_bp: int | None
    products_with_fee: int = 0
    products_over_cap: list[tuple[int, str, str, int]] = field(default_factory=list)
    average_fee_bp: Decimal | None = None
    weighted_fee_bp: Decimal | None = None

    @property
    def compliant(self) -> bool | None:
        """Whether the average fee of products and of disbursed business is within the ceiling."""
        if self.cap_bp is None or self.average_fee_bp is None:
            return None
        weighted_ok = self.weighted_fee_bp is None or self.weighted_fee_bp <= self.cap_bp
        return self.average_fee_bp <= self.cap_bp and weighted_ok


@dataclass
class FinanceStats:
    """The officer's picture of financing matchmaking on a date."""

    on: date
    by_region: list[Cell]
    by_industry: list[Cell]
    applications: int
    by_status: dict[str, int]
    decided: int
    approved: int
    approval_rate: Decimal | None
    average_rate_bp: Decimal | None
    weighted_rate_bp: Decimal | None
    average_days_to_decision: Decimal | None
    disbursed: int
    disbursed_amount_fen: int
    first_loans: int
    first_loan_unknown: int
    first_loan_share: Decimal | None
    fees: FeeCompliance


def _ratio(num: int, den: int) -> Decimal | None:
    """num/den as a Decimal with four places (None for an empty denominator)."""
    if den == 0:
        return None
    return (Decimal(num) / Decimal(den)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _mean(values: list[int]) -> Decimal | None:
    if not values:
        return None
    return (Decimal(sum(values)) / len(values)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _weighted(pairs: list[tuple[int, int]]) -> Decimal | None:
    """Amount-weighted mean of (value, weight) pairs."""
    total = sum(w for _v, w in pairs)
    if total == 0:
        return None
    return (Decimal(sum(v * w for v, w in pairs)) / total).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def _region_key(code: str | None) -> str:
    return region_prefecture(code) if code else UNKNOWN


def _industry_key(code: str | None) -> str:
    if not code:
        return UNKNOWN
    try:
        return industry_section(code)
    except CodeError:
        return UNKNOWN


def _region_label(key: str) -> str:
    return "未知地区" if key == UNKNOWN else region_name(key)


def _industry_label(key: str) -> str:
    return "未知行业" if key == UNKNOWN else f"{key} {industry_name(key)}"


def _prefecture_of_prefix(prefix: str) -> str | None:
    """The 市州 cell a region prefix names (None for a province-wide prefix)."""
    if len(prefix) == 4:
        return prefix + "00"
    if len(prefix) == 6:
        return region_prefecture(prefix)
    return None


def _covers_region(prefixes: list[str], key: str) -> bool:
    """Whether a product's region prefixes reach a 市州 (or part of it)."""
    if not prefixes:
        return True
    if key == UNKNOWN:
        return False
    return any(key.startswith(p) or _prefecture_of_prefix(p) == key for p in prefixes)


def _section_of_prefix(prefix: str) -> str:
    if prefix.isalpha():
        return prefix
    try:
        return industry_section(prefix)
    except CodeError:
        return UNKNOWN


def _covers_industry(prefixes: list[str], key: str) -> bool:
    """Whether a product's industry prefixes reach an industry section."""
    if not prefixes:
        return True
    return any(_section_of_prefix(p) == key for p in prefixes)


def _near(key: str, within: str) -> bool:
    """Whether a 市州 cell overlaps a city or county officer's region prefix."""
    return key.startswith(within) or within.startswith(key[:4])


def finance_stats(
    session: Session,
    *,
    on: date | None = None,
    params: elig.FinanceParams | None = None,
    within: str | None = None,
) -> FinanceStats:
    """Compute the statistics from needs, products and applications; `within` (a city or
    county officer's region prefix) counts only needs and applications of enterprises
    registered there, and shows only the 市州 cells that overlap it."""
    on = on or today()
    params = params or elig.default_params()
    need_q, app_q = select(Need), select(Application)
    if within:
        need_q = need_q.where(Need.credit_code.in_(ent_repo.codes_in_region(within)))
        app_q = app_q.where(Application.credit_code.in_(ent_repo.codes_in_region(within)))
    needs = session.scalars(need_q).all()
    products = [
        p
        for p in session.scalars(select(Product).where(Product.status == ProductStatus.published))
        if in_force(p, on)
    ]
    apps = session.scalars(app_q).all()
    need_by_id = {n.id: n for n in needs}

    regions: dict[str, Cell] = {}
    industries: dict[str, Cell] = {}

    def cell(table: dict[str, Cell], key: str, label: str) -> Cell:
        if key not in table:
            table[key] = Cell(key, label)
        return table[key]

    for n in needs:
        for table, key, label in (
            (regions, _region_key(n.region_code), _region_label(_region_key(n.region_code))),
            (
                industries,
                _industry_key(n.industry_code),
                _industry_label(_industry_key(n.industry_code)),
            ),
        ):
            c = cell(table, key, label)
            c.needs += 1
            c.need_amount_fen += n.amount_fen
    # Supply: every product counts in each region and industry it serves; cells named only by
    # a product (no need there yet) are shown too.
    for p in products:
        for prefix in p.region_prefixes or []:
            prefecture = _prefecture_of_prefix(prefix)
            if prefecture is not None and (not within or _near(prefecture, within)):
                cell(regions, prefecture, _region_label(prefecture))
        for prefix in p.industry_prefixes or []:
            key = _section_of_prefix(prefix)
            cell(industries, key, _industry_label(key))
    for c in regions.values():
        c.products = sum(
            1 for p in products if _covers_region(list(p.region_prefixes or []), c.key)
        )
    for c in industries.values():
        c.products = sum(
            1 for p in products if _covers_industry(list(p.industry_prefixes or []), c.key)
        )
    for a in apps:
        need = need_by_id.get(a.need_id)
        if need is None:
            continue
        for table, key, label in (
            (regions, _region_key(need.region_code), _region_label(_region_key(need.region_code))),
            (
                industries,
                _industry_key(need.industry_code),
                _industry_label(_industry_key(need.industry_code)),
            ),
        ):
            c = cell(table, key, label)
            c.applications += 1
            if a.status == AppStatus.disbursed:
                c.disbursed += 1
                c.disbursed_amount_fen += a.disbursed_amount_fen or 0

    by_status: dict[str, int] = defaultdict(int)
    for a in apps:
        by_status[a.status] += 1
    approved_apps = [a for a in apps if a.status in (AppStatus.approved, AppStatus.disbursed)]
    decided = len(approved_apps) + by_status.get(AppStatus.declined, 0)
    rates = [a.approved_rate_bp for a in approved_apps if a.approved_rate_bp is not None]
    weighted_rates = [
        (a.approved_rate_bp, a.approved_amount_fen or a.amount_fen)
        for a in approved_apps
        if a.approved_rate_bp is not None
    ]
    days = [
        working_days_between(a.submitted_on, a.decided_on) for a in apps if a.decided_on is not None
    ]
    disbursed = [a for a in apps if a.status == AppStatus.disbursed]
    first = [need_by_id[a.need_id].first_loan for a in disbursed if a.need_id in need_by_id]

    fees = FeeCompliance(cap_bp=params.fee_cap_bp(on))
    with_fee = [p for p in products if p.guarantee_fee_bp is not None]
    fees.products_with_fee = len(with_fee)
    if fees.cap_bp is not None:
        fees.products_over_cap = [
            (p.id, p.institution, p.name, p.guarantee_fee_bp or 0)
            for p in with_fee
            if (p.guarantee_fee_bp or 0) > fees.cap_bp
        ]
    fees.average_fee_bp = _mean([p.guarantee_fee_bp or 0 for p in with_fee])
    fees.weighted_fee_bp = _weighted(
        [
            (a.guarantee_fee_bp, a.disbursed_amount_fen or 0)
            for a in disbursed
            if a.guarantee_fee_bp is not None
        ]
    )

    def ordered(table: dict[str, Cell]) -> list[Cell]:
        return sorted(table.values(), key=lambda c: (c.key == UNKNOWN, c.key))

    return FinanceStats(
        on=on,
        by_region=ordered(regions),
        by_industry=ordered(industries),
        applications=len(apps),
        by_status=dict(by_status),
        decided=decided,
        approved=len(approved_apps),
        approval_rate=_ratio(len(approved_apps), decided),
        average_rate_bp=_mean(rates),
        weighted_rate_bp=_weighted(weighted_rates),
        average_days_to_decision=_mean(days),
        disbursed=len(disbursed),
        disbursed_amount_fen=sum(a.disbursed_amount_fen or 0 for a in disbursed),
        first_loans=sum(1 for f in first if f is True),
        first_loan_unknown=sum(1 for f in first if f is None),
        first_loan_share=_ratio(sum(1 for f in first if f is True), len(disbursed)),
        fees=fees,
    )
