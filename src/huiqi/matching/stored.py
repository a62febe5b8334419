"""Stored results read back: decoded per enterprise and rule, counted, listed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from huiqi.core.bulk import chunks, rows_of_codes
from huiqi.enterprise import repository as ent_repo
from huiqi.matching.models import MatchState, RuleVersion
from huiqi.matching.state import (
    RESULT_CODES,
    _forwards,
    _layout,
    _matrix,
    _missing_text,
    unpack2,
)
from huiqi.matching.versions import MatchingError, _rule_from, base_library, published_versions
from huiqi.rules.compiler import Rule
from huiqi.rules.library import Library
from huiqi.rules.plan import RESULT_NAMES, Plan, T, U, compile_plan


@dataclass(frozen=True)
class StoredResult:
    """One enterprise × rule result as stored, with its words rendered from the codes."""

    credit_code: str
    rule_id: str
    rule_version: int
    rule_hash: str
    result: str
    conditions: tuple[int, ...]
    missing: str
    amount_fen: int | None
    evaluated_on: date
    updated_at: datetime


def stored_results(
    session: Session,
    credit_codes: Sequence[str] | None = None,
    rule_ids: Sequence[str] | None = None,
    results: Sequence[str] = ("eligible", "unknown"),
) -> list[StoredResult]:
    """Stored results decoded (by default the eligible and unknown ones), in code and rule order.

    Missing data is rendered from the condition codes and the registry's current values (the
    state is current when its input hash matches, which every run keeps so).
    """
    m = MatchState
    stmt = select(m).order_by(m.credit_code)
    states: list[MatchState] = []
    if credit_codes is None:
        states = list(session.scalars(stmt.execution_options(populate_existing=True)))
    else:
        for chunk in chunks(sorted(set(credit_codes))):
            states += session.scalars(
                stmt.where(m.credit_code.in_(list(chunk))).execution_options(populate_existing=True)
            )
    wanted = {RESULT_CODES[r] for r in results}
    base = base_library()
    out: list[StoredResult] = []
    plans: dict[tuple[int, date], Plan] = {}
    forwards = _forwards(session)  # a moved layout's rows show the versions it moved to
    for state in states:
        layout = _layout(session, forwards.get(state.layout_id, state.layout_id))
        codes = unpack2(
            _matrix([state.results], (len(layout.rule_ids) + 3) // 4), len(layout.rule_ids)
        )[0]
        conds = unpack2(
            _matrix([state.conditions], (sum(layout.widths) + 3) // 4), sum(layout.widths)
        )[0]
        offsets = layout.offsets
        row: dict[str, Any] | None = None
        for r, rid in enumerate(layout.rule_ids):
            if rule_ids is not None and rid not in rule_ids:
                continue
            code = int(codes[r])
            if code not in wanted:
                continue
            mine = tuple(int(c) for c in conds[offsets[r] : offsets[r] + layout.widths[r]])
            missing = ""
            if code == U:
                plan = plans.get((layout.id, state.evaluated_on))
                if plan is None:
                    rules = [
                        _rule_from_hash(session, x, h, base)
                        for x, h in zip(layout.rule_ids, layout.hashes, strict=True)
                    ]
                    plan = plans[(layout.id, state.evaluated_on)] = compile_plan(
                        rules, state.evaluated_on
                    )
                row = row or ent_repo.current_mapping(session, state.credit_code) or {}
                nulls = frozenset(k for k, v in row.items() if v is None)
                missing = _missing_text(plan, r, mine, nulls)
            out.append(
                StoredResult(
                    state.credit_code,
                    rid,
                    layout.versions[r],
                    layout.hashes[r],
                    RESULT_NAMES[code],
                    mine,
                    missing,
                    (state.amounts or {}).get(rid),
                    state.evaluated_on,
                    state.updated_at,
                )
            )
    return out


def _rule_from_hash(session: Session, rule_id: str, rule_hash: str, base: Library) -> Rule:
    """The checked rule of the stored version with this hash."""
    version = session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule_id, RuleVersion.hash == rule_hash)
    ).first()
    if version is None:
        raise MatchingError(f"no stored version of {rule_id!r} with hash {rule_hash}")
    return _rule_from(version)


def codes_of_rule(session: Session, rule_id: str) -> list[tuple[str, int]]:
    """(credit code, result code: 0 ineligible, 1 eligible, 2 unknown) of every stored state with this rule."""
    out: list[tuple[str, int]] = []
    m = MatchState
    for lid in session.scalars(select(m.layout_id).distinct()):
        layout = _layout(session, lid)
        r = layout.index.get(rule_id)
        if r is None:
            continue
        rows = session.execute(select(m.credit_code, m.results).where(m.layout_id == lid)).all()
        if not rows:
            continue
        width = (len(layout.rule_ids) + 3) // 4
        packed = _matrix([bytes(b) for _, b in rows], width)[:, r // 4]
        codes = (packed >> (2 * (r % 4))) & 3
        out += [(c, int(x)) for (c, _), x in zip(rows, codes.tolist(), strict=True)]
    return out


def codes_with_result(session: Session, rule_id: str, result: str = "eligible") -> list[str]:
    """Credit codes whose stored result of this rule is `result` (eligible or unknown)."""
    code = RESULT_CODES[result]
    return sorted(c for c, x in codes_of_rule(session, rule_id) if x == code)


def result_counts(
    session: Session, rule_ids: Iterable[str] | None = None
) -> dict[str, dict[str, int]]:
    """Stored eligible and unknown counts per published rule (decoded in arrays, per layout)."""
    wanted = None if rule_ids is None else set(rule_ids)
    published = [v.rule_id for v in published_versions(session)]
    out = {
        rid: {"eligible": 0, "unknown": 0} for rid in published if wanted is None or rid in wanted
    }
    m = MatchState
    for lid in session.scalars(select(m.layout_id).distinct()):
        layout = _layout(session, lid)
        blobs = [bytes(b) for b in session.scalars(select(m.results).where(m.layout_id == lid))]
        if not blobs:
            continue
        codes = unpack2(_matrix(blobs, (len(layout.rule_ids) + 3) // 4), len(layout.rule_ids))
        eligible = (codes == T).sum(axis=0).tolist()
        unknown = (codes == U).sum(axis=0).tolist()
        for r, rid in enumerate(layout.rule_ids):
            if rid in out:
                out[rid]["eligible"] += int(eligible[r])
                out[rid]["unknown"] += int(unknown[r])
    return out


def evaluated_on(session: Session, credit_code: str) -> date | None:
    """The date an enterprise's stored results were evaluated for."""
    return session.scalar(
        select(MatchState.evaluated_on).where(MatchState.credit_code == credit_code)
    )


def evaluated_on_many(session: Session, credit_codes: Sequence[str]) -> dict[str, date]:
    """The evaluation dates of these enterprises' stored results (those that have any)."""
    if not credit_codes:
        return {}
    t: Table = MatchState.__table__  # type: ignore[assignment]
    # one index probe per code (bulk.rows_of_codes), not a scan of every enterprise's state
    rows = session.execute(
        rows_of_codes(session, t, [t.c.credit_code, t.c.evaluated_on], credit_codes)
    )
    return {str(code): on for code, on in rows}


def unknown_count(session: Session, credit_code: str) -> int:
    """How many published rules wait for this enterprise's data."""
    return int(
        session.scalar(select(MatchState.unknown).where(MatchState.credit_code == credit_code)) or 0
    )


def holders(session: Session, rule_id: str) -> list[str]:
    """Credit codes with a stored eligible or unknown result of this rule."""
    return sorted(c for c, x in codes_of_rule(session, rule_id) if x != 0)
