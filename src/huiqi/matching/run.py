"""Running matching: batches evaluated, stored and propagated; runs recorded; re-matching."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.core import clock, db
from huiqi.core.bulk import chunks
from huiqi.core.db import utcnow
from huiqi.enterprise.models import enterprise_current
from huiqi.enterprise.repository import ids_for_codes
from huiqi.enterprise.service import contract_schema
from huiqi.events import EnterpriseChanged, ResultChange, ResultsChanged
from huiqi.matching.models import MatchRun, MatchState, RuleVersion
from huiqi.matching.news import batch_news, ended_results
from huiqi.matching.state import (
    Layout,
    _amounts,
    _blobs,
    _codes,
    _current_layout,
    _frame,
    _input_hashes,
    _layout,
    _move_layouts,
    _Narrow,
    _narrowing,
    _stored,
    _unchanged,
    _write_states,
    pack2,
)
from huiqi.matching.versions import MatchingError, published_rules
from huiqi.rules.compiler import Rule
from huiqi.rules.plan import RESULT_NAMES, Plan, compile_plan

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
    moved: int = 0  # rows kept unwritten: their layout moved to the new rule versions
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
            "moved",
            "changes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.batches += 1
        for phase, sec in other.seconds.items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + sec
        for result, n in other.by_result.items():
            self.by_result[result] = self.by_result.get(result, 0) + n


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
    kept: dict[int, list[np.ndarray]] | None = None,
    narrowings: dict[int, _Narrow | None] | None = None,
) -> RunReport:
    """Evaluate, store and propagate one batch of enterprises; never commits.

    Enterprises whose stored layout and input hash are unchanged are skipped (unless `force`);
    the others are evaluated, compared with what is stored, and only those whose codes or
    amounts changed are written. A row whose codes are equal under a layout of the same rules
    and widths (another rule version or date) is not written: a full run passes `kept`, which
    collects such rows' ids per layout so the run can move whole layouts at its end; a run over
    some enterprises moves such rows by one UPDATE per chunk instead. Rows of such a layout
    with unchanged inputs are first checked by the rules that differ alone (`narrowings`, per
    stored layout); only those whose codes changed are evaluated in full.
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
    if narrowings is not None and not force:
        # rows whose inputs are unchanged under an older layout of the same rules: checked by
        # the rules that differ alone, and those whose codes hold are kept as they are
        same_inputs = dirty & head.present & (head.hashes == hashes)
        ids_np = frame["id"].to_numpy()
        for lid in np.unique(head.layout_ids[same_inputs]).tolist():
            if lid not in narrowings:
                narrowings[lid] = _narrowing(session, _layout(session, lid), layout, pairs, plan)
            narrow = narrowings[lid]
            if narrow is None:
                continue
            at = np.flatnonzero(same_inputs & (head.layout_ids == lid))
            report.evaluated += at.size * len(narrow.positions)
            keep = at[_unchanged(session, narrow, layout, frame[at.tolist()])]
            dirty[keep] = False
            if kept is not None:
                kept.setdefault(lid, []).append(ids_np[keep])
            else:
                _move_rows(session, ids_np[keep].tolist(), layout, on)
                report.moved += keep.size
    todo = np.flatnonzero(dirty)
    if todo.size == 0:
        report.seconds["evaluate"] = time.perf_counter() - clock_
        return report
    part = frame[todo.tolist()] if todo.size < frame.height else frame
    fresh = _codes(session, plan, part, engine)
    fresh.amounts = _amounts(pairs, part, fresh.results, on)
    report.evaluated += part.height * len(pairs)
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
    part_ids_np = part["id"].to_numpy()
    if kept is not None:
        for lid in np.unique(stored.layout_ids[relabel]).tolist():
            at = relabel & (stored.layout_ids == lid)
            kept.setdefault(int(lid), []).append(part_ids_np[at])
    else:
        _move_rows(session, part_ids_np[relabel].tolist(), layout, on)
        report.moved += int(relabel.sum())
    # rows whose codes are equal hold no news (same results, amounts and rules)
    rows = np.flatnonzero(write & ~relabel)
    _write_states(session, layout, part, rows, fresh, part_hashes, stored.present, on)
    report.inserted = int((~stored.present[rows]).sum())
    report.updated = int(rows.size - report.inserted)
    news = batch_news(plan, pairs, layout, session, part, rows, fresh, stored)
    ended = ended_results(session, layout, part, rows, stored)
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


def _move_rows(session: Session, ids: list[int], layout: Layout, on: date) -> None:
    """Move these enterprises' rows, whose codes are unchanged, to `layout` (runs over some
    enterprises; a full run moves whole layouts at its end instead)."""
    move = update(MatchState).values(layout_id=layout.id, evaluated_on=on, updated_at=utcnow())
    move = move.execution_options(synchronize_session=False)
    for ids_part in chunks(ids, 2000 if session.get_bind().dialect.name != "sqlite" else 500):
        session.execute(move.where(MatchState.enterprise_id.in_(list(ids_part))))


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
    # a full run meets every stored row: rows equal under the new layout are kept per layout,
    # and each layout all of whose rows were kept moves to the new one when the run ends
    kept: dict[int, list[np.ndarray]] | None = {} if codes is None else None
    narrowings: dict[int, _Narrow | None] = {}
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
                kept=kept,
                narrowings=narrowings,
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
            # a long run grows match_state, notifications and grants from nothing; the analysis
            # rides in the next batch's transaction, so `checkpoint` stays one call a batch
            db.refresh_statistics(session)
    if kept:
        report.moved += _move_layouts(session, kept, layout)
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
        changes = ended_results(session, layout, frame, rows, stored)
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
