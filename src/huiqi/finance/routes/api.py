"""The finance JSON API (/api/v1/finance/...)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Header
from sqlalchemy import select

from huiqi.accounts.models import Role
from huiqi.core.bounds import Int64
from huiqi.finance import service as svc
from huiqi.finance.models import Need
from huiqi.finance.routes.common import (
    API,
    FinanceUser,
    NeedReader,
    PartyUser,
    application_out,
    matches_out,
    need_out,
    product_out,
    reasons_out,
)
from huiqi.finance.schemas import (
    ApplicationOut,
    ApplyIn,
    ApplyOutcomeOut,
    InviteIn,
    MatchesOut,
    NeedIn,
    NeedOut,
    ProductIn,
    ProductOut,
    RevokeIn,
    TransitionIn,
)
from huiqi.finance.stats import finance_stats
from huiqi.web.deps import (
    BankUser,
    CurrentUser,
    EnterpriseUser,
    OfficerUser,
    SessionDep,
)

router = APIRouter()


@router.get(f"{API}/products", response_model=list[ProductOut], tags=["finance"])
def api_products(user: CurrentUser, session: SessionDep) -> list[ProductOut]:
    """Published products in force (a lender also sees its own withdrawn ones)."""
    return [product_out(p) for p in svc.visible_products(session, user)]


@router.post(f"{API}/products", response_model=ProductOut, status_code=201, tags=["finance"])
def api_publish(
    data: ProductIn,
    user: BankUser,
    session: SessionDep,
) -> ProductOut:
    """Publish a product for the caller's institution."""
    return product_out(svc.publish_product(session, user, data))


@router.get(f"{API}/products/{{product_id}}", response_model=ProductOut, tags=["finance"])
def api_product(product_id: Int64, user: CurrentUser, session: SessionDep) -> ProductOut:
    """One product."""
    return product_out(svc.get_product(session, user, product_id))


@router.put(f"{API}/products/{{product_id}}", response_model=ProductOut, tags=["finance"])
def api_revise_product(
    product_id: Int64,
    data: ProductIn,
    user: BankUser,
    session: SessionDep,
) -> ProductOut:
    """Publish new terms for one of the caller's products as its next version."""
    return product_out(svc.revise_product(session, user, product_id, data))


@router.post(f"{API}/products/{{product_id}}/withdraw", response_model=ProductOut, tags=["finance"])
def api_withdraw_product(
    product_id: Int64,
    user: BankUser,
    session: SessionDep,
) -> ProductOut:
    """Take one of the caller's products off the shelf."""
    return product_out(svc.withdraw_product(session, user, product_id))


@router.post(f"{API}/needs", response_model=NeedOut, status_code=201, tags=["finance"])
def api_post_need(
    data: NeedIn,
    user: EnterpriseUser,
    session: SessionDep,
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
    session: SessionDep,
    user: FinanceUser,
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
    user: NeedReader,
    session: SessionDep,
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
    user: EnterpriseUser,
    session: SessionDep,
) -> list[ApplyOutcomeOut]:
    """Apply to one or several products in one step; a repeat finds the existing applications."""
    outcomes = svc.apply(session, user, need_id, data.product_ids, data.fields)
    return [
        ApplyOutcomeOut(
            product_id=o.product_id,
            outcome=o.outcome,
            application_id=o.application.id if o.application else None,
            reasons=reasons_out(o.reasons),
        )
        for o in outcomes
    ]


@router.get(f"{API}/applications", response_model=list[ApplicationOut], tags=["finance"])
def api_applications(
    session: SessionDep,
    user: FinanceUser,
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
    session: SessionDep,
    user: FinanceUser,
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
    user: PartyUser,
    session: SessionDep,
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
    user: EnterpriseUser,
    session: SessionDep,
) -> ApplicationOut:
    """Stop sharing some (or, with an empty list, all) fields with the application's lender."""
    svc.revoke_consent(session, user, app_id, data.fields)
    return application_out(session, user, svc.get_application(session, user, app_id))


@router.get(f"{API}/stats", tags=["finance"])
def api_stats(
    user: OfficerUser,
    session: SessionDep,
) -> dict[str, Any]:
    """Demand and supply by region and industry, approvals, rates, first loans, guarantee fees
    (a city or county officer's: its region's)."""
    st = finance_stats(session, within=user.region_prefix)
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


@router.post(f"{API}/needs/{{need_id}}/invite", tags=["finance"])
def api_invite(
    need_id: Int64,
    data: InviteIn,
    user: BankUser,
    session: SessionDep,
) -> dict[str, Any]:
    """Invite a need's enterprise to a product; the answer says only whether it was sent now."""
    sent = svc.invite_need(session, user, need_id, data.product_id)
    return {"need_id": need_id, "product_id": data.product_id, "sent": sent}
