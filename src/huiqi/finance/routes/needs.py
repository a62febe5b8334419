"""Need pages: post a need, see its matches, apply."""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts.models import User
from huiqi.core.bounds import Int64
from huiqi.finance import service as svc
from huiqi.finance.models import Collateral, Need
from huiqi.finance.routes.common import NeedReader, form_fen, form_int, page, validation_messages
from huiqi.finance.schemas import NeedIn
from huiqi.web import forms
from huiqi.web.deps import EnterpriseUser, SessionDep

router = APIRouter()


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
    return page(
        request,
        "finance/need_form.html",
        status_code=status_code,
        form=form,
        errors=errors,
        collaterals=list(Collateral),
        rule_title=_rule_titles().get(rule) if rule else None,
    )


@router.get("/finance/needs/new", include_in_schema=False)
def need_new(request: Request, _: EnterpriseUser, rule: str = "") -> Response:
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
    user: EnterpriseUser,
    session: SessionDep,
) -> Response:
    """Post a need from the form and show its matches."""
    raw = await request.form()
    form: dict[str, Any] = {k: raw.get(k, "") for k in raw}
    form["collateral"] = [str(v) for v in raw.getlist("collateral")]
    first = str(form.get("first_loan", ""))
    try:
        need_in = NeedIn.model_validate(
            {
                "amount_fen": form_fen(str(form.get("amount_wan", "")), "融资金额"),
                "term_months": form_int(str(form.get("term_months", "")), "期限"),
                "purpose": str(form.get("purpose", "")).strip(),
                "collateral": form["collateral"],
                "deadline": str(form.get("deadline", "")) or None,
                "first_loan": {"yes": True, "no": False}.get(first),
                "source_rule_id": str(form.get("source_rule_id", "")) or None,
            }
        )
    except ValueError as exc:
        errors = validation_messages(exc) if isinstance(exc, ValidationError) else [str(exc)]
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
    return page(
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
    user: NeedReader,
    session: SessionDep,
    product: Int64 | None = None,
) -> Response:
    """A need with its ranked products, reasons and the one-step application form;
    `?product=<id>` (a lender's invitation) marks and pre-selects that product."""
    need = svc.get_need(session, user, need_id)
    return _need_page(request, session, user, need, invited=product)


@router.post("/finance/needs/{need_id}/apply", include_in_schema=False)
async def need_apply(
    need_id: Int64,
    request: Request,
    user: EnterpriseUser,
    session: SessionDep,
) -> Response:
    """Apply to the ticked products in one step, sharing the ticked fields."""
    raw = await request.form()
    product_ids = forms.ids(raw.getlist("product_id"), "product_id", ("金融产品", "product"))
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
