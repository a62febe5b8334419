"""Matching service: publish rules into the database, run them over the registry, keep results current.

Services take the session first and never commit; the CLI or request boundary commits. Functions
that write results return the rows that are new or changed, so a caller (notify, grants) can act on
them in the same transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.enterprise.models import Enterprise, enterprise_current
from huiqi.enterprise.service import current_frame, on_enterprise_changed, today_cn
from huiqi.matching.models import MatchResult, RuleVersion
from huiqi.rules.batch import pack_codes, run_batch
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import Evaluator, Explanation, amount, eval_tree
from huiqi.rules.library import Library, load_base, load_library
from huiqi.rules.plan import RESULT_NAMES, Plan, T, U, compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import code_sql, prim_sql, rule_expr

Progress = Callable[[int, int], None]


class MatchingError(ValueError):
    """A matching request cannot be served (unknown rule or enterprise, invalid draft)."""


@dataclass
class ChangedResult:
    """A new or changed result, in the shape notify and grants read (huiqi.notify.schemas.ResultChange)."""

    credit_code: str
    rule_id: str
    rule_version: str
    result: str
    missing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    rule_title: str = ""
    enterprise_name: str = ""
    amount_fen: int | None = None
    mode: str = "push"
    legal_basis: str = ""
    previous: str | None = None


@dataclass
class LoadReport:
    """What `load_rules` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- rules


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
    newest = latest_version(session, rule.id)
    number = (newest.version + 1) if newest else 1
    if current is not None:
        current.status = "retired"
    basis = rule.doc.legal_basis[0]
    version = RuleVersion(
        rule_id=rule.id,
        version=number,
        hash=rule.hash,
        status="published",
        source=rule.source,
        title_zh=rule.doc.title.zh,
        title_en=rule.doc.title.en,
        mode=rule.doc.mode,
        department=rule.doc.department,
        doc_number=basis.doc_number,
        article=basis.article,
        valid_from=rule.doc.valid_from,
        valid_to=rule.doc.valid_to,
        created_at=utcnow(),
        created_by=created_by,
        published_by=created_by,
        published_at=utcnow(),
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
    """Published versions with their checked rules."""
    return [(v, _rule_from(v)) for v in published_versions(session)]


# ---------------------------------------------------------------------------------------- hashing


def input_hash(rule: Rule, row: dict[str, Any]) -> str:
    """Hash of the values this rule reads for one enterprise (missing shown as such, never as zero)."""
    parts = [f"{c}={row.get(c)!r}" for c in rule.columns()]
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def _plan_signature(plan: Plan, r: int) -> tuple[Any, ...]:
    """What a rule's evaluation depends on besides the inputs: its resolved tests on the plan's date."""
    pr = plan.rules[r]
    return (pr.in_force, tuple(plan.prims[i] for i in pr.atom_prims), tuple(map(repr, pr.resolved)))


# ---------------------------------------------------------------------------------------- storing


def _store(
    session: Session,
    version: RuleVersion,
    rule: Rule,
    rows: Sequence[tuple[int, str, str, dict[str, Any]]],
    codes: Sequence[int],
    conds: Sequence[int],
    on: date,
    existing: dict[tuple[int, str], MatchResult],
    evaluator: Evaluator | None = None,
) -> list[ChangedResult]:
    """Upsert results of one rule for the given enterprises; return the new or changed ones."""
    changed: list[ChangedResult] = []
    now = utcnow()
    for (eid, code, name, row), res, packed in zip(rows, codes, conds, strict=True):
        result = RESULT_NAMES[int(res)]
        ihash = input_hash(rule, row)
        fen = amount(rule, row, on)[0] if (rule.formula is not None and res == T) else None
        missing: list[str] = []
        if res == U:
            assert evaluator is not None
            missing = evaluator.explain(row, rule.id).missing
        prev = existing.get((eid, rule.id))
        if prev is None:
            session.add(
                MatchResult(
                    enterprise_id=eid,
                    credit_code=code,
                    rule_id=rule.id,
                    rule_version=version.version,
                    rule_hash=version.hash,
                    result=result,
                    conditions=int(packed),
                    missing=",".join(missing),
                    amount_fen=fen,
                    input_hash=ihash,
                    evaluated_on=on,
                    updated_at=now,
                    changed_at=now,
                )
            )
            changed.append(_changed(version, rule, code, name, result, missing, fen, None))
            continue
        differs = (prev.result, prev.amount_fen, prev.missing, prev.rule_hash) != (
            result,
            fen,
            ",".join(missing),
            version.hash,
        )
        if differs:
            changed.append(_changed(version, rule, code, name, result, missing, fen, prev.result))
            prev.changed_at = now
        prev.rule_version, prev.rule_hash, prev.result = version.version, version.hash, result
        prev.conditions, prev.missing, prev.amount_fen = int(packed), ",".join(missing), fen
        prev.input_hash, prev.evaluated_on, prev.updated_at = ihash, on, now
    session.flush()
    return changed


def _changed(
    version: RuleVersion,
    rule: Rule,
    code: str,
    name: str,
    result: str,
    missing: list[str],
    fen: int | None,
    previous: str | None,
) -> ChangedResult:
    return ChangedResult(
        credit_code=code,
        rule_id=rule.id,
        rule_version=str(version.version),
        result=result,
        missing=tuple(missing),
        rule_title=rule.doc.title.zh,
        enterprise_name=name or "",
        amount_fen=fen,
        mode=rule.doc.mode,
        legal_basis=rule.doc.legal_basis[0].label(),
        previous=previous,
    )


def _frame_rows(
    session: Session, frame: pl.DataFrame
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """(enterprise id, credit code, name, row dict) for each frame row, in frame order."""
    ids = {
        code: eid for code, eid in session.execute(select(Enterprise.credit_code, Enterprise.id))
    }
    out = []
    for row in frame.iter_rows(named=True):
        out.append((ids[row["credit_code"]], row["credit_code"], row.get("name") or "", row))
    return out


def _existing(
    session: Session, rule_ids: Iterable[str], enterprise_ids: Iterable[int] | None = None
) -> dict[tuple[int, str], MatchResult]:
    stmt = select(MatchResult).where(MatchResult.rule_id.in_(list(rule_ids)))
    if enterprise_ids is not None:
        stmt = stmt.where(MatchResult.enterprise_id.in_(list(enterprise_ids)))
    return {(m.enterprise_id, m.rule_id): m for m in session.scalars(stmt)}


# ---------------------------------------------------------------------------------------- running


def run_matching(
    session: Session,
    on: date | None = None,
    engine: str = "batch",
    rule_ids: Sequence[str] | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> list[ChangedResult]:
    """Evaluate published rules (all, or `rule_ids`) over every enterprise and store the results.

    ``actor`` names who caused the run (the officer who published a rule version) for the grant
    ledger; None means the matching job itself.
    """
    on = on or today_cn()
    pairs = [
        (v, r) for v, r in published_rules(session) if rule_ids is None or v.rule_id in rule_ids
    ]
    if rule_ids is not None:
        unknown = set(rule_ids) - {v.rule_id for v, _ in pairs}
        if unknown:
            raise MatchingError(f"no published rule {sorted(unknown)}")
    frame = current_frame(session)
    rows = _frame_rows(session, frame)
    plan = compile_plan([r for _, r in pairs], on)
    evaluator = Evaluator(plan)
    existing = _existing(session, [v.rule_id for v, _ in pairs])
    changed: list[ChangedResult] = []
    if engine == "batch":
        batch = run_batch(plan, frame)
    elif engine != "sql":
        raise MatchingError(f"unknown engine {engine!r} (batch or sql)")
    for r, (version, rule) in enumerate(pairs):
        if engine == "batch":
            codes = batch.codes(r).tolist()
            conds = batch.condition_codes(r).tolist()
        else:
            codes, conds = _sql_codes(session, plan, r, [eid for eid, *_ in rows])
        changed += _store(session, version, rule, rows, codes, conds, on, existing, evaluator)
        if progress:
            progress(r + 1, len(pairs))
    _propagate(session, changed, on, actor=actor)
    return changed


def _sql_codes(
    session: Session, plan: Plan, r: int, order: list[int]
) -> tuple[list[int], list[int]]:
    """Result and packed condition codes of rule r computed inside the database."""
    t = enterprise_current
    pr = plan.rules[r]
    cols = [t.c.id, code_sql(rule_expr(plan, r, t))]
    cols += [code_sql(prim_sql(plan.prims[i], t)) for i in pr.atom_prims]
    got = {row[0]: row[1:] for row in session.execute(select(*cols))}
    codes, conds = [], []
    for eid in order:
        values = got[eid]
        codes.append(int(values[0]))
        conds.append(pack_codes([int(v) for v in values[1:]]))
    return codes, conds


BATCH_THRESHOLD = (
    200  # above this many enterprises the vectorised engine is cheaper than one-by-one
)


def rematch_enterprises(
    session: Session, credit_codes: Iterable[str], on: date | None = None
) -> list[ChangedResult]:
    """Re-evaluate every published rule for these enterprises only."""
    on = on or today_cn()
    codes = sorted(set(credit_codes))
    pairs = published_rules(session)
    if not codes or not pairs:
        return []
    plan = compile_plan([r for _, r in pairs], on)
    evaluator = Evaluator(plan)
    if len(codes) > BATCH_THRESHOLD:
        frame = current_frame(session, credit_codes=codes)
        rows = _frame_rows(session, frame)
        batch = run_batch(plan, frame)
        per_rule = [
            (batch.codes(r).tolist(), batch.condition_codes(r).tolist()) for r in range(len(pairs))
        ]
    else:
        found = (
            session.execute(
                select(enterprise_current).where(enterprise_current.c.credit_code.in_(codes))
            )
            .mappings()
            .all()
        )
        names = [c.name for c in enterprise_current.columns if c.name != "id"]
        rows = [
            (m["id"], m["credit_code"], m["name"] or "", {k: m[k] for k in names}) for m in found
        ]
        per_row = [evaluator.prim_outcomes(row) for _, _, _, row in rows]
        per_rule = []
        for pr in plan.rules:
            atoms = [[prim[i] for i in pr.atom_prims] for prim in per_row]
            per_rule.append(
                ([eval_tree(pr.tree, a) for a in atoms], [pack_codes(a) for a in atoms])
            )
    existing = _existing(session, [v.rule_id for v, _ in pairs], [eid for eid, *_ in rows])
    changed: list[ChangedResult] = []
    for (version, rule), (res_codes, conds) in zip(pairs, per_rule, strict=True):
        changed += _store(session, version, rule, rows, res_codes, conds, on, existing, evaluator)
    _propagate(session, changed, on)
    return changed


def _propagate(
    session: Session, changed: list[ChangedResult], on: date, actor: str | None = None
) -> None:
    """New or changed results create grants and notifications in the same transaction (outbox)."""
    if not changed:
        return
    # Imported here: grants and notify read matching's result types, so a module-level import
    # would be circular.
    from huiqi.grants.service import grants_from_results
    from huiqi.notify.service import notify_results

    grants_from_results(session, changed, today=on, actor=actor or "matching")
    notify_results(session, changed)


def rematch_rule(
    session: Session, rule_id: str, on: date | None = None, actor: str | None = None
) -> list[ChangedResult]:
    """Re-evaluate one rule over every enterprise (after the rule changed, by ``actor``)."""
    return run_matching(session, on, rule_ids=[rule_id], actor=actor)


@on_enterprise_changed
def _on_enterprise_changed(session: Session, codes: set[str]) -> None:
    """Registry hook: changed enterprises are re-matched in the same transaction."""
    if session.scalar(select(func.count()).select_from(RuleVersion)):
        rematch_enterprises(session, codes)


# ---------------------------------------------------------------------------------------- staleness


@dataclass
class Stale:
    """A stored result that no longer reflects its inputs, rule or date."""

    credit_code: str
    rule_id: str
    why: str


def stale_results(session: Session, on: date | None = None) -> list[Stale]:
    """Stored results whose input values, rule version or evaluation date no longer match."""
    on = on or today_cn()
    pairs = {v.rule_id: (v, r) for v, r in published_rules(session)}
    names = [c.name for c in enterprise_current.columns if c.name != "id"]
    current = {
        m["id"]: {k: m[k] for k in names}
        for m in session.execute(select(enterprise_current)).mappings()
    }
    plans: dict[date, Plan] = {}
    today_plan = compile_plan([r for _, r in pairs.values()], on)
    index = {pr.rule.id: i for i, pr in enumerate(today_plan.rules)}
    out: list[Stale] = []
    for m in session.scalars(select(MatchResult)):
        pair = pairs.get(m.rule_id)
        if pair is None:
            out.append(Stale(m.credit_code, m.rule_id, "rule no longer published"))
            continue
        version, rule = pair
        if m.rule_hash != version.hash:
            out.append(
                Stale(
                    m.credit_code,
                    m.rule_id,
                    f"rule changed (stored v{m.rule_version}, now v{version.version})",
                )
            )
            continue
        row = current.get(m.enterprise_id)
        if row is None or input_hash(rule, row) != m.input_hash:
            out.append(Stale(m.credit_code, m.rule_id, "enterprise data changed"))
            continue
        if m.evaluated_on != on:
            then = plans.setdefault(
                m.evaluated_on, compile_plan([r for _, r in pairs.values()], m.evaluated_on)
            )
            i = index[m.rule_id]
            if _plan_signature(then, i) != _plan_signature(today_plan, i):
                out.append(
                    Stale(
                        m.credit_code,
                        m.rule_id,
                        f"evaluated on {m.evaluated_on}; the rule reads differently on {on}",
                    )
                )
    return out


def refresh_stale(session: Session, on: date | None = None) -> list[ChangedResult]:
    """Re-evaluate exactly the enterprises whose stored results are stale."""
    stale = stale_results(session, on)
    return rematch_enterprises(session, {s.credit_code for s in stale}, on) if stale else []


# ---------------------------------------------------------------------------------------- queries


def _row_for(session: Session, credit_code: str) -> dict[str, Any]:
    found = (
        session.execute(
            select(enterprise_current).where(enterprise_current.c.credit_code == credit_code)
        )
        .mappings()
        .first()
    )
    if found is None:
        raise MatchingError(f"no enterprise with credit code {credit_code!r}")
    return {k: v for k, v in found.items() if k != "id"}


def explain(
    session: Session, credit_code: str, rule_id: str, on: date | None = None
) -> Explanation:
    """Evaluate one published rule for one enterprise with reasons, missing data and near miss."""
    on = on or today_cn()
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
    on = on or today_cn()
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
    session: Session, rule_id: str, on: date | None = None, limit: int = 200
) -> ReverseReport:
    """A rule's eligible and unknown enterprises with counts by city, industry division and size class."""
    on = on or today_cn()
    version = next((v for v in published_versions(session) if v.rule_id == rule_id), None)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    plan = compile_plan([_rule_from(version)], on)
    t = enterprise_current
    code = code_sql(rule_expr(plan, 0, t))

    def grouped(key: Any) -> list[tuple[str | None, str, int]]:
        sub = select(key.label("grp"), code.label("result")).subquery()
        stmt = (
            select(sub.c.grp, sub.c.result, func.count())
            .where(sub.c.result != 0)
            .group_by(sub.c.grp, sub.c.result)
            .order_by(sub.c.grp)
        )
        return [(g, RESULT_NAMES[int(r)], int(n)) for g, r, n in session.execute(stmt)]

    sub = select(code.label("result")).subquery()
    totals = {
        RESULT_NAMES[int(r)]: int(n)
        for r, n in session.execute(select(sub.c.result, func.count()).group_by(sub.c.result))
    }
    for name in RESULT_NAMES.values():
        totals.setdefault(name, 0)

    def listing(result: int) -> list[str]:
        sub2 = select(t.c.credit_code, code.label("result")).subquery()
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
    on = on or today_cn()
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


def load_demo(session: Session, on: date | None = None) -> list[ChangedResult]:
    """Publish the library rules and match them over the registry (for `huiqi demo load`)."""
    load_rules(session)
    return run_matching(session, on)
