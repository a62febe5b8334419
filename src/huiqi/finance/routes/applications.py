"""Application pages: the workflow's steps and revoking consent."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts.models import Role, User
from huiqi.core.bounds import Int64
from huiqi.finance import service as svc
from huiqi.finance.routes.common import FinanceUser, PartyUser, form_bp, form_fen, page
from huiqi.web.deps import EnterpriseUser, SessionDep

router = APIRouter()


@router.get("/finance/applications/{app_id}", include_in_schema=False)
def application_page(
    app_id: Int64,
    request: Request,
    session: SessionDep,
    user: FinanceUser,
    error: str = "",
) -> Response:
    """An application: terms, deadline, history; the lender's shared fields and actions;
    the enterprise's consents and withdrawal."""
    app = svc.get_application(session, user, app_id)
    shared = (
        svc.shared_view(session, user, app) if user.role in (Role.bank, Role.enterprise) else None
    )
    return page(
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
    user: PartyUser,
    session: SessionDep,
) -> Response:
    """Take one step on an application from its page."""
    raw = await request.form()
    action = str(raw.get("action", ""))
    try:
        amount_raw = str(raw.get("amount_wan", "")).strip()
        amount = form_fen(amount_raw, "金额") if amount_raw else None
        rate = form_bp(str(raw.get("rate_pct", "")), "年利率")
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
    response = application_page(app_id, request, session, user, error=message)
    response.status_code = status
    return response


@router.post("/finance/applications/{app_id}/revoke", include_in_schema=False)
async def application_revoke(
    app_id: Int64,
    request: Request,
    user: EnterpriseUser,
    session: SessionDep,
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
