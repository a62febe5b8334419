"""Reading typed values from query strings and submitted forms; bad input is a domain error
(`Invalid`, 422) that the one handler in `web.errors` answers, so routes never catch it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from huiqi.core.bounds import INT64_MAX
from huiqi.core.errors import Invalid


def day(raw: str, field: str) -> date:
    """A date written YYYY-MM-DD."""
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid(
            f"{field}:日期格式应为 YYYY-MM-DD:{raw!r}",
            f"{field}: not a date (YYYY-MM-DD): {raw!r}",
            field=field,
        ) from None


def ids(values: Iterable[object], field: str) -> list[int]:
    """Object ids sent as form values (each a whole number within 64 bits)."""
    out = []
    for value in values:
        text = str(value).strip()
        if not text.lstrip("-").isdigit() or abs(int(text)) > INT64_MAX:
            raise Invalid(
                f"{field}:编号无效 {text!r}", f"{field}: not a valid id {text!r}", field=field
            )
        out.append(int(text))
    return out
