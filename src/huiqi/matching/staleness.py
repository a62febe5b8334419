"""Stored results that no longer reflect their inputs, rule or date, and refreshing them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.enterprise.models import enterprise_current
from huiqi.events import ResultChange
from huiqi.matching.models import MatchLayout, RuleVersion
from huiqi.matching.run import BATCH_PAIRS, rematch_enterprises
from huiqi.matching.state import (
    ABSENT,
    Layout,
    _amounts,
    _codes,
    _frame,
    _layout,
    _layout_key,
    _layout_of,
    _matrix,
    _old_results,
    _plan_signature,
    _stored,
    unpack2,
)
from huiqi.matching.versions import published_rules
from huiqi.rules.compiler import Rule
from huiqi.rules.plan import Plan, compile_plan


@dataclass
class Stale:
    """A stored result that no longer reflects its inputs, rule or date."""

    credit_code: str
    rule_id: str
    why: str


def _transient_layout(
    session: Session, pairs: Sequence[tuple[RuleVersion, Rule]], plan: Plan, on: date
) -> Layout:
    """The layout of the published rules on `on`, without storing it (read-only checks)."""
    rules, key = _layout_key(pairs, plan)
    row = session.scalars(select(MatchLayout).where(MatchLayout.key == key)).first()
    if row is not None:
        return _layout_of(row)
    return Layout(
        -1,
        tuple(v.rule_id for v, _ in pairs),
        tuple(v.version for v, _ in pairs),
        tuple(v.hash for v, _ in pairs),
        tuple(len(pr.atom_prims) for pr in plan.rules),
    )


def stale_results(session: Session, on: date | None = None) -> list[Stale]:
    """Results whose stored state differs from a fresh evaluation (rule, data or date changed).

    The whole registry is evaluated (the engine is fast) and compared with what is stored, so
    a pair stored as eligible or unknown that is now otherwise, or a pair stored as ineligible
    (or not at all) that now fits, are both found. Nothing is written.
    """
    on = on or clock.today()
    pairs = published_rules(session)
    out: list[Stale] = []
    if not pairs:
        return out
    plan = compile_plan([r for _, r in pairs], on)
    layout = _transient_layout(session, pairs, plan, on)
    plans: dict[date, Plan] = {}
    t = enterprise_current
    ids = list(session.scalars(select(t.c.id).order_by(t.c.id)))
    size = max(500, BATCH_PAIRS // len(pairs))
    offsets = layout.offsets
    for start in range(0, len(ids), size):
        frame = _frame(session, ids=ids[start : start + size])
        fresh = _codes(session, plan, frame, "batch")
        fresh.amounts = _amounts(pairs, frame, fresh.results, on)
        stored = _stored(session, frame["id"].to_list())
        old = _old_results(session, stored, layout)
        codes = frame["credit_code"].to_list()
        for i in range(frame.height):
            other = _layout(session, int(stored.layout_ids[i])) if stored.present[i] else None
            old_conds = (
                unpack2(
                    _matrix([stored.conditions[i] or b""], (sum(other.widths) + 3) // 4),
                    sum(other.widths),
                )[0]
                if other is not None
                else None
            )
            for r, rid in enumerate(layout.rule_ids):
                new_code, old_code = int(fresh.results[i, r]), int(old[i, r])
                previous = 0 if old_code == ABSENT else old_code
                if new_code == 0 and previous == 0:
                    continue
                j = other.index.get(rid) if other is not None else None
                same_rule = (
                    other is not None and j is not None and other.hashes[j] == layout.hashes[r]
                )
                if new_code == previous and same_rule:
                    assert other is not None and j is not None and old_conds is not None
                    o = other.offsets[j]
                    same_conds = other.widths[j] == layout.widths[r] and np.array_equal(
                        old_conds[o : o + other.widths[j]],
                        fresh.conditions[i, offsets[r] : offsets[r] + layout.widths[r]],
                    )
                    same_amount = stored.amounts[i].get(rid) == fresh.amounts[i].get(rid)
                    if same_conds and same_amount:
                        continue
                if other is not None and j is not None and not same_rule:
                    why = f"rule changed (stored v{other.versions[j]}, now v{layout.versions[r]})"
                elif (then := stored.evaluated_on[i]) is not None and then != on:
                    earlier = plans.setdefault(then, compile_plan([x for _, x in pairs], then))
                    if _plan_signature(earlier, r) != _plan_signature(plan, r):
                        why = f"evaluated on {then}; the rule reads differently on {on}"
                    else:
                        why = "enterprise data changed"
                else:
                    why = "enterprise data changed"
                out.append(Stale(codes[i], rid, why))
    return out


def refresh_stale(session: Session, on: date | None = None) -> list[ResultChange]:
    """Re-evaluate exactly the enterprises whose stored results are stale."""
    stale = stale_results(session, on)
    return rematch_enterprises(session, {s.credit_code for s in stale}, on) if stale else []
