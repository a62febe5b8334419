"""Financing pages (/finance/...) and JSON API (/api/v1/finance/...), one module per part."""

from __future__ import annotations

from fastapi import APIRouter

from huiqi.finance.routes import api, applications, lender, needs, products

router = APIRouter()
for part in (api, products, needs, applications, lender):
    router.include_router(part.router)
