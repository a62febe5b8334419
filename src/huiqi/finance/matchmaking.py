"""Matching needs with products, the lenders' k-anonymous view of needs, and invitations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.clock import today
from huiqi.core.money import format_fen_en
from huiqi.enterprise import repository as ent_repo
from huiqi.finance import eligibility as elig
from huiqi.finance.base import (
    ELIGIBILITY_ORDER,
    Forbidden,
    NotFound,
    Reason,
    collateral_text,
    pct,
    wan,
)
from huiqi.finance.models import (
    Collateral,
    Need,
    Product,
    ProductStatus,
)
from huiqi.finance.needs import enterprise_values
from huiqi.finance.products import (
    fee_flag,
    fee_over_cap,
    in_force,
    own_product,
    product_terms,
    rate_on,
)
from huiqi.rules.evaluate import Explanation

# ------------------------------------------------------------------------------- matching


@dataclass
class Match:
    """One product for one need: eligibility with reasons, fit, price and what blocks applying."""

    product: Product
    explanation: Explanation
    lpr_bp: int | None
    rate_bp: int | None
    fee_bp: int | None
    fee_over_cap: bool
    fit: list[Reason] = field(default_factory=list)
    blockers: list[Reason] = field(default_factory=list)
    collateral_ok: bool = True

    @property
    def eligibility(self) -> str:
        """eligible, ineligible or unknown."""
        return self.explanation.result

    @property
    def applicable(self) -> bool:
        """Whether an application to this product would be accepted by the platform."""
        return not self.blockers

    @property
    def cost_bp(self) -> int | None:
        """Yearly cost to the enterprise: loan rate plus guarantee fee."""
        if self.rate_bp is None and self.fee_bp is None:
            return None
        return (self.rate_bp or 0) + (self.fee_bp or 0)

    def sort_key(self) -> tuple[int, int, int, int, int]:
        """Eligible before unknown before ineligible, then applicable, collateral, cost, size."""
        return (
            ELIGIBILITY_ORDER[self.eligibility],
            len(self.blockers),
            0 if self.collateral_ok else 1,
            self.cost_bp if self.cost_bp is not None else 10**6,
            -self.product.amount_max_fen,
        )

    def reasons(self) -> list[Reason]:
        """The eligibility reasons, one per condition."""
        ok = {"true": True, "false": False}
        return [
            Reason(c.reason_zh, c.reason_en, ok.get(c.outcome)) for c in self.explanation.conditions
        ]


@dataclass
class Unevaluable:
    """A product left out because it cannot be evaluated."""

    product: Product
    reason: str


@dataclass
class MatchResult:
    """Ranked products for a need, and those that could not be evaluated."""

    on: date
    matches: list[Match]
    unevaluable: list[Unevaluable]

    def by_product(self) -> dict[int, Match]:
        """Matches by product id."""
        return {m.product.id: m for m in self.matches}


def fit_of(
    product: Product, amount_fen: int, term_months: int, collateral: Sequence[str]
) -> tuple[list[Reason], list[Reason], bool]:
    """(fit reasons, blockers, collateral fits) of a product for an amount, term and collateral."""
    fit: list[Reason] = []
    blockers: list[Reason] = []
    lo, hi = product.amount_min_fen, product.amount_max_fen
    if lo <= amount_fen <= hi:
        fit.append(
            Reason(
                f"金额 {wan(amount_fen)} 在产品额度 {wan(lo)}–{wan(hi)} 内",
                f"amount {wan(amount_fen)} is within {wan(lo)}–{wan(hi)}",
                True,
            )
        )
    else:
        side = (
            ("低于额度下限", "below the minimum")
            if amount_fen < lo
            else ("超过额度上限", "above the maximum")
        )
        blockers.append(
            Reason(
                f"金额 {wan(amount_fen)} {side[0]}(产品额度 {wan(lo)}–{wan(hi)})",
                f"amount {wan(amount_fen)} is {side[1]} (product range {wan(lo)}–{wan(hi)})",
                False,
            )
        )
    tlo, thi = product.term_min_months, product.term_max_months
    if tlo <= term_months <= thi:
        fit.append(
            Reason(
                f"期限 {term_months} 个月在 {tlo}–{thi} 个月内",
                f"term {term_months} months is within {tlo}–{thi}",
                True,
            )
        )
    else:
        side = (
            ("短于最短期限", "shorter than the minimum")
            if term_months < tlo
            else ("长于最长期限", "longer than the maximum")
        )
        blockers.append(
            Reason(
                f"期限 {term_months} 个月{side[0]}(产品期限 {tlo}–{thi} 个月)",
                f"term {term_months} months is {side[1]} (product term {tlo}–{thi} months)",
                False,
            )
        )
    accepted = set(product.collateral or [])
    offered = set(collateral or [Collateral.none.value])
    if Collateral.none.value in accepted:
        fit.append(Reason("信用方式,无需抵押", "credit basis: no collateral needed", True))
        collateral_ok = True
    elif accepted & offered:
        common = [c for c in product.collateral if c in offered]
        fit.append(
            Reason(
                f"可用担保方式:{collateral_text(common)}",
                f"security accepted: {collateral_text(common, 1)}",
                True,
            )
        )
        collateral_ok = True
    else:
        fit.append(
            Reason(
                f"产品要求 {collateral_text(product.collateral)},您提供 {collateral_text(sorted(offered))}",
                f"the product asks for {collateral_text(product.collateral, 1)}; you offer {collateral_text(sorted(offered), 1)}",
                False,
            )
        )
        collateral_ok = False
    return fit, blockers, collateral_ok


def evaluate_product(
    product: Product,
    row: dict[str, Any],
    on: date,
    params: elig.FinanceParams,
) -> Explanation:
    """Eligibility of one enterprise for one product; raises NotEvaluable."""
    try:
        rule = elig.compile_product(product_terms(product), params)
    except elig.ProductRuleError as exc:
        raise elig.NotEvaluable(str(exc)) from None
    return elig.explain(rule, row, on)


def match_need(
    session: Session,
    need: Need,
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
    products: Sequence[Product] | None = None,
) -> MatchResult:
    """Rank the published products in force for a need, each with its reasons."""
    params = params or elig.default_params()
    on = on or today()
    if products is None:
        products = session.scalars(
            select(Product).where(Product.status == ProductStatus.published).order_by(Product.id)
        ).all()
    row = elig.enterprise_row(enterprise_values(session, need.credit_code))
    matches: list[Match] = []
    unevaluable: list[Unevaluable] = []
    for product in products:
        if not in_force(product, on):
            continue
        try:
            explanation = evaluate_product(product, row, on, params)
            lpr, rate = rate_on(product, on, params)
        except elig.NotEvaluable as exc:
            unevaluable.append(Unevaluable(product, str(exc)))
            continue
        fit, blockers, collateral_ok = fit_of(
            product, need.amount_fen, need.term_months, need.collateral
        )
        if rate is not None:
            fit.append(
                Reason(
                    f"年利率 {pct(rate)}(LPR {pct(lpr)} {'+' if (product.spread_bp or 0) >= 0 else '−'} {pct(abs(product.spread_bp or 0))})",
                    f"yearly rate {pct(rate)} (LPR {pct(lpr)} {'+' if (product.spread_bp or 0) >= 0 else '-'} {pct(abs(product.spread_bp or 0))})",
                    None,
                )
            )
        over = fee_over_cap(product.guarantee_fee_bp, on, params)
        if product.guarantee_fee_bp is not None:
            flag = fee_flag(product, on, params)
            fit.append(
                flag
                or Reason(
                    f"担保费率 {pct(product.guarantee_fee_bp)},符合(十八)不高于 {pct(params.fee_cap_bp(on))} 的要求",
                    f"guarantee fee {pct(product.guarantee_fee_bp)}, within the {pct(params.fee_cap_bp(on))} ceiling of article (十八)",
                    True,
                )
            )
        if explanation.result == "ineligible":
            failing = set(explanation.failing)
            for c in explanation.conditions:
                if c.id in failing:
                    blockers.append(Reason(c.reason_zh, c.reason_en, False))
            if not failing:
                blockers.append(
                    Reason("不符合产品准入条件", "not eligible for this product", False)
                )
        matches.append(
            Match(
                product,
                explanation,
                lpr,
                rate,
                product.guarantee_fee_bp,
                over,
                fit,
                blockers,
                collateral_ok,
            )
        )
    matches.sort(key=Match.sort_key)
    return MatchResult(on, matches, unevaluable)


# ------------------------------------------------------------------------------- lenders' view of needs


# A lender sees a need's (region, industry, size class) only as a cell that at least this many
# registered enterprises share, so the combination cannot single out who posted it.
MIN_CELL_SIZE = 10

# From most to least precise: (region code digits, industry code digits, size class shown?).
# Region goes county (6) → city (4) → province (2), industry class (4) → division (2), and
# whatever is still too rare is left out.
GENERALISATIONS: tuple[tuple[int | None, int | None, bool], ...] = (
    (6, 4, True),
    (4, 4, True),
    (6, 2, True),
    (4, 2, True),
    (4, 2, False),
    (2, 2, True),
    (2, 2, False),
    (4, None, False),
    (2, None, False),
    (None, None, False),
)


@dataclass(frozen=True)
class NeedCell:
    """What a lender is shown of a need's enterprise: generalised codes, possibly suppressed."""

    region_code: str | None
    industry_code: str | None
    size_class: str | None
    registry_count: int


def generalise_need(
    session: Session,
    need: Need,
    *,
    k: int = MIN_CELL_SIZE,
    memo: dict[tuple[str | None, str | None, str | None], int] | None = None,
) -> NeedCell:
    """The most precise (region, industry, size) of a need that k registered enterprises share."""
    memo = {} if memo is None else memo
    region, industry, size = need.region_code or "", need.industry_code or "", need.size_class
    for r_len, i_len, with_size in GENERALISATIONS:
        r = region[:r_len] if r_len is not None and len(region) >= r_len else None
        i = industry[:i_len] if i_len is not None and len(industry) >= i_len else None
        sz = size if with_size else None
        if (r_len is not None and r is None) or (i_len is not None and i is None):
            continue
        if with_size and sz is None:
            continue
        key = (r, i, sz)
        if key not in memo:
            memo[key] = ent_repo.count_in_cell(
                session, region_prefix=r, industry_prefix=i, size_class=sz, at_most=k
            )
        if memo[key] >= k:
            return NeedCell(r, i, sz, memo[key])
    return NeedCell(None, None, None, 0)


@dataclass
class NeedFit:
    """An open need that fits some of a lender's products (who posted it is not shown)."""

    need: Need
    products: list[tuple[Product, str]]
    shown: NeedCell = field(default_factory=lambda: NeedCell(None, None, None, 0))


def needs_for_lender(
    session: Session,
    institution: str,
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> list[NeedFit]:
    """Open needs in the lender's regions whose amount and term fit its products and whose
    enterprise is eligible or not yet known to be ineligible."""
    params = params or elig.default_params()
    on = on or today()
    products = [
        p
        for p in session.scalars(
            select(Product).where(
                Product.institution == institution, Product.status == ProductStatus.published
            )
        )
        if in_force(p, on)
    ]
    if not products:
        return []
    needs = session.scalars(
        select(Need).where(Need.status == "open").order_by(Need.id.desc())
    ).all()
    out = []
    memo: dict[tuple[str | None, str | None, str | None], int] = {}
    for need in needs:
        if need.deadline is not None and need.deadline < on:
            continue
        candidates = [
            p
            for p in products
            if (
                not p.region_prefixes
                or (need.region_code or "").startswith(tuple(p.region_prefixes))
            )
            and p.amount_min_fen <= need.amount_fen <= p.amount_max_fen
            and p.term_min_months <= need.term_months <= p.term_max_months
        ]
        if not candidates:
            continue
        result = match_need(session, need, params=params, on=on, products=candidates)
        fitting = [
            (m.product, m.eligibility) for m in result.matches if m.eligibility != "ineligible"
        ]
        if fitting:
            out.append(NeedFit(need, fitting, generalise_need(session, need, memo=memo)))
    return out


# ------------------------------------------------------------------------------- invitations


def invite_key(need_id: int, product: Product) -> str:
    """Dedupe key of a lender's invitation of a need to a product (any version of it)."""
    return f"finance:invite:need:{need_id}:product:{product.family_id or product.id}"


def invite_need(
    session: Session,
    user: User,
    need_id: int,
    product_id: int,
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> bool:
    """Invite an open need's enterprise to apply to one of the lender's products.

    The lender never learns who posted the need: the enterprise gets a notification with a link
    to its need, where the product is ranked with its reasons. Only needs the lender's view
    lists for that product can be invited, once per need and product. Returns False when the
    invitation had been sent before. Never commits.
    """
    if user.role != Role.bank or not user.institution:
        raise Forbidden("只有金融机构用户可以邀请", "only bank and guarantee users invite")
    product = own_product(session, user, product_id)
    fits = needs_for_lender(session, user.institution, params=params, on=on)
    fit = next((f for f in fits if f.need.id == need_id), None)
    if fit is None or all(p.id != product.id for p, _ in fit.products):
        # the same answer whether the need does not exist, is closed or does not fit
        raise NotFound("匹配的融资需求")
    from huiqi.notify.service import enqueue

    note = enqueue(
        session,
        credit_code=fit.need.credit_code,
        topic="financing",
        subject=f"{product.institution}的{product.name}可能适合您的融资需求",
        body=(
            f"{product.institution}认为其产品「{product.name}」可能适合您发布的融资需求"
            f"({wan(fit.need.amount_fen)},{fit.need.term_months} 个月)。"
            "对方不知道您是哪家企业;只有您提交申请并授权后,对方才能看到您的信息。"
            "点击链接查看该产品与您需求的匹配情况,并可一键申请。"
        ),
        link=f"/finance/needs/{fit.need.id}?product={product.id}#product-{product.id}",
        dedupe_key=invite_key(fit.need.id, product),
        deadline=fit.need.deadline,
        subject_en=f"{product.name} of {product.institution} may suit your financing need",
        body_en=(
            f"{product.institution} thinks its product “{product.name}” may suit the financing"
            f" need you posted ({format_fen_en(fit.need.amount_fen)}, {fit.need.term_months}"
            " months). It does not know who you are: it sees your data only once you apply and"
            " consent. Follow the link to see how the product fits your need and apply in one"
            " step."
        ),
    )
    return note is not None


def invited_needs(
    session: Session, institution: str, fits: Sequence[NeedFit]
) -> set[tuple[int, int]]:
    """(need id, product id) pairs of the listed fits the lender has already invited."""
    from huiqi.notify.models import Notification

    keys = {
        invite_key(f.need.id, p): (f.need.id, p.id)
        for f in fits
        for p, _ in f.products
        if p.institution == institution
    }
    if not keys:
        return set()
    sent = session.scalars(
        select(Notification.dedupe_key).where(Notification.dedupe_key.in_(list(keys)))
    )
    return {keys[k] for k in sent}
