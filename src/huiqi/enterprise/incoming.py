"""New values for one enterprise, as a validated import row or a form gives them.

A module of its own (no database layer), so the import's reading process can build them without
importing the registry's services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass
class Incoming:
    """New values for one enterprise: (field, year) → (value, source, as-of date); year 0 = profile."""

    credit_code: str
    values: dict[tuple[str, int], tuple[Any, str, date]] = field(default_factory=dict)
