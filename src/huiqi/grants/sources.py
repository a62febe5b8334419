"""Where each input of a grant came from, and what self-reported values did to its amount.

Every registry value carries a source. For grants the sources fall into four kinds:

- ``registry``: a department's data feed (税务, 市场监管, 人社, 统计, 科技, 工信 …);
- ``officer``: such a value entered by a signed-in officer or administrator (web import);
- ``computed``: derived by the platform from records (e.g. qualifying graduate hires);
- ``self_reported``: reported or corrected by the enterprise itself.

A grant's snapshot records the kind of each input. An enterprise can raise its own grant only
through a self-reported value, so such a value is bounded: when the amount computed with it
differs from the amount computed with the last value from any other source, the grant gets the
``self_reported`` risk flag (officer sees both amounts), and when the rule's ``accept_sources``
leaves a kind out, the grant is held as "to confirm" (``source_not_accepted``) and cannot be
approved or paid until the value comes from an accepted source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.enterprise import repository as ent_repo

SELF_REPORTED_SOURCE = "self-reported"
COMPUTED_SOURCE = "computed"
KIND_LABELS: dict[str, tuple[str, str]] = {
    "registry": ("部门共享数据", "registry feed"),
    "officer": ("工作人员录入", "entered by an officer"),
    "computed": ("系统计算", "computed from records"),
    "self_reported": ("企业自报", "self-reported"),
}
# Flags under which a pending grant may not be approved: it is "to confirm".
CONFIRM_FLAGS = frozenset({"source_not_accepted"})


def source_kind(source: str, recorded_by: str | None, officers: Iterable[str]) -> str:
    """The kind of a stored value's source."""
    if source == SELF_REPORTED_SOURCE:
        return "self_reported"
    if source == COMPUTED_SOURCE:
        return "computed"
    if recorded_by and recorded_by in officers:
        return "officer"
    return "registry"


def _officers(session: Session, names: Iterable[str | None]) -> set[str]:
    from huiqi.accounts.models import User

    wanted = sorted({n for n in names if n})
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(User.username).where(
                User.username.in_(wanted), User.role.in_(["officer", "admin"])
            )
        )
    )


def input_sources(
    session: Session, credit_code: str, fields: Iterable[str], figures_year: int | None
) -> dict[str, dict[str, Any]]:
    """For each stored field the grant relies on: source, kind, recorder and as-of date."""
    return input_sources_many(session, [(credit_code, set(fields), figures_year)])[0]


def input_sources_many(
    session: Session, asks: Sequence[tuple[str, set[str], int | None]]
) -> list[dict[str, dict[str, Any]]]:
    """`input_sources` of several grants (credit code, fields, figures year), in their order,
    with the recorders' roles looked up once for all of them."""
    stored = ent_repo.value_sources_many(
        session, [code for code, _f, _y in asks], {f for _c, fields, _y in asks for f in fields}
    )
    found = [
        ([r for r in stored.get(code, []) if r[0] in fields], year) for code, fields, year in asks
    ]
    officers = _officers(session, (by for rows, _y in found for _f, _yr, _s, by, _a in rows))
    out: list[dict[str, dict[str, Any]]] = []
    for rows, figures_year in found:
        mine: dict[str, dict[str, Any]] = {}
        for fname, year, source, recorded_by, as_of in rows:
            if year in (0, figures_year or -1):
                mine[fname] = {
                    "source": source,
                    "kind": source_kind(source, recorded_by, officers),
                    "by": recorded_by,
                    "as_of": as_of.isoformat(),
                }
        out.append(mine)
    return out


def other_source_value(
    session: Session, credit_code: str, field_name: str, year: int
) -> tuple[str, str] | None:
    """(stored text, source) of the latest value of a field from any source but the enterprise."""
    return ent_repo.latest_value_not_from(
        session, credit_code, field_name, [0, year], SELF_REPORTED_SOURCE
    )


def _decode(field_name: str, text: str) -> Any:
    from huiqi.enterprise.catalogue import catalogue

    found = catalogue().fields.get(field_name)
    kind = found.type if found is not None else "str"
    if kind in ("int", "money"):
        return int(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "bool":
        return text == "1"
    return text


def source_flags(
    session: Session,
    *,
    rule: Any,
    row: dict[str, Any],
    on: date,
    credit_code: str,
    period: int,
    amount_fen: int,
    sources: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Risk flags raised by the sources of a grant's inputs (see the module text)."""
    from huiqi.core.money import format_fen
    from huiqi.enterprise.catalogue import catalogue
    from huiqi.rules.evaluate import amount

    flags: list[dict[str, Any]] = []
    cat = catalogue()
    for fname, info in sorted(sources.items()):
        if info["kind"] != "self_reported":
            continue
        other = other_source_value(session, credit_code, fname, period)
        official = None if other is None else _decode(fname, other[0])
        without = amount(rule, {**row, fname: official}, on)[0]
        if without == amount_fen:
            continue
        label = cat.fields[fname].zh if fname in cat.fields else fname
        before = "无" if official is None else str(official)
        was = "不予补贴" if without is None else format_fen(without)
        flags.append(
            {
                "code": "self_reported",
                "zh": f"企业自报的{label}({before}→{row.get(fname)})使金额由 {was} 变为 "
                f"{format_fen(amount_fen)}",
                "en": f"the enterprise's self-reported {fname} ({before}→{row.get(fname)}) "
                f"changes the amount from {without} to {amount_fen} fen",
                "field": fname,
                "official_value": official if not isinstance(official, date) else str(official),
                "official_source": None if other is None else other[1],
                "reported_value": row.get(fname),
                "amount_without_fen": without,
            }
        )
    accepted = getattr(rule.doc, "accept_sources", None)
    if accepted is not None:
        refused = sorted(f for f, info in sources.items() if info["kind"] not in accepted)
        if refused:
            kinds = sorted({sources[f]["kind"] for f in refused})
            flags.append(
                {
                    "code": "source_not_accepted",
                    "zh": "待核实:"
                    + "、".join(cat.fields[f].zh if f in cat.fields else f for f in refused)
                    + "的来源("
                    + "、".join(KIND_LABELS[k][0] for k in kinds)
                    + ")不在本政策认可的数据来源内,不能审核通过或拨付",
                    "en": "to confirm: "
                    + ", ".join(refused)
                    + " come from a source the rule does not accept ("
                    + ", ".join(KIND_LABELS[k][1] for k in kinds)
                    + "); it cannot be approved or paid",
                    "fields": refused,
                }
            )
    return flags
