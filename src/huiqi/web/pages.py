"""Site-wide pages: the home page of each role."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from huiqi.accounts.models import User
from huiqi.web.deps import optional_user, render

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, user: User | None = Depends(optional_user)) -> Response:
    """The landing page for visitors and the workbench of each role."""
    template = f"home/{user.role}.html" if user else "home/public.html"
    return render(request, template)
