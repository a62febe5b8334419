"""Stored match state: layouts, packed codes, evaluation of a batch and writing its rows.

One row per enterprise (match_state): every rule's result and every condition's outcome packed
two bits each, in the order of a match_layout. A run compares the packed codes of a batch with
the stored ones as arrays and writes only the enterprises whose codes changed; an enterprise
whose input hash and layout are unchanged is not even evaluated. Words (reasons, missing data,
near misses) are rendered from the registry and the codes when shown.

A new rule version whose codes equal the old ones rewrites no row: a full run records that every
row of the old layout compared equal and moves the layout (`match_layout.moved_to`) to the new
one, whose rule versions its rows then count as (read through `_forwards`).

Names with a leading underscore are this package's own (used by its other modules only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import LargeBinary, Text, cast, delete, func, select, update
from sqlalchemy.orm import Session

from huiqi.core.bulk import chunks, insert_rows
from huiqi.core.db import utcnow
from huiqi.enterprise.models import enterprise_current
from huiqi.enterprise.service import contract_schema
from huiqi.matching.models import MatchLayout, MatchState, RuleVersion
from huiqi.matching.versions import MatchingError, _rule_from
from huiqi.rules.batch import pack_codes, run_batch
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import amount, deciding_missing
from huiqi.rules.plan import RESULT_NAMES, Plan, T, U, compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import code_sql, prim_sql, rule_expr

# ---------------------------------------------------------------------------------------- hashing


def _plan_signature(plan: Plan, r: int) -> tuple[Any, ...]:
    """What a rule's evaluation depends on besides the inputs: its resolved tests on the plan's date."""
    pr = plan.rules[r]
    return (pr.in_force, tuple(plan.prims[i] for i in pr.atom_prims), tuple(map(repr, pr.resolved)))


def _input_hashes(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Per row, a 64-bit hash of the values the rules read (missing shown as such, never as zero).

    Polars hashes are stable within one polars version; after an upgrade stored hashes differ
    and the next run re-evaluates every enterprise once (finding nothing new, it notifies nobody).
    """
    if not columns or frame.height == 0:
        return np.zeros(frame.height, dtype=np.int64)
    hashed = frame.select(list(columns)).hash_rows(seed=7)
    return hashed.to_numpy().view(np.int64)


RESULT_CODES = {name: code for code, name in RESULT_NAMES.items()}
ABSENT = 3  # result code of a rule a stored layout does not have


@dataclass(frozen=True)
class Layout:
    """A stored layout: rule ids, versions, hashes and condition counts by position."""

    id: int
    rule_ids: tuple[str, ...]
    versions: tuple[int, ...]
    hashes: tuple[str, ...]
    widths: tuple[int, ...]

    @property
    def index(self) -> dict[str, int]:
        """Position of each rule id."""
        return {rid: i for i, rid in enumerate(self.rule_ids)}

    @property
    def offsets(self) -> list[int]:
        """Position of each rule's first condition in the packed conditions."""
        out, at = [], 0
        for w in self.widths:
            out.append(at)
            at += w
        return out


_LAYOUTS: dict[int, Layout] = {}


def _layout_of(row: MatchLayout) -> Layout:
    return Layout(
        row.id,
        tuple(str(r[0]) for r in row.rules),
        tuple(int(r[1]) for r in row.rules),
        tuple(str(r[2]) for r in row.rules),
        tuple(int(r[3]) for r in row.rules),
    )


def _layout(session: Session, layout_id: int) -> Layout:
    """A stored layout by id (layouts never change once written)."""
    if layout_id not in _LAYOUTS:
        row = session.get(MatchLayout, layout_id)
        if row is None:
            raise MatchingError(f"no match layout {layout_id}")
        _LAYOUTS[layout_id] = _layout_of(row)
    return _LAYOUTS[layout_id]


def _forwards(session: Session) -> dict[int, int]:
    """Moved layouts: the id of the layout whose versions each one's stored rows count as."""
    moved: dict[int, int] = {
        lid: to
        for lid, to in session.execute(
            select(MatchLayout.id, MatchLayout.moved_to).where(MatchLayout.moved_to.is_not(None))
        )
        if to is not None
    }
    out: dict[int, int] = {}
    for lid in moved:
        seen, at = {lid}, moved[lid]
        while at in moved and at not in seen:  # moves are compressed; a chain is a fallback
            seen.add(at)
            at = moved[at]
        out[lid] = at
    return out


def _key_of(rules: Sequence[list[Any]], plan: Plan) -> str:
    """The key of a layout's rule list with each rule's tests on the plan's date."""
    signature = repr([(rules[r], _plan_signature(plan, r)) for r in range(len(rules))])
    return hashlib.sha256(signature.encode("utf-8")).hexdigest()[:32]


def _layout_key(
    pairs: Sequence[tuple[RuleVersion, Rule]], plan: Plan
) -> tuple[list[list[Any]], str]:
    """A layout's rule list and its key (which also covers each rule's tests on the plan's date)."""
    rules: list[list[Any]] = [
        [v.rule_id, v.version, v.hash, len(plan.rules[r].atom_prims)]
        for r, (v, _rule) in enumerate(pairs)
    ]
    return rules, _key_of(rules, plan)


def _current_layout(
    session: Session, pairs: Sequence[tuple[RuleVersion, Rule]], plan: Plan, on: date
) -> Layout:
    """The layout of the published rules as evaluated on `on` (stored when new)."""
    rules, key = _layout_key(pairs, plan)
    row = session.scalars(select(MatchLayout).where(MatchLayout.key == key)).first()
    if row is None:
        row = MatchLayout(key=key, rules=rules, on=on, created_at=utcnow())
        session.add(row)
        session.flush()
    elif row.moved_to is not None:
        # current again (a parameter set back, say): its rows hold codes evaluated under it
        row.moved_to = None
        session.flush()
    layout = _layout_of(row)
    _LAYOUTS[layout.id] = layout
    return layout


@dataclass(frozen=True)
class _Narrow:
    """Rows stored under an older layout of the same rules and widths differ from the current
    layout's only in the rules at `positions` (another version, or tests that read otherwise)."""

    positions: tuple[int, ...]
    plan: Plan | None  # those rules alone on the run's date (None when there are none)
    results: tuple[int, int]  # first byte and byte count of `results` holding their codes
    conditions: tuple[int, int]  # the same for their conditions in `conditions` (0 bytes: none)


def _pays(rule: Rule) -> bool:
    """Whether the rule's eligible results store an amount."""
    return rule.formula is not None and rule.doc.mode == "auto_grant"


def _narrowing(
    session: Session,
    old: Layout,
    layout: Layout,
    pairs: Sequence[tuple[RuleVersion, Rule]],
    plan: Plan,
) -> _Narrow | None:
    """How rows stored under `old` compare with `layout` by the rules that differ alone.

    None when they cannot: other rules or widths, a differing rule that pays an amount, or an
    old layout whose key today's parameters do not give again (its tests are then unknown).
    """
    if old.id == layout.id or old.rule_ids != layout.rule_ids or old.widths != layout.widths:
        return None
    row = session.get(MatchLayout, old.id)
    if row is None:
        return None
    rules: list[Rule] = []
    for r, (version, rule) in enumerate(pairs):
        if old.hashes[r] != version.hash:
            stored = session.scalars(
                select(RuleVersion).where(
                    RuleVersion.rule_id == old.rule_ids[r], RuleVersion.hash == old.hashes[r]
                )
            ).first()
            if stored is None:
                return None
            try:
                rule = _rule_from(stored)
            except RuleValidationError:  # refused by today's checks: compared in full instead
                return None
        rules.append(rule)
    earlier = compile_plan(rules, row.on)
    listed = [list(x) for x in zip(old.rule_ids, old.versions, old.hashes, old.widths, strict=True)]
    if _key_of(listed, earlier) != row.key:
        return None
    positions = tuple(
        r
        for r in range(len(rules))
        if old.hashes[r] != layout.hashes[r]
        or repr(_plan_signature(earlier, r)) != repr(_plan_signature(plan, r))
    )
    if any(_pays(rules[r]) or _pays(pairs[r][1]) for r in positions):
        return None
    if not positions:
        return _Narrow((), None, (0, 0), (0, 0))
    offsets = layout.offsets
    conds = [offsets[r] + j for r in positions for j in range(layout.widths[r])]
    first_r, last_r = positions[0] // 4, positions[-1] // 4
    first_c, last_c = (conds[0] // 4, conds[-1] // 4) if conds else (0, -1)
    return _Narrow(
        positions,
        compile_plan([pairs[r][1] for r in positions], plan.on),
        (first_r, last_r - first_r + 1),
        (first_c, last_c - first_c + 1),
    )


def _unchanged(
    session: Session, narrow: _Narrow, layout: Layout, frame: pl.DataFrame
) -> np.ndarray:
    """Which rows of `frame` (stored under the layout `narrow` describes, with the same input
    hash) hold the codes the differing rules give now: their stored rows stay as they are."""
    if narrow.plan is None:
        return np.ones(frame.height, dtype=bool)
    m = MatchState.__table__.c
    (r0, rn), (c0, cn) = narrow.results, narrow.conditions
    cols: list[Any] = [m.enterprise_id, func.substr(m.results, r0 + 1, rn, type_=LargeBinary)]
    if cn:
        cols.append(func.substr(m.conditions, c0 + 1, cn, type_=LargeBinary))
    ids = frame["id"].to_list()
    got = _rows(session, cols, ids)
    present = np.asarray([eid in got for eid in ids], dtype=bool)
    fresh = _codes(session, narrow.plan, frame, "batch")
    blank = (None, b"\0" * rn, b"\0" * cn)
    rows = [got.get(eid, blank) for eid in ids]
    old_r = unpack2(_matrix([bytes(x[1]) for x in rows], rn), 4 * rn)
    same = (old_r[:, [r - 4 * r0 for r in narrow.positions]] == fresh.results).all(axis=1)
    if cn:
        offsets = layout.offsets
        at = [offsets[r] + j - 4 * c0 for r in narrow.positions for j in range(layout.widths[r])]
        old_c = unpack2(_matrix([bytes(x[2]) for x in rows], cn), 4 * cn)
        same &= (old_c[:, at] == fresh.conditions).all(axis=1)
    return same & present


def pack2(codes: np.ndarray) -> np.ndarray:
    """(n, c) two-bit codes → (n, ceil(c / 4)) bytes, code j at bits 2(j % 4) of byte j // 4."""
    n, c = codes.shape
    pad = (-c) % 4
    if pad:
        codes = np.concatenate([codes, np.zeros((n, pad), dtype=np.uint8)], axis=1)
    q = codes.astype(np.uint8).reshape(n, -1, 4)
    return q[:, :, 0] | (q[:, :, 1] << 2) | (q[:, :, 2] << 4) | (q[:, :, 3] << 6)


def unpack2(packed: np.ndarray, c: int) -> np.ndarray:
    """Inverse of pack2 for c codes per row."""
    n = packed.shape[0]
    parts = np.stack([(packed >> s) & 3 for s in (0, 2, 4, 6)], axis=2)
    return parts.reshape(n, -1)[:, :c].astype(np.uint8)


def _blobs(packed: np.ndarray) -> list[bytes]:
    """One bytes value per row of a packed matrix."""
    width = packed.shape[1]
    data = np.ascontiguousarray(packed).tobytes()
    return [data[i * width : (i + 1) * width] for i in range(packed.shape[0])]


def _matrix(blobs: Sequence[bytes], width: int) -> np.ndarray:
    """Rows of equal-length bytes → (n, width) uint8 matrix."""
    if not blobs:
        return np.zeros((0, width), dtype=np.uint8)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), width)


@dataclass
class _Fresh:
    """A batch evaluated: result codes (n, rules) and condition codes (n, conditions)."""

    results: np.ndarray
    conditions: np.ndarray
    amounts: list[dict[str, int]]


def _codes(session: Session, plan: Plan, frame: pl.DataFrame, engine: str) -> _Fresh:
    """Result and condition codes of every rule for the frame's rows."""
    n = frame.height
    atoms = [i for pr in plan.rules for i in pr.atom_prims]
    if engine == "batch":
        batch = run_batch(plan, frame)

        def codes(t: np.ndarray, f: np.ndarray) -> np.ndarray:
            tb = np.unpackbits(t.view(np.uint8), axis=1, count=n, bitorder="little")
            fb = np.unpackbits(f.view(np.uint8), axis=1, count=n, bitorder="little")
            return (tb + 2 * (1 - tb - fb)).astype(np.uint8)

        results = codes(batch.rule_t, batch.rule_f).T
        prims = codes(batch.prim_t, batch.prim_f)
        conditions = prims[atoms].T if atoms else np.zeros((n, 0), dtype=np.uint8)
    else:
        ids = frame["id"].to_list()
        cols_r, cols_c = [], []
        for r, pr in enumerate(plan.rules):
            codes_r, conds_r = _sql_codes(session, plan, r, ids)
            cols_r.append(codes_r.astype(np.uint8))
            for j in range(len(pr.atom_prims)):
                cols_c.append(((conds_r >> (2 * j)) & 3).astype(np.uint8))
        results = np.stack(cols_r, axis=1) if cols_r else np.zeros((n, 0), dtype=np.uint8)
        conditions = np.stack(cols_c, axis=1) if cols_c else np.zeros((n, 0), dtype=np.uint8)
    return _Fresh(np.ascontiguousarray(results), np.ascontiguousarray(conditions), [])


def _amounts(
    pairs: Sequence[tuple[RuleVersion, Rule]],
    frame: pl.DataFrame,
    results: np.ndarray,
    on: date,
) -> list[dict[str, int]]:
    """Benefit amounts of eligible 免申即享 results per row (the grant is paid from them).

    Other rules' estimates are computed when shown (我的政策), not stored.
    """
    out: list[dict[str, int]] = [{} for _ in range(frame.height)]
    for r, (_version, rule) in enumerate(pairs):
        if rule.formula is None or rule.doc.mode != "auto_grant":
            continue
        rows = np.flatnonzero(results[:, r] == T)
        if rows.size == 0:
            continue
        for i, row in zip(rows.tolist(), frame[rows.tolist()].to_dicts(), strict=True):
            fen = amount(rule, row, on)[0]
            if fen is not None:
                out[i][rule.id] = fen
    return out


def _missing_text(plan: Plan, r: int, conds: Sequence[int], nulls: frozenset[str]) -> str:
    """The missing fields that keep an unknown result unknown, from condition codes and nulls."""
    pr = plan.rules[r]
    atom_missing = []
    for i in pr.atom_prims:
        prim = plan.prims[i]
        atom_missing.append([] if prim.op == "never" else [c for c in prim.cols if c in nulls])
    return ",".join(deciding_missing(pr.tree, list(conds), atom_missing))


_STATE_COLS = (
    "enterprise_id",
    "credit_code",
    "layout_id",
    "input_hash",
    "evaluated_on",
    "results",
    "conditions",
    "amounts",
    "eligible",
    "unknown",
    "updated_at",
)


@dataclass
class _Stored:
    """The stored states of a batch's rows (aligned with the frame; missing rows have no layout)."""

    present: np.ndarray  # bool
    layout_ids: np.ndarray  # int64, -1 where absent
    hashes: np.ndarray  # int64
    results: list[bytes | None]
    conditions: list[bytes | None]
    amounts: list[dict[str, int]]
    evaluated_on: list[date | None]
    stamps: list[str]  # when each stored state was written (state_stamp; "" where absent)


def _rows(session: Session, cols: Sequence[Any], ids: Sequence[int]) -> dict[int, Any]:
    """match_state columns (the first being enterprise_id) of these enterprises, by id."""
    m = MatchState.__table__.c
    got: dict[int, Any] = {}
    # plain tuples fetched at once (not row by row): a batch reads tens of thousands of rows
    conn = session.connection()
    if ids and max(ids) - min(ids) < 2 * len(ids):
        # a dense run of ids (a full run's batch): one range scan instead of IN lists
        wanted = set(ids)
        stmt = select(*cols).where(m.enterprise_id.between(min(ids), max(ids)))
        got = {row[0]: row for row in conn.execute(stmt).all() if row[0] in wanted}
    else:
        size = 2000 if session.get_bind().dialect.name != "sqlite" else 500
        for chunk in chunks(list(ids), size):
            stmt = select(*cols).where(m.enterprise_id.in_(list(chunk)))
            got.update((row[0], row) for row in conn.execute(stmt).all())
    return got


def _stored(session: Session, ids: Sequence[int], full: bool = True) -> _Stored:
    """Stored states of these enterprise ids, in the given order (a moved layout read as the
    layout it moved to)."""
    m = MatchState.__table__.c
    cols: list[Any] = [m.enterprise_id, m.layout_id, m.input_hash]
    if full:
        # amounts as text: nearly all are empty, and the driver would decode each one
        cols += [m.results, m.conditions, cast(m.amounts, Text), m.evaluated_on, m.updated_at]
    got = _rows(session, cols, ids)
    n = len(ids)
    out = _Stored(
        np.zeros(n, dtype=bool),
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        [None] * n,
        [None] * n,
        [{} for _ in range(n)],
        [None] * n,
        [""] * n,
    )
    forwards = _forwards(session)
    for i, eid in enumerate(ids):
        if eid not in got:
            continue
        row = got[eid]
        out.present[i] = True
        out.layout_ids[i] = forwards.get(row[1], row[1])
        out.hashes[i] = row[2]
        if full:
            out.results[i], out.conditions[i] = bytes(row[3]), bytes(row[4])
            out.amounts[i] = json.loads(row[5]) if row[5] and row[5] != "{}" else {}
            out.evaluated_on[i] = row[6]
            out.stamps[i] = state_stamp(row[7])
    return out


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def state_stamp(written: datetime) -> str:
    """A stored state's write time as a short text (microseconds since 1970 in hex; a time
    without its zone, as SQLite gives it back, is UTC)."""
    if written.tzinfo is None:
        written = written.replace(tzinfo=UTC)
    return format((written - EPOCH) // timedelta(microseconds=1), "x")


def _old_results(session: Session, stored: _Stored, layout: Layout) -> np.ndarray:
    """Stored result codes mapped onto `layout`'s positions (ABSENT where there is none)."""
    n, width = len(stored.results), len(layout.rule_ids)
    out = np.full((n, width), ABSENT, dtype=np.uint8)
    for lid in np.unique(stored.layout_ids[stored.present]).tolist():
        rows = np.flatnonzero(stored.layout_ids == lid)
        old = _layout(session, int(lid))
        blobs = [stored.results[i] or b"" for i in rows.tolist()]
        codes = unpack2(_matrix(blobs, (len(old.rule_ids) + 3) // 4), len(old.rule_ids))
        where = layout.index
        src = [j for j, rid in enumerate(old.rule_ids) if rid in where]
        dst = [where[old.rule_ids[j]] for j in src]
        block = out[rows]
        block[:, dst] = codes[:, src]
        out[rows] = block
    return out


def _old_dropped(session: Session, stored: _Stored, layout: Layout) -> list[tuple[int, str, int]]:
    """(row, rule id, code) of stored eligible or unknown results of rules `layout` no longer has."""
    out: list[tuple[int, str, int]] = []
    keep = set(layout.rule_ids)
    for lid in np.unique(stored.layout_ids[stored.present]).tolist():
        old = _layout(session, int(lid))
        gone = [j for j, rid in enumerate(old.rule_ids) if rid not in keep]
        if not gone:
            continue
        rows = np.flatnonzero(stored.layout_ids == lid)
        blobs = [stored.results[i] or b"" for i in rows.tolist()]
        codes = unpack2(_matrix(blobs, (len(old.rule_ids) + 3) // 4), len(old.rule_ids))
        for j in gone:
            for k in np.flatnonzero(codes[:, j] != 0).tolist():
                out.append((int(rows[k]), old.rule_ids[j], int(codes[k, j])))
    return out


def _frame(
    session: Session, ids: Sequence[int] | None = None, codes: Sequence[str] | None = None
) -> pl.DataFrame:
    """The field-contract frame (with the enterprise id) of these enterprises, read column-wise."""
    t = enterprise_current
    schema = {"id": pl.Int64, **contract_schema()}
    names = list(schema)
    stmt = select(*(t.c[n] for n in names))
    rows: list[Any] = []
    if ids is not None and ids and max(ids) - min(ids) < 2 * len(ids):
        # a dense run of ids (a full run's batch): one range scan instead of IN lists
        rows = list(session.execute(stmt.where(t.c.id >= min(ids), t.c.id <= max(ids))).all())
    elif ids is not None:
        for part in chunks(list(ids)):
            rows += session.execute(stmt.where(t.c.id.in_(list(part)))).all()
    elif codes is not None:
        for names_part in chunks(list(codes)):
            rows += session.execute(stmt.where(t.c.credit_code.in_(list(names_part)))).all()
    # built column by column: about twice as fast as from row tuples for a batch's rows
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    frame = pl.DataFrame(
        [pl.Series(n, values, dtype=schema[n]) for n, values in zip(names, columns, strict=True)]
    )
    if ids is not None:
        frame = frame.filter(pl.col("id").is_in(list(ids)))
    return frame.sort("id")


def _write_states(
    session: Session,
    layout: Layout,
    frame: pl.DataFrame,
    rows: np.ndarray,
    fresh: _Fresh,
    hashes: np.ndarray,
    replace: np.ndarray,
    on: date,
) -> None:
    """Store the states of `rows` (positions in the batch): delete the old ones, insert anew."""
    if rows.size == 0:
        return
    t = MatchState.__table__
    ids = frame["id"].to_numpy()[rows]
    old = ids[replace[rows]].tolist()
    for chunk in chunks(old, 2000 if session.get_bind().dialect.name != "sqlite" else 500):
        session.execute(
            delete(MatchState)
            .where(MatchState.enterprise_id.in_(list(chunk)))
            .execution_options(synchronize_session=False)
        )
    res = fresh.results[rows]
    blobs_r = _blobs(pack2(res))
    blobs_c = _blobs(pack2(fresh.conditions[rows]))
    eligible = (res == T).sum(axis=1).tolist()
    unknown = (res == U).sum(axis=1).tolist()
    codes = frame["credit_code"].to_list()
    now = utcnow()
    insert_rows(
        session,
        t,  # type: ignore[arg-type]
        _STATE_COLS,
        (
            (
                int(ids[k]),
                codes[i],
                layout.id,
                int(hashes[i]),
                on,
                blobs_r[k],
                blobs_c[k],
                fresh.amounts[i],
                eligible[k],
                unknown[k],
                now,
            )
            for k, i in enumerate(rows.tolist())
        ),
    )


def _move_layouts(session: Session, kept: dict[int, list[np.ndarray]], layout: Layout) -> int:
    """Move each layout whose every stored row was kept (compared equal) to `layout`; rows moved.

    `kept` holds, per layout the rows count as, the enterprise ids a full run compared equal
    under `layout` and left unwritten. A layout is moved only when all its rows (and those of
    layouts already moved to it) are among them; otherwise the rows keep their layout and the
    next run compares them again.
    """
    forwards = _forwards(session)
    m = MatchState.__table__.c
    moved = 0
    for lid, parts in kept.items():
        sources = [lid] + [src for src, to in forwards.items() if to == lid]
        rows = np.asarray(
            session.execute(select(m.enterprise_id).where(m.layout_id.in_(sources)))
            .scalars()
            .all(),
            dtype=np.int64,
        )
        if not np.isin(rows, np.concatenate(parts)).all():
            continue
        session.execute(
            update(MatchLayout)
            .where(MatchLayout.id.in_(sources))
            .values(moved_to=layout.id)
            .execution_options(synchronize_session=False)
        )
        moved += rows.size
    return moved


def _sql_codes(
    session: Session, plan: Plan, r: int, order: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Result and packed condition codes of rule r computed inside the database."""
    t = enterprise_current
    pr = plan.rules[r]
    cols = [t.c.id, code_sql(rule_expr(plan, r, t))]
    cols += [code_sql(prim_sql(plan.prims[i], t)) for i in pr.atom_prims]
    got: dict[int, Any] = {}
    for chunk in chunks(order):
        for row in session.execute(select(*cols).where(t.c.id.in_(list(chunk)))):
            got[row[0]] = row[1:]
    codes = np.asarray([int(got[eid][0]) for eid in order], dtype=np.int8)
    conds = np.asarray(
        [pack_codes([int(v) for v in got[eid][1:]]) for eid in order], dtype=np.int64
    )
    return codes, conds
