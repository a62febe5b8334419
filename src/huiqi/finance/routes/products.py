"""Finance home and product pages: list, publish, revise, withdraw."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from huiqi.accounts.models import Role
from huiqi.core.bounds import Int64
from huiqi.core.clock import today
from huiqi.finance import eligibility as elig
from huiqi.finance import service as svc
from huiqi.finance.models import Collateral, Product, ProductKind
from huiqi.finance.routes.common import (
    FinanceUser,
    form_bp,
    form_fen,
    form_int,
    form_list,
    page,
    product_out,
    validation_messages,
)
from huiqi.finance.schemas import ProductIn
from huiqi.web.deps import (
    BankUser,
    CurrentUser,
    SessionDep,
)

router = APIRouter()


@router.get("/finance", include_in_schema=False)
def finance_home(
    request: Request,
    session: SessionDep,
    user: FinanceUser,
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
    ctx["flags"] = {p.id: svc.fee_flag(p, today()) for p in ctx.get("products", [])}
    return page(request, "finance/home.html", **ctx)


@router.get("/finance/products", include_in_schema=False)
def products_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    """All published products with today's rates."""
    products = svc.visible_products(session, user)
    return page(
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
    return page(
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
def product_new(request: Request, _: BankUser) -> Response:
    """The form a lender publishes a product with."""
    return _product_form_page(request, _form_defaults(), [])


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
            "amount_min_fen": form_fen(str(form.get("amount_min_wan", "")), "额度下限"),
            "amount_max_fen": form_fen(str(form.get("amount_max_wan", "")), "额度上限"),
            "term_min_months": form_int(str(form.get("term_min_months", "")), "最短期限"),
            "term_max_months": form_int(str(form.get("term_max_months", "")), "最长期限"),
            "rate_base": str(form.get("rate_base", "")) or None,
            "spread_bp": form_bp(str(form.get("spread_pct", "")), "LPR 加点"),
            "guarantee_fee_bp": form_bp(str(form.get("fee_pct", "")), "担保费率"),
            "collateral": form["collateral"],
            "size_classes": form["size_classes"],
            "region_prefixes": form_list(str(form.get("region_prefixes", ""))),
            "industry_prefixes": form_list(str(form.get("industry_prefixes", ""))),
            "required_fields": form["required_fields"],
            "conditions_yaml": str(form.get("conditions_yaml", "")).replace("\r\n", "\n"),
            "decision_days": form_int(str(form.get("decision_days", "")), "审批时限"),
            "valid_from": str(form.get("valid_from", "")) or None,
            "valid_to": str(form.get("valid_to", "")) or None,
        }
        if data["rate_base"] is None:
            data["spread_bp"] = None
        return form, ProductIn.model_validate(data)
    except ValueError as exc:
        return form, (validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)])


@router.post("/finance/products/new", include_in_schema=False)
async def product_create(
    request: Request,
    user: BankUser,
    session: SessionDep,
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
    user: BankUser,
    session: SessionDep,
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
    user: BankUser,
    session: SessionDep,
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
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """A product: terms, today's rate, the eligibility rule and the article (十八) check."""
    product = svc.get_product(session, user, product_id)
    rule_text, _start = elig.rule_text(svc.product_terms(product))
    labels = {f.name: f.zh for f in svc.shareable_fields()}
    return page(
        request,
        "finance/product.html",
        product=product_out(product),
        flag=svc.fee_flag(product, today()),
        rule_text=rule_text,
        field_labels=labels,
        own=user.role == Role.bank and user.institution == product.institution,
        versions=svc.versions_of(session, product),
    )


@router.post("/finance/products/{product_id}/withdraw", include_in_schema=False)
def product_withdraw(
    product_id: Int64,
    user: BankUser,
    session: SessionDep,
) -> Response:
    """Take a product off the shelf."""
    svc.withdraw_product(session, user, product_id)
    return RedirectResponse(f"/finance/products/{product_id}", status_code=303)
