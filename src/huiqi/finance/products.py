"""Lenders' financing products: publish, revise as a new version, withdraw, show."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core.clock import today
from huiqi.core.db import utcnow
from huiqi.finance import eligibility as elig
from huiqi.finance.base import (
    Forbidden,
    InvalidInput,
    NotFound,
    Reason,
    TransitionError,
    lender_owns,
    pct,
    shareable_names,
)
from huiqi.finance.models import (
    Product,
    ProductStatus,
)
from huiqi.finance.schemas import ProductIn
from huiqi.rules.values import normalise_code


def product_terms(product: Product) -> elig.ProductTerms:
    """The inputs of a stored product's eligibility rule."""
    return elig.ProductTerms(
        rule_id=f"fin-product-{product.id}",
        name=product.name,
        institution=product.institution,
        kind=product.kind,
        size_classes=list(product.size_classes or []),
        industry_prefixes=list(product.industry_prefixes or []),
        region_prefixes=list(product.region_prefixes or []),
        conditions_yaml=product.conditions_yaml or "",
        legal_basis=list(product.legal_basis or []),
        valid_from=product.valid_from,
        valid_to=product.valid_to,
    )


def rate_on(
    product: Product, on: date, params: elig.FinanceParams | None = None
) -> tuple[int | None, int | None]:
    """(LPR, rate) in basis points on a date; raises NotEvaluable when the LPR has no value then."""
    params = params or elig.default_params()
    if product.rate_base is None:
        return None, None
    lpr = params.bp_on(product.rate_base, on)
    if lpr is None:
        raise elig.NotEvaluable(f"参数 {product.rate_base} 在 {on} 无取值 / no LPR value on {on}")
    return lpr, lpr + (product.spread_bp or 0)


def fee_over_cap(fee_bp: int | None, on: date, params: elig.FinanceParams | None = None) -> bool:
    """Whether a guarantee fee is above the article (十八) ceiling in force on the date."""
    params = params or elig.default_params()
    cap = params.fee_cap_bp(on)
    return fee_bp is not None and cap is not None and fee_bp > cap


def fee_flag(product: Product, on: date, params: elig.FinanceParams | None = None) -> Reason | None:
    """The article (十八) flag of a product whose guarantee fee is above the ceiling."""
    params = params or elig.default_params()
    if not fee_over_cap(product.guarantee_fee_bp, on, params):
        return None
    cap = params.fee_cap_bp(on)
    return Reason(
        f"担保费率 {pct(product.guarantee_fee_bp)} 高于甘工信发〔2020〕351号(十八)要求的 {pct(cap)}",
        f"guarantee fee {pct(product.guarantee_fee_bp)} is above the {pct(cap)} ceiling of article (十八)",
        False,
    )


def publish_product(
    session: Session,
    user: User,
    data: ProductIn,
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> Product:
    """Publish a product for the user's institution after checking its eligibility rule."""
    if user.role != Role.bank or not user.institution:
        raise Forbidden(
            "只有金融机构用户可以发布产品", "only bank and guarantee users publish products"
        )
    return create_product(session, user.institution, data, created_by=user.id, params=params, on=on)


def create_product(
    session: Session,
    institution: str,
    data: ProductIn,
    *,
    created_by: int | None = None,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
    previous: Product | None = None,
) -> Product:
    """Store a product of an institution once its eligibility rule and rate check out.

    With `previous`, the product is that product's next version.
    """
    on = on or today()
    params = params or elig.default_params()
    unknown = sorted(set(data.required_fields) - shareable_names())
    if unknown:
        raise InvalidInput(
            f"所需数据中有未知字段:{', '.join(unknown)}",
            f"unknown required fields: {', '.join(unknown)}",
        )
    decision_days = data.decision_days or params.count_on("finance_decision_working_days", on)
    product = Product(
        institution=institution,
        provider_kind=data.provider_kind.value,
        name=data.name.strip(),
        kind=data.kind.value,
        description=data.description.strip(),
        amount_min_fen=data.amount_min_fen,
        amount_max_fen=data.amount_max_fen,
        term_min_months=data.term_min_months,
        term_max_months=data.term_max_months,
        rate_base=data.rate_base,
        spread_bp=data.spread_bp,
        guarantee_fee_bp=data.guarantee_fee_bp,
        collateral=[c.value for c in dict.fromkeys(data.collateral)],
        size_classes=list(dict.fromkeys(data.size_classes)),
        # Full-width digits (６２) are stored as the ASCII codes they stand for.
        industry_prefixes=[normalise_code(p) for p in data.industry_prefixes if p.strip()],
        region_prefixes=[normalise_code(p) for p in data.region_prefixes if p.strip()],
        required_fields=list(dict.fromkeys(data.required_fields)),
        conditions_yaml=data.conditions_yaml.strip("\n"),
        legal_basis=[b.model_dump() for b in data.legal_basis],
        decision_days=decision_days,
        valid_from=data.valid_from or on,
        valid_to=data.valid_to,
        status=ProductStatus.published.value,
        created_by=created_by,
        family_id=None if previous is None else (previous.family_id or previous.id),
        version=1 if previous is None else previous.version + 1,
    )
    try:
        elig.compile_product(product_terms_for_new(product), params)
    except elig.ProductRuleError as exc:
        raise InvalidInput(
            "准入条件有误", "the eligibility conditions are refused", exc.problems
        ) from None
    if product.rate_base is not None:
        try:
            rate_on(product, product.valid_from, params)
        except elig.NotEvaluable as exc:
            raise InvalidInput(
                f"利率无法计算:{exc}", f"the rate cannot be computed: {exc}"
            ) from None
    session.add(product)
    session.flush()
    if product.family_id is None:
        product.family_id = product.id
    return product


def product_terms_for_new(product: Product) -> elig.ProductTerms:
    """Eligibility inputs of a product that has no id yet."""
    return dataclasses.replace(product_terms(product), rule_id="fin-product-new")


def own_product(session: Session, user: User, product_id: int) -> Product:
    """A product of the bank user's own institution; anything else is 'not found'."""
    product = session.get(Product, product_id)
    if product is None or not lender_owns(user, product.institution):
        raise NotFound("产品")
    return product


def _refuse_superseded(product: Product, session: Session) -> None:
    if product.status == ProductStatus.superseded:
        latest = latest_version(session, product)
        raise TransitionError(
            f"这是旧版本(第 {product.version} 版),请操作最新的第 {latest.version} 版(#{latest.id})",
            f"this is version {product.version}; act on the latest, version {latest.version} (#{latest.id})",
        )


def latest_version(session: Session, product: Product) -> Product:
    """The newest version of a product (itself when it is the newest)."""
    family = product.family_id or product.id
    newest = session.scalar(
        select(Product).where(Product.family_id == family).order_by(Product.version.desc()).limit(1)
    )
    return newest or product


def versions_of(session: Session, product: Product) -> list[Product]:
    """Every version of a product, oldest first."""
    family = product.family_id or product.id
    return list(
        session.scalars(
            select(Product).where(Product.family_id == family).order_by(Product.version)
        )
    )


def revise_product(
    session: Session,
    user: User,
    product_id: int,
    data: ProductIn,
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> Product:
    """Publish edited terms as the product's next version; the edited version is superseded.

    Applications made against the old version keep it (its terms, rate and deadlines); new
    matching and applications use the new one. A withdrawn product is edited the same way and
    the new version is published again.
    """
    current = own_product(session, user, product_id)
    _refuse_superseded(current, session)
    new = create_product(
        session,
        current.institution,
        data,
        created_by=user.id,
        params=params,
        on=on,
        previous=current,
    )
    current.status = ProductStatus.superseded.value
    current.updated_at = utcnow()
    return new


def withdraw_product(session: Session, user: User, product_id: int) -> Product:
    """Take a product off the shelf (its applications continue)."""
    product = own_product(session, user, product_id)
    _refuse_superseded(product, session)
    product.status = ProductStatus.withdrawn.value
    product.updated_at = utcnow()
    return product


def visible_products(
    session: Session, user: User | None, *, on: date | None = None
) -> list[Product]:
    """Published products in force; a bank user also sees its own withdrawn ones."""
    on = on or today()
    rows = session.scalars(
        select(Product)
        .where(Product.status != ProductStatus.superseded)
        .order_by(Product.institution, Product.id)
    ).all()
    out = []
    for p in rows:
        own = user is not None and user.role == Role.bank and p.institution == user.institution
        live = p.status == ProductStatus.published and in_force(p, on)
        if live or own:
            out.append(p)
    return out


def in_force(product: Product, on: date) -> bool:
    """Whether the product's validity window covers the date."""
    return product.valid_from <= on and (product.valid_to is None or on <= product.valid_to)


def get_product(session: Session, user: User | None, product_id: int) -> Product:
    """A product visible to the user; older versions stay readable (applications refer to them)."""
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("产品")
    own = user is not None and user.role == Role.bank and product.institution == user.institution
    if product.status == ProductStatus.withdrawn and not own:
        raise NotFound("产品")
    return product
