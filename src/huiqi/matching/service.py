"""Matching service: publish rules into the database, run them over the registry, keep results current.

Services take the session first and never commit; the CLI or request boundary commits. Functions
that write results return the rows that are new or changed, so a caller (notify, grants) can act on
them in the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import delete, func, select, true, update
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.core import clock
from huiqi.core.bulk import chunks, insert_rows
from huiqi.core.db import utcnow
from huiqi.core.errors import NotFound
from huiqi.core.lru import Lru
from huiqi.enterprise import repository as ent_repo
from huiqi.enterprise.models import enterprise_current
from huiqi.enterprise.repository import ids_for_codes
from huiqi.enterprise.service import contract_schema, current_frame
from huiqi.events import ChangeSet, EnterpriseChanged, ResultChange, ResultsChanged, RuleFacts
from huiqi.matching.models import MatchLayout, MatchRun, MatchState, RuleVersion
from huiqi.rules.batch import pack_codes, run_batch
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import Evaluator, Explanation, amount, deciding_missing
from huiqi.rules.library import Library, load_base, load_library
from huiqi.rules.plan import RESULT_NAMES, Plan, T, U, compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import code_sql, prim_sql, rule_expr


class MatchingError(NotFound):
    """A matching request cannot be served (unknown rule or enterprise, invalid draft)."""


@dataclass
class LoadReport:
    """What `load_rules` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- rules


log = logging.getLogger("huiqi.matching")
_BASE: Library | None = None
_PARSED: dict[str, Rule] = {}


def base_library() -> Library:
    """Derived values and parameters that stored rules reference (loaded once)."""
    global _BASE
    if _BASE is None:
        _BASE = load_base()
    return _BASE


def _rule_from(version: RuleVersion) -> Rule:
    """The checked Rule of a stored version (cached by content hash)."""
    key = f"{version.rule_id}:{version.hash}"
    if key not in _PARSED:
        _PARSED[key] = base_library().parse_rule(
            version.source, f"{version.rule_id} v{version.version}"
        )
    return _PARSED[key]


def rule_of_version(version: RuleVersion) -> Rule:
    """The checked rule of any stored version (published, in review or retired)."""
    return _rule_from(version)


def new_version(
    session: Session, rule: Rule, *, status: str, created_at: datetime | None = None, **extra: Any
) -> RuleVersion:
    """A rule's next version row (number, text, title, department and legal basis), not yet added."""
    newest = latest_version(session, rule.id)
    basis = rule.doc.legal_basis[0]
    return RuleVersion(
        rule_id=rule.id,
        version=(newest.version + 1) if newest else 1,
        hash=rule.hash,
        status=status,
        source=rule.source,
        title_zh=rule.doc.title.zh,
        title_en=rule.doc.title.en,
        mode=rule.doc.mode,
        department=rule.doc.department,
        doc_number=basis.doc_number,
        article=basis.article,
        valid_from=rule.doc.valid_from,
        valid_to=rule.doc.valid_to,
        created_at=created_at or utcnow(),
        **extra,
    )


def publish_rule(
    session: Session, rule: Rule, created_by: str | None = None
) -> tuple[RuleVersion, bool]:
    """Store a rule as the published version; returns (version, whether anything changed).

    This is the trusted path of the packaged library (`huiqi rules load`, the demo); people change
    rules through huiqi.matching.workflow, which checks departments and reviews.
    """
    current = session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule.id, RuleVersion.status == "published")
    ).first()
    if current is not None and current.hash == rule.hash:
        return current, False
    if current is not None:
        current.status = "retired"
    now = utcnow()
    version = new_version(
        session,
        rule,
        status="published",
        created_at=now,
        created_by=created_by,
        published_by=created_by,
        published_at=now,
    )
    session.add(version)
    session.flush()
    return version, True


def load_rules(
    session: Session, library: Library | None = None, retire_missing: bool = False
) -> LoadReport:
    """Publish the library's rules (idempotent: an unchanged rule adds nothing)."""
    lib = library or load_library()
    report = LoadReport()
    for rule in lib.rules.values():
        existed = latest_version(session, rule.id) is not None
        _version, changed = publish_rule(session, rule, created_by="library")
        (report.updated if existed else report.added).append(
            rule.id
        ) if changed else report.unchanged.append(rule.id)
    if retire_missing:
        for version in published_versions(session):
            if version.rule_id not in lib.rules:
                version.status = "retired"
                report.retired.append(version.rule_id)
    session.flush()
    return report


def latest_version(session: Session, rule_id: str) -> RuleVersion | None:
    """The newest stored version of a rule."""
    return session.scalars(
        select(RuleVersion)
        .where(RuleVersion.rule_id == rule_id)
        .order_by(RuleVersion.version.desc())
        .limit(1)
    ).first()


def published_versions(session: Session) -> list[RuleVersion]:
    """Every rule's published version, by rule id."""
    return list(
        session.scalars(
            select(RuleVersion)
            .where(RuleVersion.status == "published")
            .order_by(RuleVersion.rule_id)
        )
    )


def published_rule(session: Session, rule_id: str) -> Rule:
    """The checked rule of a rule id's published version."""
    version = next((v for v in published_versions(session) if v.rule_id == rule_id), None)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    return _rule_from(version)


def published_rules(session: Session) -> list[tuple[RuleVersion, Rule]]:
    """Published versions with their checked rules.

    A stored version that today's checks refuse (say, a constant beyond 64 bits published
    before they existed) is left out with a logged reason, so it never stops a matching run.
    """
    out = []
    for version in published_versions(session):
        try:
            out.append((version, _rule_from(version)))
        except RuleValidationError as exc:
            log.error(
                "rule %s v%s is refused by validation and left out of matching: %s",
                version.rule_id,
                version.version,
                "; ".join(e.reason for e in exc.errors),
            )
    return out


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


# ---------------------------------------------------------------------------------------- storing
#
# One row per enterprise (match_state): every rule's result and every condition's outcome packed
# two bits each, in the order of a match_layout. A run compares the packed codes of a batch with
# the stored ones as arrays and writes only the enterprises whose codes changed; an enterprise
# whose input hash and layout are unchanged is not even evaluated. Words (reasons, missing data,
# near misses) are rendered from the registry and the codes when shown.

RESULT_CODES = {name: code for code, name in RESULT_NAMES.items()}
ABSENT = 3  # result code of a rule a stored layout does not have
BATCH_PAIRS = 3_000_000  # enterprise × rule pairs per batch: evaluated, stored, propagated together
PHASES = ("evaluate", "store", "grants", "notifications")
Progress = Callable[[str, int, int], None]  # phase, enterprises done, enterprises in all


@dataclass
class RunReport:
    """What a matching run did: pairs evaluated, rows written, changes, seconds per phase."""

    enterprises: int = 0
    evaluated: int = 0
    skipped: int = 0  # enterprises whose inputs and rules were unchanged
    inserted: int = 0
    updated: int = 0
    changes: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    by_result: dict[str, int] = field(default_factory=dict)

    def add(self, other: RunReport) -> None:
        """Fold a batch's report into this one."""
        for name in (
            "enterprises",
            "evaluated",
            "skipped",
            "inserted",
            "updated",
            "changes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.batches += 1
        for phase, sec in other.seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + sec
        for result, n in other.by_result.items():
            self.by_result[result] = self.by_result.get(result, 0) + n


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


def _layout_key(
    pairs: Sequence[tuple[RuleVersion, Rule]], plan: Plan
) -> tuple[list[list[Any]], str]:
    """A layout's rule list and its key (which also covers each rule's tests on the plan's date)."""
    rules: list[list[Any]] = [
        [v.rule_id, v.version, v.hash, len(plan.rules[r].atom_prims)]
        for r, (v, _rule) in enumerate(pairs)
    ]
    signature = repr([(rules[r], _plan_signature(plan, r)) for r in range(len(rules))])
    return rules, hashlib.sha256(signature.encode("utf-8")).hexdigest()[:32]


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
    layout = _layout_of(row)
    _LAYOUTS[layout.id] = layout
    return layout


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


def _stored(session: Session, ids: Sequence[int], full: bool = True) -> _Stored:
    """Stored states of these enterprise ids, in the given order."""
    m = MatchState
    cols: list[Any] = [m.enterprise_id, m.layout_id, m.input_hash]
    if full:
        cols += [m.results, m.conditions, m.amounts, m.evaluated_on]
    got: dict[int, Any] = {}
    for chunk in chunks(list(ids), 2000 if session.get_bind().dialect.name != "sqlite" else 500):
        for row in session.execute(select(*cols).where(m.enterprise_id.in_(list(chunk)))):
            got[row[0]] = row
    n = len(ids)
    out = _Stored(
        np.zeros(n, dtype=bool),
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        [None] * n,
        [None] * n,
        [{} for _ in range(n)],
        [None] * n,
    )
    for i, eid in enumerate(ids):
        if eid not in got:
            continue
        row = got[eid]
        out.present[i] = True
        out.layout_ids[i] = row[1]
        out.hashes[i] = row[2]
        if full:
            out.results[i], out.conditions[i] = bytes(row[3]), bytes(row[4])
            out.amounts[i], out.evaluated_on[i] = dict(row[5] or {}), row[6]
    return out


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
        rows = list(session.execute(stmt.where(t.c.id >= min(ids), t.c.id <= max(ids))))
    elif ids is not None:
        for part in chunks(list(ids)):
            rows += session.execute(stmt.where(t.c.id.in_(list(part))))
    elif codes is not None:
        for names_part in chunks(list(codes)):
            rows += session.execute(stmt.where(t.c.credit_code.in_(list(names_part))))
    frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
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


def _news(
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

    A result is news when it differs from the stored one, when an eligible or unknown result
    now comes from another rule version, or when an eligible 免申即享 amount changed; an
    unknown result that stays unknown is not (its data request stands).
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
    )
    new = fresh.results[rows]
    old = _old_results(session, sub, layout)
    # a stored result of another rule version counts as news when it is not ineligible
    version_changed = np.zeros_like(new, dtype=bool)
    for lid in np.unique(sub.layout_ids[sub.present]).tolist():
        other = _layout(session, int(lid))
        if other.id == layout.id:
            continue
        where = other.index
        differs = [
            r
            for r, rid in enumerate(layout.rule_ids)
            if rid in where and other.hashes[where[rid]] != layout.hashes[r]
        ]
        if differs:
            at = np.flatnonzero(sub.layout_ids == lid)
            version_changed[np.ix_(at, np.asarray(differs, dtype=np.int64))] = True
    previous = np.where(old == ABSENT, 0, old)
    news = (new != previous) & ~((old == ABSENT) & (new == 0))
    news |= version_changed & (new != 0)
    news &= ~((previous == U) & (new == U) & ~version_changed)
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
    )


def _ended(
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


def _match_batch(
    session: Session,
    pairs: Sequence[tuple[RuleVersion, Rule]],
    plan: Plan,
    layout: Layout,
    columns: Sequence[str],
    frame: pl.DataFrame,
    on: date,
    engine: str,
    collect: list[ResultChange] | None,
    actor: str | None = None,
    force: bool = False,
) -> RunReport:
    """Evaluate, store and propagate one batch of enterprises; never commits.

    Enterprises whose stored layout and input hash are unchanged are skipped (unless `force`);
    the others are evaluated, compared with what is stored, and only those whose codes or
    amounts changed are written.
    """
    report = RunReport()
    clock_ = time.perf_counter()
    ids = frame["id"].to_list()
    hashes = _input_hashes(frame, columns)
    head = _stored(session, ids, full=False)
    dirty = ~head.present | (head.layout_ids != layout.id) | (head.hashes != hashes)
    if force:
        dirty[:] = True
    report.enterprises = frame.height
    report.skipped = int((~dirty).sum())
    todo = np.flatnonzero(dirty)
    if todo.size == 0:
        report.seconds["evaluate"] = time.perf_counter() - clock_
        return report
    part = frame[todo.tolist()] if todo.size < frame.height else frame
    fresh = _codes(session, plan, part, engine)
    fresh.amounts = _amounts(pairs, part, fresh.results, on)
    report.evaluated = part.height * len(pairs)
    report.seconds["evaluate"] = time.perf_counter() - clock_

    clock_ = time.perf_counter()
    part_ids = part["id"].to_list()
    stored = _stored(session, part_ids)
    part_hashes = hashes[todo]
    blobs_r = _blobs(pack2(fresh.results))
    blobs_c = _blobs(pack2(fresh.conditions))
    write = np.asarray(
        [
            not stored.present[i]
            or stored.layout_ids[i] != layout.id
            or stored.hashes[i] != part_hashes[i]
            or stored.results[i] != blobs_r[i]
            or stored.conditions[i] != blobs_c[i]
            or stored.amounts[i] != fresh.amounts[i]
            for i in range(part.height)
        ],
        dtype=bool,
    )
    # codes equal under a layout of the same rules and widths (another version or date): only
    # the layout reference moves, in one UPDATE per chunk instead of a rewrite
    same = {
        lid
        for lid in np.unique(stored.layout_ids[stored.present]).tolist()
        if lid != layout.id
        and _layout(session, int(lid)).rule_ids == layout.rule_ids
        and _layout(session, int(lid)).widths == layout.widths
    }
    relabel = np.asarray(
        [
            bool(write[i])
            and int(stored.layout_ids[i]) in same
            and stored.hashes[i] == part_hashes[i]
            and stored.results[i] == blobs_r[i]
            and stored.conditions[i] == blobs_c[i]
            and stored.amounts[i] == fresh.amounts[i]
            for i in range(part.height)
        ],
        dtype=bool,
    )
    moved = part["id"].to_numpy()[relabel].tolist()
    for ids_part in chunks(moved, 2000 if session.get_bind().dialect.name != "sqlite" else 500):
        session.execute(
            update(MatchState)
            .where(MatchState.enterprise_id.in_(list(ids_part)))
            .values(layout_id=layout.id, evaluated_on=on, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    rows = np.flatnonzero(write & ~relabel)
    _write_states(session, layout, part, rows, fresh, part_hashes, stored.present, on)
    report.inserted = int((~stored.present[rows]).sum())
    report.updated = int(rows.size - report.inserted) + len(moved)
    rows = np.flatnonzero(write)
    news = _news(plan, pairs, layout, session, part, rows, fresh, stored)
    ended = _ended(session, layout, part, rows, stored)
    report.changes = len(news) + len(ended)
    counted = np.bincount(news.result.astype(np.int64), minlength=3).tolist()
    for code, n in enumerate(counted):
        if n:
            report.by_result[RESULT_NAMES[code]] = n
    if ended:
        report.by_result["ineligible"] = report.by_result.get("ineligible", 0) + len(ended)
    session.flush()
    report.seconds["store"] = time.perf_counter() - clock_

    def observe(label: str, seconds: float) -> None:
        report.seconds[label] = report.seconds.get(label, 0.0) + seconds

    for changes in (news, tuple(ended)):
        if changes:
            events.publish(session, ResultsChanged(changes, on, actor), observe=observe)
        if collect is not None:
            collect += changes
    return report


# ---------------------------------------------------------------------------------------- running


def _pairs(session: Session, rule_ids: Sequence[str] | None) -> list[tuple[RuleVersion, Rule]]:
    pairs = published_rules(session)
    if rule_ids is not None:
        unknown = set(rule_ids) - {v.rule_id for v, _ in pairs}
        if unknown:
            raise MatchingError(f"no published rule {sorted(unknown)}")
    return pairs


def all_codes(session: Session) -> list[str]:
    """Every enterprise's credit code, in order."""
    t = enterprise_current
    return list(session.scalars(select(t.c.credit_code).order_by(t.c.credit_code)))


def _columns(pairs: Sequence[tuple[RuleVersion, Rule]]) -> list[str]:
    """Every registry column the rules read (conditions and amounts)."""
    return sorted({c for _, rule in pairs for c in rule.columns()} & set(contract_schema()))


def match(
    session: Session,
    codes: Sequence[str] | None = None,
    *,
    on: date | None = None,
    engine: str = "batch",
    rule_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[], None] | None = None,
    batch_size: int | None = None,
    collect: list[ResultChange] | None = None,
    run: MatchRun | None = None,
    actor: str | None = None,
) -> RunReport:
    """Bring the stored results of enterprises (all, or `codes`) up to date, in batches.

    Every published rule is evaluated for an enterprise whose values or rules changed (a
    different input hash or layout; `rule_ids` only checks that those rules exist, since the
    engine evaluates all of a row's rules at once); an enterprise with neither is skipped after
    one comparison of hashes. Codes are compared with the stored ones as arrays and only the
    enterprises whose codes changed are written; the news of a batch is published as one
    ResultsChanged event (grants and notifications follow in the same transaction). After each
    batch `checkpoint` is called: the CLI commits there, so a long run never holds the write
    lock for long, and a run killed mid-way and started again ends in the same state (finished
    batches compare equal and publish nothing; the dedupe keys keep notifications exactly once).
    """
    on = on or clock.today()
    if engine not in ("batch", "sql"):
        raise MatchingError(f"unknown engine {engine!r} (batch or sql)")
    pairs = _pairs(session, rule_ids)
    report = RunReport()
    t = enterprise_current
    if codes is None:
        ids = list(session.scalars(select(t.c.id).order_by(t.c.id)))
    else:
        ids = sorted(ids_for_codes(session, sorted(set(codes))).values())
    if not pairs:
        _clear(session, ids, on, collect, actor)
        return report
    if not ids:
        return report
    plan = compile_plan([r for _, r in pairs], on)
    layout = _current_layout(session, pairs, plan, on)
    columns = _columns(pairs)
    total = len(ids)
    # bounded by pairs, so memory stays flat however many rules there are
    batch_size = batch_size or max(500, BATCH_PAIRS // len(pairs))
    for start in range(0, total, batch_size):
        part = ids[start : start + batch_size]
        frame = _frame(session, ids=part)
        report.add(
            _match_batch(
                session,
                pairs,
                plan,
                layout,
                columns,
                frame,
                on,
                engine,
                collect,
                actor,
                force=engine == "sql",
            )
        )
        done = min(start + batch_size, total)
        if progress:
            for phase in PHASES:
                progress(phase, done, total)
        if run is not None:
            _record(run, report, done, total)
        if checkpoint:
            checkpoint()
    return report


def _clear(
    session: Session,
    ids: Sequence[int],
    on: date,
    collect: list[ResultChange] | None,
    actor: str | None,
) -> None:
    """No rule is published: stored results end (as ineligible) and their rows go."""
    if not ids or session.scalar(select(func.count()).select_from(MatchState)) == 0:
        return
    layout = Layout(0, (), (), (), ())
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        frame = _frame(session, ids=part)
        stored = _stored(session, frame["id"].to_list())
        rows = np.flatnonzero(stored.present)
        changes = _ended(session, layout, frame, rows, stored)
        for chunk in chunks(frame["id"].to_numpy()[rows].tolist()):
            session.execute(
                delete(MatchState)
                .where(MatchState.enterprise_id.in_(list(chunk)))
                .execution_options(synchronize_session=False)
            )
        if changes:
            events.publish(session, ResultsChanged(tuple(changes), on, actor))
        if collect is not None:
            collect += changes


def _record(run: MatchRun, report: RunReport, done: int, total: int) -> None:
    """Copy a run's progress onto its match_run row (committed with the batch)."""
    run.done, run.total, run.phase = done, total, PHASES[-1] if done < total else "done"
    run.evaluated = report.evaluated
    run.written = report.inserted + report.updated
    run.changes = report.changes
    run.seconds = {k: round(v, 3) for k, v in report.seconds.items()}
    run.heartbeat_at = utcnow()


def start_run(session: Session) -> MatchRun:
    """A match_run row for a run that is starting (the caller commits it to show it)."""
    run = MatchRun(
        status="running",
        phase="evaluate",
        done=0,
        total=len(all_codes(session)),
        evaluated=0,
        written=0,
        changes=0,
        seconds={},
        started_at=utcnow(),
        heartbeat_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run


def finish_run(run: MatchRun, status: str = "done", message: str | None = None) -> None:
    """Mark a run finished (done or failed)."""
    run.status, run.message, run.finished_at = status, message, utcnow()
    if status == "done":
        run.phase = "done"


def latest_run(session: Session) -> MatchRun | None:
    """The most recent matching run."""
    return session.scalars(select(MatchRun).order_by(MatchRun.id.desc()).limit(1)).first()


def run_matching(
    session: Session,
    on: date | None = None,
    engine: str = "batch",
    rule_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[], None] | None = None,
    *,
    actor: str | None = None,
) -> list[ResultChange]:
    """Evaluate published rules (all, or `rule_ids`) over every enterprise; the changed results.

    `actor` is who caused the run (the person who published a rule version); the grant ledger
    records it on every grant the run recomputes.
    """
    changes: list[ResultChange] = []
    match(
        session,
        on=on,
        engine=engine,
        rule_ids=rule_ids,
        progress=progress,
        checkpoint=checkpoint,
        collect=changes,
        actor=actor,
    )
    return changes


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


def rematch_enterprises(
    session: Session, credit_codes: Iterable[str], on: date | None = None
) -> list[ResultChange]:
    """Re-evaluate every published rule for these enterprises only."""
    changes: list[ResultChange] = []
    match(session, sorted(set(credit_codes)), on=on, collect=changes)
    return changes


def rematch_rule(
    session: Session, rule_id: str, on: date | None = None, *, actor: str | None = None
) -> list[ResultChange]:
    """Re-evaluate one rule over every enterprise (after the rule changed); `actor` is who
    changed it."""
    return run_matching(session, on, rule_ids=[rule_id], actor=actor)


def rules_reading_parameters(session: Session, names: Iterable[str]) -> list[str]:
    """Published rules whose conditions or amount read any of these parameters."""
    wanted = set(names)
    return [v.rule_id for v, rule in published_rules(session) if wanted & set(rule.params)]


def rematch_parameters(
    session: Session, names: Iterable[str], on: date | None = None
) -> list[ResultChange]:
    """Re-evaluate only the rules reading these parameters (after their values changed)."""
    rule_ids = rules_reading_parameters(session, names)
    return run_matching(session, on, rule_ids=rule_ids) if rule_ids else []


def on_enterprise_changed(session: Session, event: EnterpriseChanged) -> None:
    """Changed enterprises are re-matched in the same transaction (handler)."""
    if session.scalar(select(func.count()).select_from(RuleVersion)):
        match(session, sorted(event.codes))


# ---------------------------------------------------------------------------------------- staleness


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


# ---------------------------------------------------------------------------------------- stored


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
    for state in states:
        layout = _layout(session, state.layout_id)
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
    out: dict[str, date] = {}
    for part in chunks(list(credit_codes)):
        rows = session.execute(
            select(MatchState.credit_code, MatchState.evaluated_on).where(
                MatchState.credit_code.in_(list(part))
            )
        )
        out.update((str(code), on) for code, on in rows)
    return out


def unknown_count(session: Session, credit_code: str) -> int:
    """How many published rules wait for this enterprise's data."""
    return int(
        session.scalar(select(MatchState.unknown).where(MatchState.credit_code == credit_code)) or 0
    )


def holders(session: Session, rule_id: str) -> list[str]:
    """Credit codes with a stored eligible or unknown result of this rule."""
    return sorted(c for c, x in codes_of_rule(session, rule_id) if x != 0)


# ---------------------------------------------------------------------------------------- queries


def _row_for(session: Session, credit_code: str) -> dict[str, Any]:
    found = ent_repo.current_mapping(session, credit_code)
    if found is None:
        raise MatchingError(f"no enterprise with credit code {credit_code!r}")
    return found


def explain(
    session: Session, credit_code: str, rule_id: str, on: date | None = None
) -> Explanation:
    """Evaluate one published rule for one enterprise with reasons, missing data and near miss."""
    on = on or clock.today()
    version = next((v for v in published_versions(session) if v.rule_id == rule_id), None)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    rule = _rule_from(version)
    return Evaluator(compile_plan([rule], on)).explain(_row_for(session, credit_code), rule_id)


_EXPLAINED: Lru[list[Explanation]] = Lru(4096)


@dataclass
class MyPolicies:
    """An enterprise's view: what it gets, what needs its data, what is within reach."""

    eligible: list[tuple[RuleVersion, Explanation]]
    to_confirm: list[tuple[RuleVersion, Explanation]]
    near_misses: list[tuple[RuleVersion, Explanation]]
    rules: dict[str, Rule] = field(default_factory=dict)  # the checked rules, by rule id


def my_policies(session: Session, credit_code: str, on: date | None = None) -> MyPolicies:
    """Every published rule evaluated for one enterprise, grouped for the 我的政策 page."""
    on = on or clock.today()
    pairs = published_rules(session)
    row = _row_for(session, credit_code)

    def explain_all() -> list[Explanation]:
        plan = compile_plan([r for _, r in pairs], on)
        return list(Evaluator(plan).explain_all(row))

    # The same rules over the same figures on the same day explain the same way: an enterprise
    # reloading its page (or many opening theirs from one push) costs one query per input.
    key = (tuple((v.id, v.hash) for v, _ in pairs), on, repr(sorted(row.items())))
    explained = _EXPLAINED.get_or_make(key, explain_all)
    out = MyPolicies([], [], [], {v.rule_id: r for v, r in pairs})
    for (version, _rule), exp in zip(pairs, explained, strict=True):
        if not exp.in_force:
            continue
        if exp.result == "eligible":
            out.eligible.append((version, exp))
        elif exp.result == "unknown":
            out.to_confirm.append((version, exp))
        elif exp.near_miss is not None and exp.near_miss.is_near():
            out.near_misses.append((version, exp))
    out.near_misses.sort(key=lambda p: p[1].near_miss.distance if p[1].near_miss else (99, 0.0))
    return out


@dataclass
class ReverseReport:
    """Which enterprises fit a rule, counted inside the database."""

    rule_id: str
    on: date
    totals: dict[str, int]
    by_region: list[tuple[str | None, str, int]]
    by_industry: list[tuple[str | None, str, int]]
    by_size: list[tuple[str | None, str, int]]
    eligible: list[str]
    unknown: list[str]


def reverse_query(
    session: Session,
    rule_id: str,
    on: date | None = None,
    limit: int = 200,
    *,
    region_prefix: str | None = None,
) -> ReverseReport:
    """A rule's eligible and unknown enterprises with counts by city, industry division and size
    class; with `region_prefix` (a city or county officer's region) only enterprises there."""
    on = on or clock.today()
    version = next((v for v in published_versions(session) if v.rule_id == rule_id), None)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    plan = compile_plan([_rule_from(version)], on)
    t = enterprise_current
    code = code_sql(rule_expr(plan, 0, t))
    region = t.c.region_code.like(f"{region_prefix}%") if region_prefix else true()

    def grouped(key: Any) -> list[tuple[str | None, str, int]]:
        sub = select(key.label("grp"), code.label("result")).where(region).subquery()
        stmt = (
            select(sub.c.grp, sub.c.result, func.count())
            .where(sub.c.result != 0)
            .group_by(sub.c.grp, sub.c.result)
            .order_by(sub.c.grp)
        )
        return [(g, RESULT_NAMES[int(r)], int(n)) for g, r, n in session.execute(stmt)]

    sub = select(code.label("result")).where(region).subquery()
    totals = {
        RESULT_NAMES[int(r)]: int(n)
        for r, n in session.execute(select(sub.c.result, func.count()).group_by(sub.c.result))
    }
    for name in RESULT_NAMES.values():
        totals.setdefault(name, 0)

    def listing(result: int) -> list[str]:
        sub2 = select(t.c.credit_code, code.label("result")).where(region).subquery()
        stmt = (
            select(sub2.c.credit_code)
            .where(sub2.c.result == result)
            .order_by(sub2.c.credit_code)
            .limit(limit)
        )
        return list(session.scalars(stmt))

    return ReverseReport(
        rule_id,
        on,
        totals,
        grouped(func.substr(t.c.region_code, 1, 4)),
        grouped(func.substr(t.c.industry_code, 1, 2)),
        grouped(t.c.size_class),
        listing(1),
        listing(2),
    )


@dataclass
class SandboxReport:
    """A draft rule tried on the registry before publishing."""

    errors: list[str]
    rule: Rule | None = None
    totals: dict[str, int] = field(default_factory=dict)
    exposure_fen: int | None = None
    exposure_unknown: int = 0
    scenarios: list[Any] = field(default_factory=list)


def sandbox(
    session: Session, text: str, on: date | None = None, scenarios_text: str | None = None
) -> SandboxReport:
    """Validate a draft rule, count qualifying enterprises and sum the benefit exposure; nothing is stored."""
    on = on or clock.today()
    try:
        rule = base_library().parse_rule(text, "draft.yaml")
    except RuleValidationError as exc:
        return SandboxReport([str(e) for e in exc.errors])
    report = SandboxReport([], rule)
    frame = current_frame(session)
    plan = compile_plan([rule], on)
    batch = run_batch(plan, frame)
    report.totals = batch.counts(0)
    if rule.formula is not None:
        total, unknown = 0, 0
        eligible = batch.rows(0, T)
        for i in eligible.tolist():
            fen = amount(rule, frame.row(i, named=True), on)[0]
            if fen is None:
                unknown += 1
            else:
                total += fen
        report.exposure_fen, report.exposure_unknown = total, unknown
    if scenarios_text:
        from huiqi.rules.library import parse_scenarios
        from huiqi.rules.scenarios import run_scenario

        try:
            sfile = parse_scenarios(scenarios_text, "draft.scenarios.yaml")
        except RuleValidationError as exc:
            report.errors += [str(e) for e in exc.errors]
        else:
            report.scenarios = [
                run_scenario(rule, sc, "draft.scenarios.yaml") for sc in sfile.scenarios
            ]
    return report


def load_demo(session: Session, on: date | None = None) -> list[ResultChange]:
    """Publish the library rules and match them over the registry (for `huiqi demo load`)."""
    load_rules(session)
    return run_matching(session, on)
