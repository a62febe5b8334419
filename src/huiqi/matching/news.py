"""What a batch's changed results tell people: new, changed and ended results, column-wise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.events import ChangeSet, ResultChange, RuleFacts
from huiqi.matching.models import RuleVersion
from huiqi.matching.state import (
    ABSENT,
    Layout,
    _Fresh,
    _missing_text,
    _old_dropped,
    _old_results,
    _Stored,
)
from huiqi.rules.compiler import Rule
from huiqi.rules.plan import RESULT_NAMES, Plan, T, U


def batch_news(
    plan: Plan,
    pairs: Sequence[tuple[RuleVersion, Rule]],
    layout: Layout,
    session: Session,
    frame: pl.DataFrame,
    rows: np.ndarray,
    fresh: _Fresh,
    stored: _Stored,
) -> ChangeSet:
    """What changed for people among `rows`: new, changed and ended results, column-wise.

    A result is news when it differs from the stored one or when an eligible 免申即享 amount
    changed; the same result under a new rule version is not, nor is an unknown result that
    stays unknown (its data request stands). Each enterprise's news carry the stamp of the
    stored state they replace (`ChangeSet.since`), which their dedupe keys name.
    """
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int32)
        return ChangeSet((), (), empty, empty, empty, empty, np.zeros(0, dtype=object))
    meta = [
        (
            str(version.version),
            rule.doc.title.zh,
            rule.doc.mode,
            rule.doc.legal_basis[0].label(),
        )
        for version, rule in pairs
    ]
    sub = _Stored(
        stored.present[rows],
        stored.layout_ids[rows],
        stored.hashes[rows],
        [stored.results[i] for i in rows.tolist()],
        [stored.conditions[i] for i in rows.tolist()],
        [stored.amounts[i] for i in rows.tolist()],
        [stored.evaluated_on[i] for i in rows.tolist()],
        [stored.stamps[i] for i in rows.tolist()],
    )
    new = fresh.results[rows]
    old = _old_results(session, sub, layout)
    # a new rule version alone is no news: the enterprise hears of a rule when its result or
    # its 免申即享 amount changes (the stored row still moves to the new version's layout)
    previous = np.where(old == ABSENT, 0, old)
    news = new != previous
    amount_rows = [
        k
        for k, i in enumerate(rows.tolist())
        if fresh.amounts[i] != sub.amounts[k] and (fresh.amounts[i] or sub.amounts[k])
    ]
    for k in amount_rows:
        i = int(rows[k])
        for rid in set(fresh.amounts[i]) | set(sub.amounts[k]):
            if rid in layout.index and fresh.amounts[i].get(rid) != sub.amounts[k].get(rid):
                r = layout.index[rid]
                if new[k, r] == T:
                    news[k, r] = True
    codes = frame["credit_code"].to_list()
    names = frame["name"].fill_null("").to_list()
    offsets = layout.offsets
    ks, rs = np.nonzero(news)
    at = rows[ks]
    got = new[ks, rs]
    before = old[ks, rs]
    missing = np.full(ks.size, "", dtype=object)
    unknown = np.flatnonzero(got == U)
    # the missing data of unknown results: rendered once per distinct (codes, nulls) of a rule
    nulls: dict[str, np.ndarray] = {}
    by_rule = unknown[np.argsort(rs[unknown], kind="stable")]
    bounds = (
        np.flatnonzero(np.r_[True, rs[by_rule][1:] != rs[by_rule][:-1], True])
        if by_rule.size
        else np.zeros(1, dtype=np.int64)
    )
    for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        sel = by_rule[first:stop]
        r = int(rs[sel[0]])
        w, o = layout.widths[r], offsets[r]
        cols = sorted({c for a in plan.rules[r].atom_prims for c in plan.prims[a].cols})
        present = [c for c in cols if c in frame.columns]
        for c in present:
            if c not in nulls:
                nulls[c] = frame[c].is_null().to_numpy()
        rows_at = at[sel]
        conds = fresh.conditions[rows_at, o : o + w].astype(np.int64)
        if 2 * w + len(present) <= 62:
            # one integer per (codes, nulls) key: a 1-D unique is far cheaper than a row-wise one
            keys = np.zeros(sel.size, dtype=np.int64)
            for j in range(w):
                keys |= conds[:, j] << (2 * j)
            for k, c in enumerate(present):
                keys |= nulls[c][rows_at].astype(np.int64) << (2 * w + k)
            uniq, inverse = np.unique(keys, return_inverse=True)
            decoded = [
                ([(int(u) >> (2 * j)) & 3 for j in range(w)], int(u) >> (2 * w)) for u in uniq
            ]
        else:
            parts = [conds] + [nulls[c][rows_at].astype(np.int64)[:, None] for c in present]
            rows_u, inverse = np.unique(np.concatenate(parts, axis=1), axis=0, return_inverse=True)
            decoded = [
                (u[:w].tolist(), sum(int(b) << k for k, b in enumerate(u[w:].tolist())))
                for u in rows_u
            ]
        texts = [
            _missing_text(
                plan, r, codes_u, frozenset(c for k, c in enumerate(present) if bits >> k & 1)
            )
            for codes_u, bits in decoded
        ]
        missing[sel] = np.asarray(texts, dtype=object)[inverse.reshape(-1)]
    paying = np.asarray([rule.doc.mode == "auto_grant" for _, rule in pairs], dtype=bool)
    amounts: dict[int, int] = {}
    for n in np.flatnonzero(paying[rs] & (got == T)).tolist():
        fen = fresh.amounts[int(at[n])].get(layout.rule_ids[int(rs[n])])
        if fen is not None:
            amounts[n] = fen
    return ChangeSet(
        tuple(RuleFacts(layout.rule_ids[r], *meta[r]) for r in range(len(layout.rule_ids))),
        tuple(zip(codes, names, strict=True)),
        at.astype(np.int32),
        rs.astype(np.int32),
        got.astype(np.int8),
        before.astype(np.int8),
        missing,
        amounts,
        tuple(stored.stamps),
    )


def ended_results(
    session: Session, layout: Layout, frame: pl.DataFrame, rows: np.ndarray, stored: _Stored
) -> list[ResultChange]:
    """Eligible or unknown results of rules no longer published, ended (as ineligible)."""
    sub = _Stored(
        stored.present[rows],
        stored.layout_ids[rows],
        stored.hashes[rows],
        [stored.results[i] for i in rows.tolist()],
        [],
        [],
        [],
        [],
    )
    dropped = _old_dropped(session, sub, layout)
    if not dropped:
        return []
    versions = {
        v.rule_id: v
        for v in session.scalars(
            select(RuleVersion).where(RuleVersion.rule_id.in_({rid for _, rid, _ in dropped}))
        )
        if v.status in ("withdrawn", "retired")
    }
    codes = frame["credit_code"].to_list()
    names = frame["name"].fill_null("").to_list()
    out = []
    for k, rid, code in dropped:
        i = int(rows[k])
        v = versions.get(rid)
        out.append(
            ResultChange(
                credit_code=codes[i],
                rule_id=rid,
                rule_version=str(v.version) if v else "",
                result="ineligible",
                rule_title=v.title_zh if v else rid,
                enterprise_name=names[i],
                mode=v.mode if v else "push",
                legal_basis=f"{v.doc_number} {v.article}" if v else "",
                previous=RESULT_NAMES[code],
            )
        )
    return out
