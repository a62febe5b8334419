"""Financing matchmaking: publish products, post needs, match, apply in one step, follow up.

Every function takes the session first and never commits; the request or CLI job commits.
Money is integer fen, rates are integer basis points (1 bp = 0.01%).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.core import errors
from huiqi.core.clock import today
from huiqi.core.dates import add_working_days
from huiqi.core.db import utcnow
from huiqi.core.errors import DomainError
from huiqi.core.money import format_fen
from huiqi.enterprise import catalogue as ent_catalogue
from huiqi.enterprise import repository as ent_repo
from huiqi.finance import eligibility as elig
from huiqi.finance.models import (
    COLLATERAL_LABELS,
    FINAL_STATUSES,
    STATUS_LABELS,
    Application,
    ApplicationEvent,
    AppStatus,
    Collateral,
    Consent,
    Disclosure,
    Need,
    Product,
    ProductStatus,
)
from huiqi.finance.schemas import NeedIn, ProductIn
from huiqi.rules.evaluate import Explanation
from huiqi.rules.values import normalise_code

ELIGIBILITY_ORDER = {"eligible": 0, "unknown": 1, "ineligible": 2}
IDENTITY_FIELDS = ("credit_code", "name")


class FinanceError(DomainError):
    """A finance request was refused; zh and en say why."""

    def __init__(self, zh: str, en: str, problems: Sequence[str] = ()) -> None:
        self.zh = zh
        self.en = en
        super().__init__(zh, en, problems=problems)


class NotFound(FinanceError, errors.NotFound):
    """The object does not exist or is not visible to this user."""

    def __init__(self, what: str = "对象") -> None:
        super().__init__(f"{what}不存在或无权查看", "not found")


class Forbidden(FinanceError, errors.Forbidden):
    """The user's role may not do this."""


class InvalidInput(FinanceError, errors.Invalid):
    """The input breaks a rule of the domain."""


class TransitionError(FinanceError, errors.Conflict):
    """The application's state does not allow that step."""


def lender_owns(user: User, institution: str) -> bool:
    """The finance object check: a bank user acts only for its own institution's objects.

    Administrators oversee lenders but never act as one, so they are not owners here.
    """
    return user.role == Role.bank and can_access(scope_of(user), institution=institution)


@dataclass(frozen=True)
class Reason:
    """One reason in Chinese and English; ok is None for a neutral remark."""

    zh: str
    en: str
    ok: bool | None = None


# ------------------------------------------------------------------------------- display helpers


def pct(bp: int | None) -> str:
    """Basis points as a percentage: 345 → '3.45%'."""
    if bp is None:
        return "—"
    return f"{(Decimal(bp) / 100).quantize(Decimal('0.01'))}%"


def wan(fen: int) -> str:
    """Money in 万元 for reasons."""
    return format_fen(fen, "wan")


def collateral_text(items: Iterable[str], lang: int = 0) -> str:
    """Collateral kinds as words (lang 0 = Chinese, 1 = English)."""
    sep = "、" if lang == 0 else ", "
    return sep.join(COLLATERAL_LABELS.get(c, (c, c))[lang] for c in items) or (
        "无" if lang == 0 else "none"
    )


def shareable_fields() -> list[ent_catalogue.Field]:
    """Profile fields an enterprise may share with a lender (identity is always part of an application)."""
    return [f for f in ent_catalogue.catalogue().contract if f.name not in IDENTITY_FIELDS]


def _shareable_names() -> set[str]:
    return {f.name for f in shareable_fields()}


# ------------------------------------------------------------------------------- products


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
    unknown = sorted(set(data.required_fields) - _shareable_names())
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


def _own_product(session: Session, user: User, product_id: int) -> Product:
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
    current = _own_product(session, user, product_id)
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
    product = _own_product(session, user, product_id)
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


# ------------------------------------------------------------------------------- needs


def enterprise_values(session: Session, credit_code: str) -> dict[str, Any] | None:
    """The enterprise's current field-contract row, or None when it is not in the registry."""
    row = ent_repo.current_row(session, credit_code)
    return None if row is None else dict(row._mapping)


def post_need(
    session: Session,
    user: User,
    data: NeedIn,
    *,
    on: date | None = None,
    idempotency_key: str | None = None,
) -> Need:
    """Post an enterprise's financing need; region, industry and size are taken from the registry.

    With an idempotency key, a repeated submission (a double click, a client's retry, twenty
    parallel requests) returns the need the first one created instead of posting another.
    """
    if user.role != Role.enterprise or not user.credit_code:
        raise Forbidden(
            "只有企业用户可以发布融资需求", "only enterprise users post financing needs"
        )
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if not key or len(key) > 64 or not key.isascii() or not key.isprintable():
            raise InvalidInput(
                "幂等键须为 1–64 个可打印 ASCII 字符",
                "the idempotency key must be 1–64 printable ASCII characters",
            )
        existing = _need_by_key(session, user.credit_code, key)
        if existing is not None:
            return existing
        try:
            with session.begin_nested():
                return _insert_need(session, user, data, on, key)
        except IntegrityError:
            # A parallel submission with the same key won the insert; answer with its need.
            found = _need_by_key(session, user.credit_code, key)
            if found is None:
                raise
            return found
    return _insert_need(session, user, data, on, None)


def _need_by_key(session: Session, credit_code: str, key: str) -> Need | None:
    return session.scalar(
        select(Need).where(Need.credit_code == credit_code, Need.idempotency_key == key)
    )


def _insert_need(
    session: Session, user: User, data: NeedIn, on: date | None, key: str | None
) -> Need:
    """Check and insert one need (flushed, not committed)."""
    assert user.credit_code is not None
    on = on or today()
    if data.deadline is not None and data.deadline < on:
        raise InvalidInput(
            f"期望放款日期 {data.deadline} 早于今天 {on}",
            f"the deadline {data.deadline} is before today {on}",
        )
    values = enterprise_values(session, user.credit_code) or {}
    need = Need(
        credit_code=user.credit_code,
        amount_fen=data.amount_fen,
        term_months=data.term_months,
        purpose=data.purpose.strip(),
        collateral=[c.value for c in dict.fromkeys(data.collateral)] or [Collateral.none.value],
        deadline=data.deadline,
        first_loan=data.first_loan,
        source_rule_id=data.source_rule_id,
        region_code=values.get("region_code"),
        industry_code=values.get("industry_code"),
        size_class=values.get("size_class"),
        status="open",
        idempotency_key=key,
        created_by=user.id,
    )
    session.add(need)
    session.flush()
    return need


def get_need(session: Session, user: User, need_id: int) -> Need:
    """A need of the user's own enterprise (officers and administrators see all)."""
    need = session.get(Need, need_id)
    if need is None:
        raise NotFound("融资需求")
    if user.role == Role.enterprise and need.credit_code == user.credit_code:
        return need
    if user.role in (Role.officer, Role.admin):
        return need
    raise NotFound("融资需求")


def needs_of(session: Session, credit_code: str) -> list[Need]:
    """An enterprise's needs, newest first."""
    return list(
        session.scalars(
            select(Need).where(Need.credit_code == credit_code).order_by(Need.id.desc())
        )
    )


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


# ------------------------------------------------------------------------------- applications


@dataclass
class ApplyOutcome:
    """What happened for one product of a one-step application."""

    product_id: int
    outcome: Literal["created", "existing", "refused"]
    application: Application | None
    reasons: list[Reason]


def _due(params: elig.FinanceParams, product: Product, status: str, on: date) -> date | None:
    """Deadline of the next step, counted in working days on the official calendar."""
    if status == AppStatus.submitted:
        return add_working_days(on, params.count_on("finance_accept_working_days", on))
    if status == AppStatus.accepted:
        return add_working_days(on, product.decision_days)
    if status == AppStatus.approved:
        return add_working_days(on, params.count_on("finance_disburse_working_days", on))
    return None


def _event(
    session: Session,
    app: Application,
    on: date,
    *,
    kind: str,
    actor: User | None,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> ApplicationEvent:
    event = ApplicationEvent(
        application_id=app.id,
        on=on,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.id if actor else None,
        actor_role=actor.role if actor else None,
        note=note,
        due_on=app.due_on,
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def _notify(session: Session, app: Application, key: str, subject: str, body: str) -> None:
    """Tell the enterprise through the push channels (inbox, e-mail, webhook, SMS)."""
    from huiqi.notify.service import enqueue

    enqueue(
        session,
        credit_code=app.credit_code,
        topic="financing",
        subject=subject,
        body=body,
        link=f"/finance/applications/{app.id}",
        dedupe_key=f"finance:application:{app.id}:{key}",
        deadline=app.due_on,
    )


def _notify_lender(session: Session, app: Application, key: str, subject: str, body: str) -> None:
    """Tell every user of the application's lender (inbox, and e-mail when the account has one).

    The enterprise's identity is left out of the message: it travels by e-mail, and the
    application page shows the lender what it may see.
    """
    from huiqi.notify.service import enqueue_institution

    enqueue_institution(
        session,
        institution=app.institution,
        topic="financing",
        subject=subject,
        body=body,
        link=f"/finance/applications/{app.id}",
        dedupe_key=f"finance:lender:{app.id}:{key}",
        deadline=app.due_on,
    )


def apply(
    session: Session,
    user: User,
    need_id: int,
    product_ids: Sequence[int],
    fields: Sequence[str],
    *,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
    per_product: Mapping[int, Sequence[str]] | None = None,
) -> list[ApplyOutcome]:
    """Send one need to several products at once, sharing the chosen fields with each lender.

    With `per_product` the enterprise consents per product: each lender receives only the
    fields ticked for its product (products left out of it share `fields`). Submitting again
    finds the existing application (one per need × product).
    """
    if user.role != Role.enterprise:
        raise Forbidden("只有企业用户可以提交融资申请", "only enterprise users apply")
    params = params or elig.default_params()
    on = on or today()
    need = get_need(session, user, need_id)
    if need.status != "open":
        raise InvalidInput("该融资需求已关闭", "this need is closed")
    chosen = list(dict.fromkeys(fields))
    consented = {pid: list(dict.fromkeys(names)) for pid, names in (per_product or {}).items()}
    unknown = sorted(
        set(chosen).union(*consented.values()) - _shareable_names()
        if consented
        else set(chosen) - _shareable_names()
    )
    if unknown:
        raise InvalidInput(
            f"不能共享未知字段:{', '.join(unknown)}",
            f"unknown fields to share: {', '.join(unknown)}",
        )
    ids = list(dict.fromkeys(product_ids))
    products = [p for p in (session.get(Product, i) for i in ids) if p is not None]
    result = match_need(session, need, params=params, on=on, products=products)
    matches = result.by_product()
    dead = {u.product.id: u.reason for u in result.unevaluable}
    labels = {f.name: f.zh for f in shareable_fields()}
    out: list[ApplyOutcome] = []
    for pid in ids:
        existing = _application_of_family(session, need.id, pid)
        if existing is not None:
            out.append(
                ApplyOutcome(
                    pid,
                    "existing",
                    existing,
                    [
                        Reason(
                            "已提交过,未重复创建", "already submitted; no duplicate created", None
                        )
                    ],
                )
            )
            continue
        product = session.get(Product, pid)
        if (
            product is None
            or product.status != ProductStatus.published
            or (pid not in matches and pid not in dead)
        ):
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            "产品不存在、已下架或不在有效期",
                            "the product does not exist, is withdrawn or not in force",
                            False,
                        )
                    ],
                )
            )
            continue
        if pid in dead:
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            f"产品暂时无法评估:{dead[pid]}",
                            f"the product cannot be evaluated: {dead[pid]}",
                            False,
                        )
                    ],
                )
            )
            continue
        match = matches[pid]
        if match.blockers:
            out.append(ApplyOutcome(pid, "refused", None, list(match.blockers)))
            continue
        mine = consented.get(pid, chosen)
        missing = [f for f in product.required_fields if f not in mine]
        if missing:
            names = "、".join(labels.get(f, f) for f in missing)
            out.append(
                ApplyOutcome(
                    pid,
                    "refused",
                    None,
                    [
                        Reason(
                            f"该产品需要共享:{names}",
                            f"the product needs these fields shared: {', '.join(missing)}",
                            False,
                        )
                    ],
                )
            )
            continue
        app = Application(
            need_id=need.id,
            product_id=pid,
            credit_code=need.credit_code,
            institution=product.institution,
            status=AppStatus.submitted.value,
            amount_fen=need.amount_fen,
            term_months=need.term_months,
            eligibility=match.eligibility,
            lpr_bp=match.lpr_bp,
            rate_bp=match.rate_bp,
            guarantee_fee_bp=match.fee_bp,
            submitted_on=on,
        )
        app.due_on = _due(params, product, AppStatus.submitted, on)
        try:
            with session.begin_nested():
                session.add(app)
                session.flush()
        except IntegrityError:
            # A concurrent submission of the same need × product won the race.
            existing = session.scalar(
                select(Application).where(
                    Application.need_id == need.id, Application.product_id == pid
                )
            )
            out.append(
                ApplyOutcome(
                    pid,
                    "existing",
                    existing,
                    [
                        Reason(
                            "已提交过,未重复创建", "already submitted; no duplicate created", None
                        )
                    ],
                )
            )
            continue
        for name in mine:
            session.add(Consent(application_id=app.id, field=name, granted_by=user.id))
        _event(
            session,
            app,
            on,
            kind="transition",
            actor=user,
            to_status=AppStatus.submitted.value,
            detail={"fields": chosen},
        )
        _notify(
            session,
            app,
            "submitted",
            f"融资申请已提交:{product.name}",
            f"您的融资申请({wan(app.amount_fen)},{app.term_months} 个月)已提交至{product.institution},"
            f"受理时限 {app.due_on}。共享字段:{'、'.join(labels.get(f, f) for f in chosen) or '无'}。",
        )
        _notify_lender(
            session,
            app,
            "submitted",
            f"新的融资申请 #{app.id}:{product.name}",
            f"贵机构的产品「{product.name}」(第 {product.version} 版)收到新的融资申请 #{app.id}:"
            f"{wan(app.amount_fen)},{app.term_months} 个月。请于 {app.due_on} 前受理"
            f"(工作日计算)。企业授权共享 {len(chosen)} 项数据,请在申请页查看。",
        )
        out.append(
            ApplyOutcome(
                pid,
                "created",
                app,
                [
                    Reason(
                        f"已提交至{product.institution}",
                        f"submitted to {product.institution}",
                        True,
                    )
                ],
            )
        )
    return out


def _application_of_family(session: Session, need_id: int, product_id: int) -> Application | None:
    """The need's application to any version of the product, if there is one."""
    product = session.get(Product, product_id)
    if product is None:
        return None
    family = product.family_id or product.id
    return session.scalar(
        select(Application)
        .join(Product, Product.id == Application.product_id)
        .where(
            Application.need_id == need_id,
            (Product.family_id == family) | (Product.id == family),
        )
        .order_by(Application.id)
        .limit(1)
    )


def get_application(session: Session, user: User, app_id: int) -> Application:
    """An application visible to the user: the enterprise's own, the addressed lender's, or any for officers."""
    app = session.get(Application, app_id)
    if app is None:
        raise NotFound("融资申请")
    if user.role == Role.enterprise and app.credit_code == user.credit_code:
        return app
    if user.role == Role.bank and app.institution == user.institution:
        return app
    if user.role in (Role.officer, Role.admin):
        return app
    raise NotFound("融资申请")


def applications_for(session: Session, user: User) -> list[Application]:
    """Applications the user may see, newest first."""
    q = select(Application).order_by(Application.id.desc())
    if user.role == Role.enterprise:
        q = q.where(Application.credit_code == user.credit_code)
    elif user.role == Role.bank:
        q = q.where(Application.institution == user.institution)
    elif user.role not in (Role.officer, Role.admin):
        return []
    return list(session.scalars(q))


ACTIONS: dict[str, tuple[frozenset[str], AppStatus, str]] = {
    "accept": (frozenset({AppStatus.submitted}), AppStatus.accepted, Role.bank),
    "approve": (frozenset({AppStatus.accepted}), AppStatus.approved, Role.bank),
    "decline": (
        frozenset({AppStatus.submitted, AppStatus.accepted}),
        AppStatus.declined,
        Role.bank,
    ),
    "disburse": (frozenset({AppStatus.approved}), AppStatus.disbursed, Role.bank),
    "withdraw": (
        frozenset({AppStatus.submitted, AppStatus.accepted, AppStatus.approved}),
        AppStatus.withdrawn,
        Role.enterprise,
    ),
}
ACTION_LABELS = {
    "accept": ("受理", "accept"),
    "approve": ("批准", "approve"),
    "decline": ("拒绝", "decline"),
    "disburse": ("放款", "disburse"),
    "withdraw": ("撤回", "withdraw"),
}


def allowed_actions(app: Application, user: User) -> list[str]:
    """The steps this user may take on the application now."""
    return [
        a
        for a, (sources, _to, role) in ACTIONS.items()
        if app.status in sources
        and user.role == role
        and (
            lender_owns(user, app.institution)
            if role == Role.bank
            else can_access(scope_of(user), credit_code=app.credit_code)
        )
    ]


def transition(
    session: Session,
    user: User,
    app_id: int,
    action: str,
    *,
    reason: str | None = None,
    amount_fen: int | None = None,
    rate_bp: int | None = None,
    params: elig.FinanceParams | None = None,
    on: date | None = None,
) -> Application:
    """Move an application one step; illegal steps are refused with the allowed ones named."""
    params = params or elig.default_params()
    on = on or today()
    app = get_application(session, user, app_id)
    if action not in ACTIONS:
        raise InvalidInput(f"未知操作 {action!r}", f"unknown action {action!r}")
    sources, target, role = ACTIONS[action]
    if user.role != role:
        raise Forbidden(
            f"「{ACTION_LABELS[action][0]}」只能由{'金融机构' if role == Role.bank else '申请企业'}执行",
            f"only the {'lender' if role == Role.bank else 'applicant'} may {action}",
        )
    if app.status not in sources:
        now_zh, now_en = STATUS_LABELS[app.status]
        allowed = allowed_actions(app, user)
        raise TransitionError(
            f"申请当前为「{now_zh}」,不能「{ACTION_LABELS[action][0]}」;"
            f"可执行:{'、'.join(ACTION_LABELS[a][0] for a in allowed) or '无(已结束)'}",
            f"the application is {now_en.lower()}: cannot {action}; allowed: {', '.join(allowed) or 'none (closed)'}",
        )
    product = app.product
    note = (reason or "").strip()
    if action == "decline" and not note:
        raise InvalidInput("拒绝须说明理由", "a decline needs a reason")
    if action == "approve":
        amount = amount_fen if amount_fen is not None else app.amount_fen
        if not product.amount_min_fen <= amount <= product.amount_max_fen:
            raise InvalidInput(
                f"批准金额 {wan(amount)} 不在产品额度 {wan(product.amount_min_fen)}–{wan(product.amount_max_fen)} 内",
                f"approved amount {wan(amount)} is outside the product range",
            )
        if amount > app.amount_fen:
            raise InvalidInput(
                f"批准金额 {wan(amount)} 高于申请金额 {wan(app.amount_fen)}",
                f"approved amount {wan(amount)} is above the amount applied for",
            )
        app.approved_amount_fen = amount
        app.approved_rate_bp = rate_bp if rate_bp is not None else app.rate_bp
        app.decided_on = on
    elif action == "decline":
        app.decline_reason = note
        app.decided_on = on
        # A lender that declines has no more use for the enterprise's data: access ends.
        now = utcnow()
        for consent in active_consents(session, app):
            consent.revoked_at = now
            consent.revoked_by = user.id
    elif action == "disburse":
        approved = app.approved_amount_fen or app.amount_fen
        amount = amount_fen if amount_fen is not None else approved
        if amount > approved:
            raise InvalidInput(
                f"放款金额 {wan(amount)} 高于批准金额 {wan(approved)}",
                f"disbursed amount {wan(amount)} is above the approved {wan(approved)}",
            )
        app.disbursed_amount_fen = amount
        app.disbursed_on = on
    elif action == "withdraw":
        # Withdrawing ends the request, so the lender's access to the shared fields ends too.
        now = utcnow()
        for consent in active_consents(session, app):
            consent.revoked_at = now
            consent.revoked_by = user.id
    old = app.status
    app.status = target.value
    app.due_on = _due(params, product, target, on)
    app.updated_at = utcnow()
    _event(
        session,
        app,
        on,
        kind="transition",
        actor=user,
        from_status=old,
        to_status=target.value,
        note=note,
    )
    _notify_step(session, app, action)
    if action == "withdraw":
        _notify_lender(
            session,
            app,
            "withdrawn",
            f"融资申请 #{app.id} 已被企业撤回:{product.name}",
            f"申请 #{app.id}({wan(app.amount_fen)},{app.term_months} 个月)已由企业于 {on} 撤回,"
            "贵机构对其共享数据的查看权限同时终止,无需继续办理。",
        )
    return app


def _notify_step(session: Session, app: Application, action: str) -> None:
    """The enterprise's notice for one step."""
    name = app.product.name
    if action == "accept":
        text = (
            f"融资申请已受理:{name}",
            f"{app.institution}已受理您的申请,审批时限 {app.due_on}。",
        )
    elif action == "approve":
        text = (
            f"融资申请已批准:{name}",
            f"{app.institution}批准 {wan(app.approved_amount_fen or 0)},年利率 {pct(app.approved_rate_bp)},放款时限 {app.due_on}。",
        )
    elif action == "decline":
        text = (
            f"融资申请未获批准:{name}",
            f"{app.institution}未批准您的申请。理由:{app.decline_reason}",
        )
    elif action == "disburse":
        text = (
            f"贷款已发放:{name}",
            f"{app.institution}已于 {app.disbursed_on} 发放 {wan(app.disbursed_amount_fen or 0)}。",
        )
    else:
        text = (
            f"融资申请已撤回:{name}",
            f"您已撤回向{app.institution}提交的申请,对方不再能查看您的共享数据。",
        )
    _notify(session, app, action, *text)


# ------------------------------------------------------------------------------- consent


def active_consents(session: Session, app: Application) -> list[Consent]:
    """Consents of an application not revoked."""
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.application_id == app.id, Consent.revoked_at.is_(None))
            .order_by(Consent.id)
        )
    )


def revoke_consent(
    session: Session, user: User, app_id: int, fields: Sequence[str] = (), *, on: date | None = None
) -> list[str]:
    """Stop sharing some (or all) fields of an application with its lender; returns those revoked."""
    on = on or today()
    app = get_application(session, user, app_id)
    if user.role != Role.enterprise:
        raise Forbidden("只有申请企业可以撤回授权", "only the applicant may revoke consent")
    active = active_consents(session, app)
    wanted = set(fields) if fields else {c.field for c in active}
    unknown = sorted(wanted - {c.field for c in active})
    if unknown:
        raise InvalidInput(
            f"这些字段未在共享中:{', '.join(unknown)}",
            f"not currently shared: {', '.join(unknown)}",
        )
    now = utcnow()
    revoked = []
    for c in active:
        if c.field in wanted:
            c.revoked_at = now
            c.revoked_by = user.id
            revoked.append(c.field)
    if revoked:
        event = _event(
            session,
            app,
            on,
            kind="consent",
            actor=user,
            note="revoked",
            detail={"revoked": revoked},
        )
        labels = {f.name: f.zh for f in shareable_fields()}
        _notify_lender(
            session,
            app,
            f"consent:{event.id}",
            f"融资申请 #{app.id} 的数据授权已部分撤回",
            f"企业于 {on} 撤回了申请 #{app.id}({app.product.name})以下数据的共享授权:"
            f"{'、'.join(labels.get(f, f) for f in revoked)}。这些数据自即刻起不再向贵机构显示。",
        )
    return revoked


@dataclass(frozen=True)
class SharedField:
    """One profile field as the lender may see it."""

    name: str
    zh: str
    en: str
    shared: bool
    value: Any
    shown: str


CLOSED_TO_LENDER = frozenset({AppStatus.declined, AppStatus.withdrawn})


def shared_view(
    session: Session, user: User, app: Application, *, record: bool = True
) -> list[SharedField]:
    """The fields the lender may see now; only consented, unrevoked fields carry a value.

    A lender's view is recorded as a disclosure. The enterprise sees which fields it shares.
    """
    cat = ent_catalogue.catalogue()
    values = enterprise_values(session, app.credit_code) or {}
    consented = {c.field for c in active_consents(session, app)}
    if user.role == Role.bank and app.status in CLOSED_TO_LENDER:
        # Declined or withdrawn: the lender sees no shared value, whatever consents remain.
        consented = set()
    out: list[SharedField] = []
    for name in IDENTITY_FIELDS:
        f = cat[name]
        value = values.get(name) if name != "credit_code" else app.credit_code
        out.append(SharedField(name, f.zh, f.en, True, value, ent_catalogue.display(f, value)))
    for f in shareable_fields():
        shared = f.name in consented
        value = values.get(f.name) if shared else None
        out.append(
            SharedField(
                f.name, f.zh, f.en, shared, value, ent_catalogue.display(f, value) if shared else ""
            )
        )
    if record and user.role == Role.bank:
        session.add(Disclosure(application_id=app.id, user_id=user.id, fields=sorted(consented)))
    return out


def events_of(session: Session, app: Application) -> list[ApplicationEvent]:
    """Recorded steps of an application, oldest first."""
    return list(
        session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == app.id)
            .order_by(ApplicationEvent.id)
        )
    )


# ------------------------------------------------------------------------------- reminders


def remind(session: Session, *, on: date | None = None) -> list[Application]:
    """Notify about open applications past their working-day deadline (once per deadline)."""
    on = on or today()
    open_states = [s.value for s in AppStatus if s not in FINAL_STATUSES]
    overdue = session.scalars(
        select(Application)
        .where(Application.status.in_(open_states), Application.due_on < on)
        .order_by(Application.id)
    ).all()
    out = []
    for app in overdue:
        if app.reminded_for == app.due_on:
            continue
        app.reminded_for = app.due_on
        step = {"submitted": "受理", "accepted": "审批", "approved": "放款"}[app.status]
        _event(session, app, on, kind="reminder", actor=None, note=f"overdue since {app.due_on}")
        _notify(
            session,
            app,
            f"overdue:{app.status}:{app.due_on}",
            f"融资申请超期提醒:{app.product.name}",
            f"{app.institution}应于 {app.due_on} 前完成{step},现已超期;该申请已在机构工作台标注为超期。",
        )
        _notify_lender(
            session,
            app,
            f"overdue:{app.status}:{app.due_on}",
            f"融资申请 #{app.id} 已超期:{app.product.name}",
            f"申请 #{app.id} 应于 {app.due_on} 前完成{step}(按工作日计算),现已超期,请尽快办理。",
        )
        out.append(app)
    return out


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
    product = _own_product(session, user, product_id)
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
