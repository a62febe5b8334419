"""Questions answered by evaluating rules: explanations, 我的政策, reverse queries, the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.lru import Lru
from huiqi.enterprise import repository as ent_repo
from huiqi.enterprise.models import enterprise_current
from huiqi.enterprise.service import current_frame
from huiqi.events import ResultChange
from huiqi.matching.models import RuleVersion
from huiqi.matching.run import run_matching
from huiqi.matching.versions import (
    MatchingError,
    _rule_from,
    base_library,
    load_rules,
    published_rules,
    published_versions,
)
from huiqi.rules.batch import run_batch
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import Evaluator, Explanation, amount
from huiqi.rules.plan import RESULT_NAMES, T, compile_plan
from huiqi.rules.source import RuleValidationError
from huiqi.rules.sql import code_sql, rule_expr


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
