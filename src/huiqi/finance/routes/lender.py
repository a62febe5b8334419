"""Lenders' pages: generalised needs and invitations; the statistics page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from huiqi.core.bounds import Int64
from huiqi.finance import service as svc
from huiqi.finance.routes.common import page
from huiqi.finance.stats import finance_stats
from huiqi.web import forms
from huiqi.web.deps import BankUser, OfficerUser, SessionDep

router = APIRouter()


@router.get("/finance/lender/needs", include_in_schema=False)
def lender_needs(
    request: Request,
    user: BankUser,
    session: SessionDep,
) -> Response:
    """Open needs in the lender's regions that fit its products (who posted them stays hidden)."""
    fits = svc.needs_for_lender(session, user.institution or "")
    return page(
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
    user: BankUser,
    session: SessionDep,
) -> Response:
    """Invite a need's enterprise to one of the lender's products; its identity stays hidden."""
    raw = await request.form()
    (product_id,) = forms.ids([raw.get("product_id", "")], "product_id", ("金融产品", "product"))
    svc.invite_need(session, user, need_id, product_id)
    return RedirectResponse(
        f"/finance/lender/needs?invited={need_id}#need-{need_id}", status_code=303
    )


@router.get("/finance/stats", include_in_schema=False)
def stats_page(
    request: Request,
    user: OfficerUser,
    session: SessionDep,
) -> Response:
    """Financing statistics for officers (a city or county officer's: its region's)."""
    return page(request, "finance/stats.html", st=finance_stats(session, within=user.region_prefix))
