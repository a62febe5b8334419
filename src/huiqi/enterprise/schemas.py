"""Pydantic shapes of the enterprise JSON API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from huiqi.core.bounds import Int64


class ClassifyIn(BaseModel):
    """Inputs of a size classification (money in 万元, read as exact decimals)."""

    industry: str | None = None
    employees: Int64 | None = None
    revenue: Decimal | None = None
    assets: Decimal | None = None
    on: date | None = None
