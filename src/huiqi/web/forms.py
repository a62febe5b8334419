"""Reading typed values from query strings and submitted forms; bad input is a domain error
(`Invalid`, 422) that the one handler in `web.errors` answers, so routes never catch it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from huiqi.core.bounds import INT64_MAX
from huiqi.core.errors import Invalid


def day(raw: str, field: str, label: tuple[str, str] = ("日期", "date")) -> date:
    """A date written YYYY-MM-DD; the message names the field by its label, not its name."""
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid(
            f"{label[0]}格式应为 年-月-日(如 2026-01-31),收到 {raw.strip()!r}",
            f"{label[1]} must be written YYYY-MM-DD (e.g. 2026-01-31), got {raw.strip()!r}",
            field=field,
        ) from None


def ids(values: Iterable[object], field: str, label: tuple[str, str] = ("编号", "id")) -> list[int]:
    """Object ids sent as form values (each a whole number within 64 bits)."""
    out = []
    for value in values:
        text = str(value).strip()
        if not text.lstrip("-").isdigit() or abs(int(text)) > INT64_MAX:
            raise Invalid(
                f"{label[0]}无效:{text!r} 不是有效的编号",
                f"{label[1]}: {text!r} is not a valid id",
                field=field,
            )
        out.append(int(text))
    return out
