"""Financing pages (/finance/...) and JSON API (/api/v1/finance/...)."""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts.models import Role, User
from huiqi.core.bounds import INT64_MAX, Int64
from huiqi.core.money import MoneyError, format_fen, to_fen
from huiqi.finance import service as svc
from huiqi.finance.models import (
    COLLATERAL_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    Application,
    Collateral,
    Need,
    Product,
    ProductKind,
)
from huiqi.finance.schemas import (
    ApplicationOut,
    ApplyIn,
    ApplyOutcomeOut,
    EventOut,
    InviteIn,
    MatchesOut,
    MatchOut,
    NeedIn,
    NeedOut,
    ProductIn,
    ProductOut,
    ReasonOut,
    RevokeIn,
    SharedFieldOut,
    TransitionIn,
    UnevaluableOut,
)
from huiqi.finance.stats import finance_stats
from huiqi.web.deps import current_user, get_session, render, require_roles

router = APIRouter()

SIZE_LABELS = {
    "large": ("大型", "large"),
    "medium": ("中型", "medium"),
    "small": ("小型", "small"),
    "micro": ("微型", "micro"),
}
RESULT_LABELS = {
    "eligible": ("符合条件", "Eligible"),
    "unknown": ("待补充数据", "Needs data"),
    "ineligible": ("不符合", "Not eligible"),
}


def _helpers() -> dict[str, Any]:
    """Labels and formatters the finance templates share."""
    return {
        "wan": lambda fen: format_fen(fen, "wan"),
        "yuan": format_fen,
        "pct": svc.pct,
        "share": _share,
        "bpd": _bpd,
        "wan_num": lambda fen: f"{(Decimal(fen) / 1_000_000).normalize():f}",
        "KIND_LABELS": KIND_LABELS,
        "STATUS_LABELS": STATUS_LABELS,
        "COLLATERAL_LABELS": COLLATERAL_LABELS,
        "SIZE_LABELS": SIZE_LABELS,
        "RESULT_LABELS": RESULT_LABELS,
        "today": svc.today(),
    }


def _share(value: Decimal | None) -> str:
    """A ratio as a percentage with one decimal: 0.5 → '50.0%'."""
    return "—" if value is None else f"{(value * 100).quantize(Decimal('0.1'))}%"


def _bpd(value: Decimal | None) -> str:
    """A Decimal number of basis points as a percentage: 345.5 → '3.46%'."""
    return "—" if value is None else f"{(value / 100).quantize(Decimal('0.01'))}%"


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    return render(request, name, status_code=status_code, **_helpers(), **context)


# ------------------------------------------------------------------------------- JSON shapes


def product_out(product: Product, on: date | None = None) -> ProductOut:
    """A product with today's rate and the article (十八) flag."""
    on = on or svc.today()
    try:
        lpr, rate = svc.rate_on(product, on)
    except svc.elig.NotEvaluable:
        lpr, rate = None, None
    return ProductOut(
        id=product.id,
        institution=product.institution,
        provider_kind=product.provider_kind,
        name=product.name,
        kind=product.kind,
        description=product.description,
        amount_min_fen=product.amount_min_fen,
        amount_max_fen=product.amount_max_fen,
        term_min_months=product.term_min_months,
        term_max_months=product.term_max_months,
        rate_base=product.rate_base,
        spread_bp=product.spread_bp,
        lpr_bp=lpr,
        rate_bp=rate,
        guarantee_fee_bp=product.guarantee_fee_bp,
        fee_over_cap=svc.fee_over_cap(product.guarantee_fee_bp, on),
        collateral=list(product.collateral or []),
        size_classes=list(product.size_classes or []),
        industry_prefixes=list(product.industry_prefixes or []),
        region_prefixes=list(product.region_prefixes or []),
        required_fields=list(product.required_fields or []),
        conditions_yaml=product.conditions_yaml,
        legal_basis=list(product.legal_basis or []),
        decision_days=product.decision_days,
        valid_from=product.valid_from,
        valid_to=product.valid_to,
        status=product.status,
        family_id=product.family_id,
        version=product.version,
    )


def need_out(need: Need, *, shown: svc.NeedCell | None = None) -> NeedOut:
    """A need; lenders get it without the enterprise's identity, its codes generalised (shown)."""
    return NeedOut(
        id=need.id,
        credit_code=None if shown is not None else need.credit_code,
        amount_fen=need.amount_fen,
        term_months=need.term_months,
        purpose=need.purpose,
        collateral=list(need.collateral or []),
        deadline=need.deadline,
        first_loan=need.first_loan,
        source_rule_id=need.source_rule_id,
        region_code=need.region_code if shown is None else shown.region_code,
        industry_code=need.industry_code if shown is None else shown.industry_code,
        size_class=need.size_class if shown is None else shown.size_class,
        status=need.status,
        created_at=need.created_at,
    )


def _reasons(items: list[svc.Reason]) -> list[ReasonOut]:
    return [ReasonOut(zh=r.zh, en=r.en, ok=r.ok) for r in items]


def matches_out(need: Need, result: svc.MatchResult) -> MatchesOut:
    """Ranked matches of a need."""
    return MatchesOut(
        need_id=need.id,
        evaluation_date=result.on,
        matches=[
            MatchOut(
                rank=i + 1,
                product_id=m.product.id,
                product_name=m.product.name,
                institution=m.product.institution,
                kind=m.product.kind,
                eligibility=m.eligibility,
                applicable=m.applicable,
                rate_bp=m.rate_bp,
                lpr_bp=m.lpr_bp,
                guarantee_fee_bp=m.fee_bp,
                cost_bp=m.cost_bp,
                fee_over_cap=m.fee_over_cap,
                reasons=_reasons(m.reasons()),
                fit=_reasons(m.fit),
                blockers=_reasons(m.blockers),
                missing=list(m.explanation.missing),
            )
            for i, m in enumerate(result.matches)
        ],
        unevaluable=[
            UnevaluableOut(product_id=u.product.id, product_name=u.product.name, reason=u.reason)
            for u in result.unevaluable
        ],
    )


def application_out(
    session: Session, user: User, app: Application, *, with_shared: bool = True
) -> ApplicationOut:
    """An application; the addressed lender also gets the consented fields (recorded)."""
    shared = None
    if with_shared and user.role == Role.bank:
        shared = [
            SharedFieldOut(
                field=f.name, zh=f.zh, en=f.en, shared=f.shared, value=_jsonable(f.value)
            )
            for f in svc.shared_view(session, user, app)
        ]
    return ApplicationOut(
        id=app.id,
        need_id=app.need_id,
        product_id=app.product_id,
        product_name=app.product.name,
        institution=app.institution,
        credit_code=app.credit_code,
        status=app.status,
        amount_fen=app.amount_fen,
        term_months=app.term_months,
        eligibility=app.eligibility,
        lpr_bp=app.lpr_bp,
        rate_bp=app.rate_bp,
        guarantee_fee_bp=app.guarantee_fee_bp,
        submitted_on=app.submitted_on,
        due_on=app.due_on,
        decided_on=app.decided_on,
        decline_reason=app.decline_reason,
        approved_amount_fen=app.approved_amount_fen,
        approved_rate_bp=app.approved_rate_bp,
        disbursed_amount_fen=app.disbursed_amount_fen,
        disbursed_on=app.disbursed_on,
        consented_fields=[c.field for c in svc.active_consents(session, app)],
        events=[
            EventOut(
                at=e.at,
                on=e.on,
                kind=e.kind,
                from_status=e.from_status,
                to_status=e.to_status,
                actor_role=e.actor_role,
                note=e.note,
                due_on=e.due_on,
                detail=e.detail or {},
            )
            for e in svc.events_of(session, app)
        ],
        shared=shared,
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


# ------------------------------------------------------------------------------- JSON API

API = "/api/v1/finance"


@router.get(f"{API}/products", response_model=list[ProductOut], tags=["finance"])
def api_products(
    user: User = Depends(current_user), session: Session = Depends(get_session)
) -> list[ProductOut]:
    """Published products in force (a lender also sees its own withdrawn ones)."""
    return [product_out(p) for p in svc.visible_products(session, user)]


@router.post(f"{API}/products", response_model=ProductOut, status_code=201, tags=["finance"])
def api_publish(
    data: ProductIn,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> ProductOut:
    """Publish a product for the caller's institution."""
    return product_out(svc.publish_product(session, user, data))


@router.get(f"{API}/products/{{product_id}}", response_model=ProductOut, tags=["finance"])
def api_product(
    product_id: Int64, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> ProductOut:
    """One product."""
    return product_out(svc.get_product(session, user, product_id))


@router.put(f"{API}/products/{{product_id}}", response_model=ProductOut, tags=["finance"])
def api_revise_product(
    product_id: Int64,
    data: ProductIn,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> ProductOut:
    """Publish new terms for one of the caller's products as its next version."""
    return product_out(svc.revise_product(session, user, product_id, data))


@router.post(f"{API}/products/{{product_id}}/withdraw", response_model=ProductOut, tags=["finance"])
def api_withdraw_product(
    product_id: Int64,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> ProductOut:
    """Take one of the caller's products off the shelf."""
    return product_out(svc.withdraw_product(session, user, product_id))


@router.post(f"{API}/needs", response_model=NeedOut, status_code=201, tags=["finance"])
def api_post_need(
    data: NeedIn,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=64,
            pattern=r"^[\x21-\x7e]+$",
            description="Repeat a submission safely: the same key returns the need it created.",
        ),
    ] = None,
) -> NeedOut:
    """Post a financing need of the caller's enterprise (idempotent with an Idempotency-Key)."""
    return need_out(svc.post_need(session, user, data, idempotency_key=idempotency_key))


@router.get(f"{API}/needs", response_model=list[NeedOut], tags=["finance"])
def api_needs(
    user: User = Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> list[NeedOut]:
    """The caller's needs; for a lender, open needs fitting its products (without identity)."""
    if user.role == Role.enterprise:
        return [need_out(n) for n in svc.needs_of(session, user.credit_code or "")]
    if user.role == Role.bank:
        return [
            need_out(f.need, shown=f.shown)
            for f in svc.needs_for_lender(session, user.institution or "")
        ]
    return [need_out(n) for n in session.scalars(select(Need).order_by(Need.id.desc()))]


@router.get(f"{API}/needs/{{need_id}}/matches", response_model=MatchesOut, tags=["finance"])
def api_matches(
    need_id: Int64,
    user: User = Depends(require_roles(Role.enterprise, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> MatchesOut:
    """Products ranked for a need, each with eligibility and fit reasons."""
    need = svc.get_need(session, user, need_id)
    return matches_out(need, svc.match_need(session, need))


@router.post(
    f"{API}/needs/{{need_id}}/applications",
    response_model=list[ApplyOutcomeOut],
    tags=["finance"],
)
def api_apply(
    need_id: Int64,
    data: ApplyIn,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
) -> list[ApplyOutcomeOut]:
    """Apply to one or several products in one step; a repeat finds the existing applications."""
    outcomes = svc.apply(session, user, need_id, data.product_ids, data.fields)
    return [
        ApplyOutcomeOut(
            product_id=o.product_id,
            outcome=o.outcome,
            application_id=o.application.id if o.application else None,
            reasons=_reasons(o.reasons),
        )
        for o in outcomes
    ]


@router.get(f"{API}/applications", response_model=list[ApplicationOut], tags=["finance"])
def api_applications(
    user: User = Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> list[ApplicationOut]:
    """Applications the caller may see (a lender: only those addressed to it)."""
    # The list gives lenders the terms only; shared fields are on the detail, where viewing is recorded.
    return [
        application_out(session, user, app, with_shared=False)
        for app in svc.applications_for(session, user)
    ]


@router.get(f"{API}/applications/{{app_id}}", response_model=ApplicationOut, tags=["finance"])
def api_application(
    app_id: Int64,
    user: User = Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> ApplicationOut:
    """One application; the addressed lender sees only the consented fields."""
    app = svc.get_application(session, user, app_id)
    return application_out(session, user, app)


@router.post(
    f"{API}/applications/{{app_id}}/transitions", response_model=ApplicationOut, tags=["finance"]
)
def api_transition(
    app_id: Int64,
    data: TransitionIn,
    user: User = Depends(require_roles(Role.enterprise, Role.bank)),
    session: Session = Depends(get_session),
) -> ApplicationOut:
    """Accept, approve, decline (with reason), disburse, or withdraw an application."""
    app = svc.transition(
        session,
        user,
        app_id,
        data.action,
        reason=data.reason,
        amount_fen=data.amount_fen,
        rate_bp=data.rate_bp,
    )
    return application_out(session, user, app)


@router.post(
    f"{API}/applications/{{app_id}}/consent/revoke",
    response_model=ApplicationOut,
    tags=["finance"],
)
def api_revoke(
    app_id: Int64,
    data: RevokeIn,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
) -> ApplicationOut:
    """Stop sharing some (or, with an empty list, all) fields with the application's lender."""
    svc.revoke_consent(session, user, app_id, data.fields)
    return application_out(session, user, svc.get_application(session, user, app_id))


@router.get(f"{API}/stats", tags=["finance"])
def api_stats(
    _: User = Depends(require_roles(Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Demand and supply by region and industry, approvals, rates, first loans, guarantee fees."""
    st = finance_stats(session)
    return {
        "evaluation_date": st.on.isoformat(),
        "by_region": [c.__dict__ for c in st.by_region],
        "by_industry": [c.__dict__ for c in st.by_industry],
        "applications": st.applications,
        "by_status": st.by_status,
        "decided": st.decided,
        "approved": st.approved,
        "approval_rate": _dec(st.approval_rate),
        "average_rate_bp": _dec(st.average_rate_bp),
        "weighted_rate_bp": _dec(st.weighted_rate_bp),
        "average_working_days_to_decision": _dec(st.average_days_to_decision),
        "disbursed": st.disbursed,
        "disbursed_amount_fen": st.disbursed_amount_fen,
        "first_loans": st.first_loans,
        "first_loan_unknown": st.first_loan_unknown,
        "first_loan_share": _dec(st.first_loan_share),
        "guarantee_fees": {
            "cap_bp": st.fees.cap_bp,
            "products_with_fee": st.fees.products_with_fee,
            "products_over_cap": [
                {"product_id": i, "institution": inst, "name": n, "fee_bp": fee}
                for i, inst, n, fee in st.fees.products_over_cap
            ],
            "average_fee_bp": _dec(st.fees.average_fee_bp),
            "weighted_fee_bp": _dec(st.fees.weighted_fee_bp),
            "compliant": st.fees.compliant,
            "legal_basis": "甘工信发〔2020〕351号 (十八)",
        },
    }


def _dec(value: Decimal | None) -> str | None:
    """Decimals travel as strings so no precision is lost."""
    return None if value is None else str(value)


# ------------------------------------------------------------------------------- pages


@router.get("/finance", include_in_schema=False)
def finance_home(
    request: Request,
    user: User = Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> Response:
    """The financing workbench of each role."""
    ctx: dict[str, Any] = {"applications": svc.applications_for(session, user)}
    if user.role == Role.enterprise:
        ctx["needs"] = svc.needs_of(session, user.credit_code or "")
    elif user.role == Role.bank:
        ctx["products"] = [
            p for p in svc.visible_products(session, user) if p.institution == user.institution
        ]
    else:
        ctx["products"] = svc.visible_products(session, user)
    ctx["flags"] = {p.id: svc.fee_flag(p, svc.today()) for p in ctx.get("products", [])}
    return _page(request, "finance/home.html", **ctx)


@router.get("/finance/products", include_in_schema=False)
def products_page(
    request: Request, user: User = Depends(current_user), session: Session = Depends(get_session)
) -> Response:
    """All published products with today's rates."""
    products = svc.visible_products(session, user)
    return _page(
        request,
        "finance/products.html",
        products=[product_out(p) for p in products],
    )


def _form_defaults() -> dict[str, Any]:
    return {
        "kind": "credit_loan",
        "provider_kind": "bank",
        "rate_base": "lpr_1y",
        "size_classes": ["medium", "small", "micro"],
        "collateral": ["none"],
        "region_prefixes": "62",
        "required_fields": [],
    }


def _product_form_page(
    request: Request,
    form: dict[str, Any],
    errors: list[str],
    status_code: int = 200,
    editing: Product | None = None,
) -> Response:
    return _page(
        request,
        "finance/product_form.html",
        status_code=status_code,
        form=form,
        errors=errors,
        kinds=list(ProductKind),
        collaterals=list(Collateral),
        fields=svc.shareable_fields(),
        editing=editing,
    )


def _pct_text(bp: int | None) -> str:
    """Basis points as the percentage typed in the form: 45 → '0.45'."""
    return "" if bp is None else f"{(Decimal(bp) / 100).normalize():f}"


def _form_of(product: Product) -> dict[str, Any]:
    """A stored product as the values of the product form."""

    def wan_text(fen: int) -> str:
        return f"{(Decimal(fen) / 1_000_000).normalize():f}"

    return {
        "name": product.name,
        "kind": product.kind,
        "provider_kind": product.provider_kind,
        "description": product.description,
        "amount_min_wan": wan_text(product.amount_min_fen),
        "amount_max_wan": wan_text(product.amount_max_fen),
        "term_min_months": str(product.term_min_months),
        "term_max_months": str(product.term_max_months),
        "rate_base": product.rate_base or "",
        "spread_pct": _pct_text(product.spread_bp),
        "fee_pct": _pct_text(product.guarantee_fee_bp),
        "collateral": list(product.collateral or []),
        "size_classes": list(product.size_classes or []),
        "region_prefixes": ",".join(product.region_prefixes or []),
        "industry_prefixes": ",".join(product.industry_prefixes or []),
        "required_fields": list(product.required_fields or []),
        "conditions_yaml": product.conditions_yaml,
        "decision_days": str(product.decision_days),
        "valid_from": product.valid_from.isoformat(),
        "valid_to": product.valid_to.isoformat() if product.valid_to else "",
    }


@router.get("/finance/products/new", include_in_schema=False)
def product_new(request: Request, _: User = Depends(require_roles(Role.bank))) -> Response:
    """The form a lender publishes a product with."""
    return _product_form_page(request, _form_defaults(), [])


def _bp(raw: str, label: str) -> int | None:
    """A percentage typed in a form ('0.45') as basis points; empty means none."""
    text = raw.strip().rstrip("%")
    if not text:
        return None
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        raise ValueError(f"{label}:不是数字 {raw!r}") from None
    if value != value.to_integral_value():
        raise ValueError(f"{label}:最小单位为 0.01%")
    return int(value)


def _fen(raw: str, label: str) -> int:
    try:
        return to_fen(raw.strip() or "x", "wan")
    except MoneyError as exc:
        raise ValueError(f"{label}:{exc}") from None


def _int(raw: str, label: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise ValueError(f"{label}:应为整数")
    return int(text)


def _split(raw: str) -> list[str]:
    return [x for x in raw.replace(",", ",").replace(" ", ",").split(",") if x.strip()]


def _validation_messages(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e['loc']) or '表单'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    ]


async def _product_input(request: Request) -> tuple[dict[str, Any], ProductIn | list[str]]:
    """The product form's values, and the parsed product or the problems found."""
    raw = await request.form()
    form: dict[str, Any] = {k: raw.get(k, "") for k in raw}
    for multi in ("collateral", "size_classes", "required_fields"):
        form[multi] = [str(v) for v in raw.getlist(multi)]
    try:
        data: dict[str, Any] = {
            "name": form.get("name", ""),
            "kind": form.get("kind", ""),
            "provider_kind": form.get("provider_kind", "bank"),
            "description": form.get("description", ""),
            "amount_min_fen": _fen(str(form.get("amount_min_wan", "")), "额度下限"),
            "amount_max_fen": _fen(str(form.get("amount_max_wan", "")), "额度上限"),
            "term_min_months": _int(str(form.get("term_min_months", "")), "最短期限"),
            "term_max_months": _int(str(form.get("term_max_months", "")), "最长期限"),
            "rate_base": str(form.get("rate_base", "")) or None,
            "spread_bp": _bp(str(form.get("spread_pct", "")), "LPR 加点"),
            "guarantee_fee_bp": _bp(str(form.get("fee_pct", "")), "担保费率"),
            "collateral": form["collateral"],
            "size_classes": form["size_classes"],
            "region_prefixes": _split(str(form.get("region_prefixes", ""))),
            "industry_prefixes": _split(str(form.get("industry_prefixes", ""))),
            "required_fields": form["required_fields"],
            "conditions_yaml": str(form.get("conditions_yaml", "")).replace("\r\n", "\n"),
            "decision_days": _int(str(form.get("decision_days", "")), "审批时限"),
            "valid_from": str(form.get("valid_from", "")) or None,
            "valid_to": str(form.get("valid_to", "")) or None,
        }
        if data["rate_base"] is None:
            data["spread_bp"] = None
        return form, ProductIn.model_validate(data)
    except ValueError as exc:
        return form, (_validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)])


@router.post("/finance/products/new", include_in_schema=False)
async def product_create(
    request: Request,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Publish a product from the form; problems are shown on the form."""
    form, parsed = await _product_input(request)
    if isinstance(parsed, list):
        return _product_form_page(request, form, parsed, 422)
    try:
        product = svc.publish_product(session, user, parsed)
    except svc.FinanceError as exc:
        problems = exc.problems if isinstance(exc, svc.InvalidInput) else []
        return _product_form_page(request, form, [exc.zh, *problems], exc.status)
    return RedirectResponse(f"/finance/products/{product.id}", status_code=303)


@router.get("/finance/products/{product_id}/edit", include_in_schema=False)
def product_edit(
    product_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """The product form filled with the current version's terms."""
    product = svc.get_product(session, user, product_id)
    if product.institution != user.institution:
        raise HTTPException(status_code=404, detail="产品不存在或无权查看 / not found")
    return _product_form_page(request, _form_of(product), [], editing=product)


@router.post("/finance/products/{product_id}/edit", include_in_schema=False)
async def product_revise(
    product_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Publish the edited terms as the product's next version."""
    current = svc.get_product(session, user, product_id)
    if current.institution != user.institution:
        raise HTTPException(status_code=404, detail="产品不存在或无权查看 / not found")
    form, parsed = await _product_input(request)
    if isinstance(parsed, list):
        return _product_form_page(request, form, parsed, 422, editing=current)
    try:
        product = svc.revise_product(session, user, product_id, parsed)
    except svc.FinanceError as exc:
        problems = exc.problems if isinstance(exc, svc.InvalidInput) else []
        return _product_form_page(request, form, [exc.zh, *problems], exc.status, editing=current)
    return RedirectResponse(f"/finance/products/{product.id}", status_code=303)


@router.get("/finance/products/{product_id}", include_in_schema=False)
def product_page(
    product_id: Int64,
    request: Request,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """A product: terms, today's rate, the eligibility rule and the article (十八) check."""
    product = svc.get_product(session, user, product_id)
    rule_text, _start = svc.elig.rule_text(svc.product_terms(product))
    labels = {f.name: f.zh for f in svc.shareable_fields()}
    return _page(
        request,
        "finance/product.html",
        product=product_out(product),
        flag=svc.fee_flag(product, svc.today()),
        rule_text=rule_text,
        field_labels=labels,
        own=user.role == Role.bank and user.institution == product.institution,
        versions=svc.versions_of(session, product),
    )


@router.post("/finance/products/{product_id}/withdraw", include_in_schema=False)
def product_withdraw(
    product_id: Int64,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Take a product off the shelf."""
    svc.withdraw_product(session, user, product_id)
    return RedirectResponse(f"/finance/products/{product_id}", status_code=303)


@lru_cache(maxsize=1)
def _rule_titles() -> dict[str, str]:
    """Titles of the library's rules, for a need started from a pushed policy."""
    from huiqi.rules.library import load_library
    from huiqi.rules.source import RuleValidationError

    try:
        return {rid: r.doc.title.zh for rid, r in load_library().rules.items()}
    except RuleValidationError:
        return {}


def _need_form_page(
    request: Request, form: dict[str, Any], errors: list[str], status_code: int = 200
) -> Response:
    rule = form.get("source_rule_id") or ""
    return _page(
        request,
        "finance/need_form.html",
        status_code=status_code,
        form=form,
        errors=errors,
        collaterals=list(Collateral),
        rule_title=_rule_titles().get(rule) if rule else None,
    )


@router.get("/finance/needs/new", include_in_schema=False)
def need_new(
    request: Request, rule: str = "", _: User = Depends(require_roles(Role.enterprise))
) -> Response:
    """The need form; `?rule=<id>` starts it from a pushed policy in one click."""
    form: dict[str, Any] = {
        "collateral": [],
        "term_months": "12",
        "idempotency_key": secrets.token_urlsafe(24),
    }
    if rule:
        title = _rule_titles().get(rule)
        form["source_rule_id"] = rule[:100]
        if title:
            form["purpose"] = f"申请《{title}》相关融资支持"
    return _need_form_page(request, form, [])


@router.post("/finance/needs/new", include_in_schema=False)
async def need_create(
    request: Request,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
) -> Response:
    """Post a need from the form and show its matches."""
    raw = await request.form()
    form: dict[str, Any] = {k: raw.get(k, "") for k in raw}
    form["collateral"] = [str(v) for v in raw.getlist("collateral")]
    first = str(form.get("first_loan", ""))
    try:
        need_in = NeedIn.model_validate(
            {
                "amount_fen": _fen(str(form.get("amount_wan", "")), "融资金额"),
                "term_months": _int(str(form.get("term_months", "")), "期限"),
                "purpose": str(form.get("purpose", "")).strip(),
                "collateral": form["collateral"],
                "deadline": str(form.get("deadline", "")) or None,
                "first_loan": {"yes": True, "no": False}.get(first),
                "source_rule_id": str(form.get("source_rule_id", "")) or None,
            }
        )
    except ValueError as exc:
        errors = _validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
        return _need_form_page(request, form, errors, 422)
    key = str(form.get("idempotency_key", "")).strip() or None
    try:
        need = svc.post_need(session, user, need_in, idempotency_key=key)
    except svc.FinanceError as exc:
        return _need_form_page(request, form, [exc.zh], exc.status)
    return RedirectResponse(f"/finance/needs/{need.id}", status_code=303)


def _need_page(
    request: Request,
    session: Session,
    user: User,
    need: Need,
    outcomes: list[svc.ApplyOutcome] | None = None,
    status_code: int = 200,
    invited: int | None = None,
) -> Response:
    result = svc.match_need(session, need)
    # keyed by product family: an application made against an older version still counts
    applied = {
        a.product.family_id or a.product_id: a
        for a in svc.applications_for(session, user)
        if a.need_id == need.id
    }
    return _page(
        request,
        "finance/need.html",
        status_code=status_code,
        need=need,
        result=result,
        applied=applied,
        fields=svc.shareable_fields(),
        field_labels={f.name: f.zh for f in svc.shareable_fields()},
        outcomes=outcomes,
        products_by_id={m.product.id: m.product for m in result.matches},
        invited=invited,
    )


@router.get("/finance/needs/{need_id}", include_in_schema=False)
def need_page(
    need_id: Int64,
    request: Request,
    product: Int64 | None = None,
    user: User = Depends(require_roles(Role.enterprise, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> Response:
    """A need with its ranked products, reasons and the one-step application form;
    `?product=<id>` (a lender's invitation) marks and pre-selects that product."""
    need = svc.get_need(session, user, need_id)
    return _need_page(request, session, user, need, invited=product)


@router.post("/finance/needs/{need_id}/apply", include_in_schema=False)
async def need_apply(
    need_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
) -> Response:
    """Apply to the ticked products in one step, sharing the ticked fields."""
    raw = await request.form()
    try:
        product_ids = [int(str(v)) for v in raw.getlist("product_id")]
        if any(abs(p) > INT64_MAX for p in product_ids):
            raise ValueError("out of range")
    except ValueError:
        raise HTTPException(status_code=422, detail="product_id must be a number") from None
    fields = [str(v) for v in raw.getlist("field")]
    # consent per product: the boxes of each chosen product are named field-<product id>
    per_product = {pid: [str(v) for v in raw.getlist(f"field-{pid}")] for pid in product_ids}
    need = svc.get_need(session, user, need_id)
    if not product_ids:
        return _need_page(
            request,
            session,
            user,
            need,
            [
                svc.ApplyOutcome(
                    0,
                    "refused",
                    None,
                    [svc.Reason("请至少选择一个产品", "choose at least one product", False)],
                )
            ],
            422,
        )
    per_form = raw.get("consent") == "per-product"
    outcomes = svc.apply(
        session, user, need_id, product_ids, fields, per_product=per_product if per_form else None
    )
    refused = any(o.outcome == "refused" for o in outcomes)
    return _need_page(
        request,
        session,
        user,
        need,
        outcomes,
        422 if refused and all(o.outcome == "refused" for o in outcomes) else 200,
    )


@router.get("/finance/applications/{app_id}", include_in_schema=False)
def application_page(
    app_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.enterprise, Role.bank, Role.officer, Role.admin)),
    session: Session = Depends(get_session),
    error: str = "",
) -> Response:
    """An application: terms, deadline, history; the lender's shared fields and actions;
    the enterprise's consents and withdrawal."""
    app = svc.get_application(session, user, app_id)
    shared = (
        svc.shared_view(session, user, app) if user.role in (Role.bank, Role.enterprise) else None
    )
    return _page(
        request,
        "finance/application.html",
        app=app,
        events=svc.events_of(session, app),
        shared=shared,
        actions=svc.allowed_actions(app, user),
        action_labels=svc.ACTION_LABELS,
        consents=svc.active_consents(session, app),
        field_labels={f.name: f.zh for f in svc.shareable_fields()},
        error=error,
    )


@router.post("/finance/applications/{app_id}/action", include_in_schema=False)
async def application_action(
    app_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.enterprise, Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Take one step on an application from its page."""
    raw = await request.form()
    action = str(raw.get("action", ""))
    try:
        amount_raw = str(raw.get("amount_wan", "")).strip()
        amount = _fen(amount_raw, "金额") if amount_raw else None
        rate = _bp(str(raw.get("rate_pct", "")), "年利率")
    except ValueError as exc:
        return _action_error(request, session, user, app_id, str(exc))
    try:
        svc.transition(
            session,
            user,
            app_id,
            action,
            reason=str(raw.get("reason", "")),
            amount_fen=amount,
            rate_bp=rate,
        )
    except (svc.InvalidInput, svc.TransitionError) as exc:
        return _action_error(request, session, user, app_id, exc.zh, exc.status)
    return RedirectResponse(f"/finance/applications/{app_id}", status_code=303)


def _action_error(
    request: Request, session: Session, user: User, app_id: Int64, message: str, status: int = 422
) -> Response:
    session.rollback()
    response = application_page(app_id, request, user, session, error=message)
    response.status_code = status
    return response


@router.post("/finance/applications/{app_id}/revoke", include_in_schema=False)
async def application_revoke(
    app_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.enterprise)),
    session: Session = Depends(get_session),
) -> Response:
    """Stop sharing the ticked fields (or all) with the lender."""
    raw = await request.form()
    fields = [str(v) for v in raw.getlist("field")]
    if not fields and raw.get("all") != "1":
        # nothing ticked is a slip, not "revoke everything": ask which ones
        return RedirectResponse(
            f"/finance/applications/{app_id}?error=revoke-none#revoke-form", status_code=303
        )
    svc.revoke_consent(session, user, app_id, fields)
    return RedirectResponse(f"/finance/applications/{app_id}", status_code=303)


@router.get("/finance/lender/needs", include_in_schema=False)
def lender_needs(
    request: Request,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Open needs in the lender's regions that fit its products (who posted them stays hidden)."""
    fits = svc.needs_for_lender(session, user.institution or "")
    return _page(
        request,
        "finance/lender_needs.html",
        fits=fits,
        invited=svc.invited_needs(session, user.institution or "", fits),
        sent=request.query_params.get("invited", ""),
    )


@router.post("/finance/lender/needs/{need_id}/invite", include_in_schema=False)
async def lender_invite(
    need_id: Int64,
    request: Request,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> Response:
    """Invite a need's enterprise to one of the lender's products; its identity stays hidden."""
    raw = await request.form()
    try:
        product_id = int(str(raw.get("product_id", "")))
        if abs(product_id) > INT64_MAX:
            raise ValueError("out of range")
    except ValueError:
        raise HTTPException(status_code=422, detail="product_id must be a number") from None
    svc.invite_need(session, user, need_id, product_id)
    return RedirectResponse(
        f"/finance/lender/needs?invited={need_id}#need-{need_id}", status_code=303
    )


@router.post(f"{API}/needs/{{need_id}}/invite", tags=["finance"])
def api_invite(
    need_id: Int64,
    data: InviteIn,
    user: User = Depends(require_roles(Role.bank)),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Invite a need's enterprise to a product; the answer says only whether it was sent now."""
    sent = svc.invite_need(session, user, need_id, data.product_id)
    return {"need_id": need_id, "product_id": data.product_id, "sent": sent}


@router.get("/finance/stats", include_in_schema=False)
def stats_page(
    request: Request,
    _: User = Depends(require_roles(Role.officer, Role.admin)),
    session: Session = Depends(get_session),
) -> Response:
    """Financing statistics for officers."""
    return _page(request, "finance/stats.html", st=finance_stats(session))
