"""Site-wide pages: each role's workbench, the header search and the leaders' cockpit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from huiqi.accounts.models import Role
from huiqi.core.db import utcnow
from huiqi.core.todo import todo_for
from huiqi.web import workbench
from huiqi.web.deps import (
    OfficerUser,
    OptionalUser,
    SessionDep,
    render,
)

router = APIRouter(include_in_schema=False)
SEARCH_LIMIT = 20


@router.get("/")
def home(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
) -> Response:
    """The landing page for visitors and the workbench of each role."""
    if user is None:
        return render(request, "home/public.html")
    ctx: dict[str, Any] = {"todo": todo_for(session, user)}
    if user.role == Role.enterprise:
        ctx["home"] = workbench.enterprise_home(session, user)
    elif user.role == Role.officer:
        ctx["figures"] = workbench.officer_figures(session, user)
    elif user.role == Role.bank:
        ctx["figures"] = workbench.bank_figures(session, user)
    elif user.role == Role.admin:
        ctx["admin"] = workbench.admin_home(session)
        ctx["figures"] = workbench.officer_figures(session, user)
    return render(request, f"home/{user.role}.html", **ctx)


@router.get("/search")
def site_search(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    q: str = "",
) -> Response:
    """Search published policies; officers also find enterprises by name or credit code."""
    from huiqi.enterprise import repository
    from huiqi.policy import search

    query = q.strip()[:100]
    hits: list[Any] = []
    total = 0
    firms: list[Any] = []
    firm_total = 0
    if query:
        hits, total = search.search_page(session, query, limit=SEARCH_LIMIT)
        if user is not None and user.role in (Role.officer, Role.admin):
            firm_total, firms = repository.list_current(
                session, query=query, within=user.region_prefix, limit=SEARCH_LIMIT
            )
    return render(
        request,
        "search.html",
        q=query,
        hits=hits,
        total=total,
        firms=firms,
        firm_total=firm_total,
        staff=user is not None and user.role in (Role.officer, Role.admin),
    )


@router.get("/cockpit")
def cockpit_page(request: Request, user: OfficerUser, session: SessionDep) -> Response:
    """驾驶舱: headline figures and bar charts by 市州 (no maps: boundaries need approval); a
    city or county officer's cover its region."""
    data = workbench.cockpit(session, within=user.region_prefix)
    chart = json.dumps({"cities": data.cities, "series": data.series}, ensure_ascii=False)
    return render(request, "cockpit.html", data=data, chart=chart, now=utcnow())
