"""Integers bounded at the API edge, so no number the database cannot hold reaches a query."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Highest page number a listing accepts: page × page size stays far inside 64 bits.
MAX_PAGE = 10**9

# An integer that fits a 64-bit signed column (ids, amounts in fen, counts); a larger one is
# refused with 422 by request validation instead of overflowing the database driver.
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
