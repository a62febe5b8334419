"""Matching service: publish rules into the database, run them over the registry, keep results current.

Services take the session first and never commit; the CLI or request boundary commits. Functions
that write results return the rows that are new or changed, so a caller (notify, grants) can act on
them in the same transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import bindparam, delete, func, select, true, update
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.core import clock
from huiqi.core.bulk import chunks, insert_rows
from huiqi.core.db import utcnow
from huiqi.core.errors import NotFound
from huiqi.enterprise import repository as ent_repo
from huiqi.enterprise.models import enterprise_current
from huiqi.enterprise.repository import ids_for_codes
from huiqi.enterprise.service import contract_schema, current_frame
from huiqi.events import EnterpriseChanged, ResultChange, ResultsChanged
from huiqi.matching.models import MatchResult, MatchRun, RuleVersion
from huiqi.rules.batch import pack_codes, run_batch, unpack_codes
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


def input_hash(rule: Rule, row: dict[str, Any]) -> str:
    """Hash of the values this rule reads for one enterprise (as stored by a run)."""
    frame = pl.DataFrame([{c: row.get(c) for c in rule.columns()}], schema=_schema(rule))
    return str(_input_hashes(rule, frame)[0])


def _schema(rule: Rule) -> dict[str, Any]:
    schema = contract_schema()
    return {c: schema[c] for c in rule.columns()}


def _input_hashes(rule: Rule, frame: pl.DataFrame) -> pl.Series:
    """Per row, a hash of the values the rule reads (missing shown as such, never as zero).

    Polars hashes are stable within one polars version; after an upgrade stored hashes differ
    and the next run rewrites them silently (a hash change alone never notifies anyone).
    """
    cols = rule.columns()
    if not cols:
        return pl.Series("h", ["0"] * frame.height)
    text = pl.concat_str(
        [pl.col(c).cast(pl.Utf8).fill_null("\u2205") for c in cols], separator="\u241f"
    )
    return frame.select(text.hash(seed=7).cast(pl.Utf8).alias("h"))["h"]


def _plan_signature(plan: Plan, r: int) -> tuple[Any, ...]:
    """What a rule's evaluation depends on besides the inputs: its resolved tests on the plan's date."""
    pr = plan.rules[r]
    return (pr.in_force, tuple(plan.prims[i] for i in pr.atom_prims), tuple(map(repr, pr.resolved)))


# ---------------------------------------------------------------------------------------- storing
#
# Only eligible and unknown results are stored: an enterprise × rule pair without a row is
# ineligible. Pages and pushes need only those (ineligible pairs are the vast majority: at
# 100,000 × 300 generated rules about 4% of pairs are stored, see bench/README.md), and
# explanations are computed from the registry when shown.

RESULT_CODES = {name: code for code, name in RESULT_NAMES.items()}
BATCH_PAIRS = 600_000  # enterprise × rule pairs per batch: evaluated, stored, propagated together
PHASES = ("evaluate", "store", "grants", "notifications")
Progress = Callable[[str, int, int], None]  # phase, enterprises done, enterprises in all


@dataclass
class RunReport:
    """What a matching run did: pairs evaluated, rows written, changes, seconds per phase."""

    enterprises: int = 0
    evaluated: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    changes: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    by_result: dict[str, int] = field(default_factory=dict)

    def add(self, other: RunReport) -> None:
        """Fold a batch's report into this one."""
        for name in ("enterprises", "evaluated", "inserted", "updated", "deleted", "changes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.batches += 1
        for phase, sec in other.seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + sec
        for result, n in other.by_result.items():
            self.by_result[result] = self.by_result.get(result, 0) + n


def _missing_text(plan: Plan, r: int, conds: int, nulls: frozenset[str]) -> str:
    """The missing fields that keep an unknown result unknown, from condition codes and nulls."""
    pr = plan.rules[r]
    outcomes = unpack_codes(conds, len(pr.atom_prims))
    atom_missing = []
    for i in pr.atom_prims:
        prim = plan.prims[i]
        atom_missing.append([] if prim.op == "never" else [c for c in prim.cols if c in nulls])
    return ",".join(deciding_missing(pr.tree, outcomes, atom_missing))


def _evaluated_rows(
    plan: Plan,
    pairs: Sequence[tuple[RuleVersion, Rule]],
    frame: pl.DataFrame,
    ids: np.ndarray,
    per_rule: Sequence[tuple[np.ndarray, np.ndarray]],
    on: date,
) -> pl.DataFrame:
    """The eligible and unknown results of a batch as rows to store (vectorised per rule)."""
    nulls = {c: frame[c].is_null().to_numpy() for c in frame.columns}
    parts: list[pl.DataFrame] = []
    for r, ((version, rule), (codes, conds)) in enumerate(zip(pairs, per_rule, strict=True)):
        keep = np.flatnonzero(codes != 0)
        if keep.size == 0:
            continue
        kept_codes = codes[keep]
        kept_conds = conds[keep].astype(np.int64)
        missing = np.full(keep.size, "", dtype=object)
        unknown = np.flatnonzero(kept_codes == U)
        if unknown.size:
            cols = sorted({c for i in plan.rules[r].atom_prims for c in plan.prims[i].cols})
            mask = np.zeros(keep.size, dtype=np.int64)
            for k, c in enumerate(cols):
                mask |= nulls[c][keep].astype(np.int64) << k
            keys = np.stack([kept_conds[unknown], mask[unknown]], axis=1)
            uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
            texts = [
                _missing_text(
                    plan, r, int(cc), frozenset(c for k, c in enumerate(cols) if int(m) >> k & 1)
                )
                for cc, m in uniq
            ]
            missing[unknown] = np.asarray(texts, dtype=object)[inverse.reshape(-1)]
        fen: list[int | None] = [None] * keep.size
        if rule.formula is not None:
            eligible = np.flatnonzero(kept_codes == T)
            rows = frame[keep[eligible].tolist()].to_dicts() if eligible.size else []
            for j, row in zip(eligible.tolist(), rows, strict=True):
                fen[j] = amount(rule, row, on)[0]
        sub = frame[keep.tolist()]
        parts.append(
            pl.DataFrame(
                {
                    "enterprise_id": ids[keep],
                    "credit_code": sub["credit_code"],
                    "name": sub["name"].fill_null(""),
                    "rule_id": [rule.id] * keep.size,
                    "r": np.full(keep.size, r, dtype=np.int32),
                    "result": [RESULT_NAMES[int(c)] for c in kept_codes],
                    "conditions": kept_conds,
                    "missing": missing.tolist(),
                    "amount_fen": pl.Series(fen, dtype=pl.Int64),
                    "input_hash": _input_hashes(rule, sub),
                    "rule_version": np.full(keep.size, version.version, dtype=np.int64),
                    "rule_hash": [version.hash] * keep.size,
                }
            )
        )
    if not parts:
        return pl.DataFrame(schema=_NEW_SCHEMA)
    return pl.concat(parts, how="vertical_relaxed")


_NEW_SCHEMA: dict[str, Any] = {
    "enterprise_id": pl.Int64,
    "credit_code": pl.Utf8,
    "name": pl.Utf8,
    "rule_id": pl.Utf8,
    "r": pl.Int32,
    "result": pl.Utf8,
    "conditions": pl.Int64,
    "missing": pl.Utf8,
    "amount_fen": pl.Int64,
    "input_hash": pl.Utf8,
    "rule_version": pl.Int64,
    "rule_hash": pl.Utf8,
}
_OLD_SCHEMA: dict[str, Any] = {
    "id": pl.Int64,
    "enterprise_id": pl.Int64,
    "rule_id": pl.Utf8,
    "result": pl.Utf8,
    "conditions": pl.Int64,
    "missing": pl.Utf8,
    "amount_fen": pl.Int64,
    "input_hash": pl.Utf8,
    "rule_hash": pl.Utf8,
    "evaluated_on": pl.Date,
}
_SEMANTIC = ("result", "amount_fen", "missing", "rule_hash")


def _stored_rows(session: Session, rule_ids: Sequence[str], ids: Sequence[int]) -> pl.DataFrame:
    """The stored results of these rules for these enterprises."""
    m = MatchResult
    cols = [getattr(m, name) for name in _OLD_SCHEMA]
    data: list[Any] = []
    for chunk in chunks(list(ids)):
        data += session.execute(
            select(*cols).where(m.enterprise_id.in_(list(chunk)), m.rule_id.in_(list(rule_ids)))
        ).all()
    return pl.DataFrame(data, schema=_OLD_SCHEMA, orient="row")


@dataclass
class _Diff:
    """How a batch's fresh results differ from the stored ones."""

    inserts: pl.DataFrame
    updates: pl.DataFrame  # stored id with the fresh values
    deletes: pl.DataFrame  # stored rows that are now ineligible
    changed: pl.DataFrame  # rows (fresh values and previous result) that are news


def _diff(fresh: pl.DataFrame, stored: pl.DataFrame) -> _Diff:
    """Compare fresh and stored results by (enterprise, rule) with joins, not row by row."""
    key = ["enterprise_id", "rule_id"]
    both = fresh.join(stored, on=key, how="inner", suffix="_old")
    inserts = fresh.join(stored, on=key, how="anti")
    deletes = stored.join(fresh, on=key, how="anti")
    semantic = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in _SEMANTIC])
    silent = pl.any_horizontal(
        [pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in ("conditions", "input_hash")]
    )
    news = both.filter(semantic)
    updates = both.filter(semantic | silent)
    changed = pl.concat(
        [
            inserts.with_columns(pl.lit(None, pl.Utf8).alias("previous")),
            news.with_columns(pl.col("result_old").alias("previous")).select(
                [*fresh.columns, "previous"]
            ),
        ],
        how="vertical_relaxed",
    )
    return _Diff(inserts, updates, deletes, changed)


def _write(session: Session, diff: _Diff, on: date, report: RunReport) -> None:
    """Apply a batch's diff with set operations: one insert, one update and one delete statement."""
    now = utcnow()
    t = MatchResult.__table__
    names = [
        "enterprise_id",
        "credit_code",
        "rule_id",
        "rule_version",
        "rule_hash",
        "result",
        "conditions",
        "missing",
        "amount_fen",
        "input_hash",
    ]
    # tuples straight from the frame: no per-row dict or compiled statement
    new_rows = diff.inserts.select(names).rows()
    insert_rows(
        session,
        t,  # type: ignore[arg-type]
        [*names, "evaluated_on", "updated_at", "changed_at"],
        ((*r, on, now, now) for r in new_rows),
    )
    inserted = len(new_rows)
    del new_rows
    updated = 0
    semantic = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in _SEMANTIC])
    for news in (True, False):
        part = diff.updates.filter(semantic if news else ~semantic)
        rows = [
            {
                "_id": r["id"],
                "rule_version": r["rule_version"],
                "rule_hash": r["rule_hash"],
                "result": r["result"],
                "conditions": r["conditions"],
                "missing": r["missing"],
                "amount_fen": r["amount_fen"],
                "input_hash": r["input_hash"],
                "evaluated_on": on,
                "updated_at": now,
                **({"changed_at": now} if news else {}),
            }
            for r in part.iter_rows(named=True)
        ]
        if rows:
            stmt = (
                update(MatchResult.__table__)  # type: ignore[arg-type]
                .where(t.c.id == bindparam("_id"))
                .values({name: bindparam(name) for name in rows[0] if name != "_id"})
            )
            session.connection().execute(stmt, rows)
        updated += len(rows)
    for chunk in chunks(diff.deletes["id"].to_list()):
        session.execute(delete(MatchResult).where(MatchResult.id.in_(list(chunk))))
    report.inserted += inserted
    report.updated += updated
    report.deleted += diff.deletes.height


def _changes(
    diff: _Diff, pairs: Sequence[tuple[RuleVersion, Rule]], names: dict[int, tuple[str, str]]
) -> list[ResultChange]:
    """The news of a batch as ResultChange events (new, changed and no longer eligible)."""
    meta = {
        rule.id: (
            str(version.version),
            rule.doc.title.zh,
            rule.doc.mode,
            rule.doc.legal_basis[0].label(),
        )
        for version, rule in pairs
    }
    out: list[ResultChange] = []
    for r in diff.changed.iter_rows(named=True):
        number, title, mode, basis = meta[r["rule_id"]]
        out.append(
            ResultChange(
                credit_code=r["credit_code"],
                rule_id=r["rule_id"],
                rule_version=number,
                result=r["result"],
                missing=tuple(m for m in r["missing"].split(",") if m),
                rule_title=title,
                enterprise_name=r["name"] or "",
                amount_fen=r["amount_fen"],
                mode=mode,
                legal_basis=basis,
                previous=r["previous"],
            )
        )
    for r in diff.deletes.iter_rows(named=True):
        number, title, mode, basis = meta[r["rule_id"]]
        code, name = names[r["enterprise_id"]]
        out.append(
            ResultChange(
                credit_code=code,
                rule_id=r["rule_id"],
                rule_version=number,
                result="ineligible",
                rule_title=title,
                enterprise_name=name,
                mode=mode,
                legal_basis=basis,
                previous=r["result"],
            )
        )
    return out


def _codes_for(
    session: Session,
    plan: Plan,
    frame: pl.DataFrame,
    ids: np.ndarray,
    engine: str,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Result and packed condition codes per rule for the frame's rows."""
    if engine == "batch":
        batch = run_batch(plan, frame)
        return [
            (batch.codes(r), batch.condition_codes(r).astype(np.int64))
            for r in range(len(plan.rules))
        ]
    return [_sql_codes(session, plan, r, ids.tolist()) for r in range(len(plan.rules))]


def _match_batch(
    session: Session,
    pairs: Sequence[tuple[RuleVersion, Rule]],
    plan: Plan,
    codes: Sequence[str],
    on: date,
    engine: str,
    collect: list[ResultChange] | None,
    actor: str | None = None,
) -> RunReport:
    """Evaluate, store and propagate one batch of enterprises; never commits."""
    report = RunReport()
    clock = time.perf_counter()
    frame = current_frame(session, credit_codes=codes)
    id_of = ids_for_codes(session, frame["credit_code"].to_list())
    ids = np.asarray([id_of[c] for c in frame["credit_code"].to_list()], dtype=np.int64)
    per_rule = _codes_for(session, plan, frame, ids, engine)
    fresh = _evaluated_rows(plan, pairs, frame, ids, per_rule, on)
    report.enterprises = frame.height
    report.evaluated = frame.height * len(pairs)
    report.seconds["evaluate"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stored = _stored_rows(session, [v.rule_id for v, _ in pairs], ids.tolist())
    diff = _diff(fresh, stored)
    _write(session, diff, on, report)
    names = {
        int(i): (c, n or "")
        for i, c, n in zip(ids.tolist(), frame["credit_code"], frame["name"], strict=True)
    }
    changes = _changes(diff, pairs, names)
    report.changes = len(changes)
    for change in changes:
        report.by_result[change.result] = report.by_result.get(change.result, 0) + 1
    session.flush()
    report.seconds["store"] = time.perf_counter() - clock

    def observe(label: str, seconds: float) -> None:
        report.seconds[label] = report.seconds.get(label, 0.0) + seconds

    if changes:
        events.publish(session, ResultsChanged(tuple(changes), on, actor), observe=observe)
    if collect is not None:
        collect += changes
    return report


# ---------------------------------------------------------------------------------------- running


def _pairs(session: Session, rule_ids: Sequence[str] | None) -> list[tuple[RuleVersion, Rule]]:
    pairs = [
        (v, r) for v, r in published_rules(session) if rule_ids is None or v.rule_id in rule_ids
    ]
    if rule_ids is not None:
        unknown = set(rule_ids) - {v.rule_id for v, _ in pairs}
        if unknown:
            raise MatchingError(f"no published rule {sorted(unknown)}")
    return pairs


def all_codes(session: Session) -> list[str]:
    """Every enterprise's credit code, in order."""
    t = enterprise_current
    return list(session.scalars(select(t.c.credit_code).order_by(t.c.credit_code)))


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
    """Evaluate published rules (all, or `rule_ids`) for enterprises (all, or `codes`) in batches.

    Each batch is evaluated by the vectorised engine, compared with the stored results in set
    operations, and only the differences are written; its changes are published as one
    ResultsChanged event (grants and notifications follow in the same transaction). After each
    batch `checkpoint` is called: the CLI commits there, so a long run never holds the write
    lock for long, and a run killed mid-way and started again ends in the same state (finished
    batches compare equal and publish nothing; the dedupe keys keep notifications exactly once).
    """
    on = on or clock.today()
    if engine not in ("batch", "sql"):
        raise MatchingError(f"unknown engine {engine!r} (batch or sql)")
    pairs = _pairs(session, rule_ids)
    listed = all_codes(session) if codes is None else sorted(set(codes))
    report = RunReport()
    if not pairs or not listed:
        return report
    plan = compile_plan([r for _, r in pairs], on)
    total = len(listed)
    # bounded by pairs, so memory stays flat however many rules there are
    batch_size = batch_size or max(500, BATCH_PAIRS // len(pairs))
    for start in range(0, total, batch_size):
        report.add(
            _match_batch(
                session,
                pairs,
                plan,
                listed[start : start + batch_size],
                on,
                engine,
                collect,
                actor,
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


def _record(run: MatchRun, report: RunReport, done: int, total: int) -> None:
    """Copy a run's progress onto its match_run row (committed with the batch)."""
    run.done, run.total, run.phase = done, total, PHASES[-1] if done < total else "done"
    run.evaluated = report.evaluated
    run.written = report.inserted + report.updated + report.deleted
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


def stale_results(session: Session, on: date | None = None) -> list[Stale]:
    """Results whose stored state differs from a fresh evaluation (rule, data or date changed).

    The whole registry is evaluated (the engine is fast) and compared with what is stored, so
    a pair stored as eligible or unknown that is now otherwise, or an unstored (ineligible)
    pair that now fits, are both found. Nothing is written.
    """
    on = on or clock.today()
    pairs = published_rules(session)
    out: list[Stale] = []
    if not pairs:
        return out
    versions = {v.rule_id: v for v, _ in pairs}
    plan = compile_plan([r for _, r in pairs], on)
    index = {pr.rule.id: i for i, pr in enumerate(plan.rules)}
    plans: dict[date, Plan] = {}
    listed = all_codes(session)
    size = max(500, BATCH_PAIRS // len(pairs))
    for start in range(0, len(listed), size):
        frame = current_frame(session, credit_codes=listed[start : start + size])
        id_of = ids_for_codes(session, frame["credit_code"].to_list())
        ids = np.asarray([id_of[c] for c in frame["credit_code"].to_list()], dtype=np.int64)
        fresh = _evaluated_rows(
            plan, pairs, frame, ids, _codes_for(session, plan, frame, ids, "batch"), on
        )
        stored = _stored_rows(session, list(versions), ids.tolist())
        diff = _diff(fresh, stored)
        code_of = dict(zip(ids.tolist(), frame["credit_code"].to_list(), strict=True))
        touched = pl.concat(
            [
                diff.updates.select(["enterprise_id", "rule_id", "rule_hash_old", "evaluated_on"]),
                diff.deletes.select(
                    [
                        "enterprise_id",
                        "rule_id",
                        pl.col("rule_hash").alias("rule_hash_old"),
                        "evaluated_on",
                    ]
                ),
                diff.inserts.select(
                    [
                        "enterprise_id",
                        "rule_id",
                        pl.lit(None, pl.Utf8).alias("rule_hash_old"),
                        pl.lit(None, pl.Date).alias("evaluated_on"),
                    ]
                ),
            ],
            how="vertical_relaxed",
        )
        for eid, rule_id, old_hash, evaluated_on in touched.iter_rows():
            version = versions[rule_id]
            code = code_of[eid]
            if old_hash is not None and old_hash != version.hash:
                stored_v = session.scalar(
                    select(RuleVersion.version).where(
                        RuleVersion.rule_id == rule_id, RuleVersion.hash == old_hash
                    )
                )
                why = f"rule changed (stored v{stored_v}, now v{version.version})"
            elif evaluated_on is not None and evaluated_on != on:
                then = plans.setdefault(
                    evaluated_on, compile_plan([r for _, r in pairs], evaluated_on)
                )
                i = index[rule_id]
                if _plan_signature(then, i) != _plan_signature(plan, i):
                    why = f"evaluated on {evaluated_on}; the rule reads differently on {on}"
                else:
                    why = "enterprise data changed"
            else:
                why = "enterprise data changed"
            out.append(Stale(code, rule_id, why))
    return out


def refresh_stale(session: Session, on: date | None = None) -> list[ResultChange]:
    """Re-evaluate exactly the enterprises whose stored results are stale."""
    stale = stale_results(session, on)
    return rematch_enterprises(session, {s.credit_code for s in stale}, on) if stale else []


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


@dataclass
class MyPolicies:
    """An enterprise's view: what it gets, what needs its data, what is within reach."""

    eligible: list[tuple[RuleVersion, Explanation]]
    to_confirm: list[tuple[RuleVersion, Explanation]]
    near_misses: list[tuple[RuleVersion, Explanation]]


def my_policies(session: Session, credit_code: str, on: date | None = None) -> MyPolicies:
    """Every published rule evaluated for one enterprise, grouped for the 我的政策 page."""
    on = on or clock.today()
    pairs = published_rules(session)
    row = _row_for(session, credit_code)
    plan = compile_plan([r for _, r in pairs], on)
    out = MyPolicies([], [], [])
    for (version, _rule), exp in zip(pairs, Evaluator(plan).explain_all(row), strict=True):
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
