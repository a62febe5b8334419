"""Grants created, recomputed or held from matching's changed results of auto_grant rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.bulk import one_of
from huiqi.core.db import utcnow
from huiqi.core.money import format_fen
from huiqi.enterprise import repository as ent_repo
from huiqi.events import ResultChange, ResultsChanged, of_mode
from huiqi.grants import snapshots
from huiqi.grants.ledger import LedgerItem, append_ledger, append_many
from huiqi.grants.models import Grant, GrantStatus
from huiqi.grants.risk import (
    assess_risk,
    flag,
    provenance,
    risk_facts,
    set_flags,
    used_fields,
)
from huiqi.grants.snapshots import build_snapshot, encode_value, inputs_hash
from huiqi.grants.sources import input_sources_many


def _kinds(snapshot: dict[str, Any]) -> dict[str, str]:
    return {f: i["kind"] for f, i in (snapshot.get("sources") or {}).items()}


def _mark_sources(
    session: Session,
    snap: dict[str, Any],
    rule: Any,
    row: dict[str, Any],
    on: date,
    credit_code: str,
    period: int,
    fen: int,
    sources: dict[str, dict[str, Any]],
) -> None:
    """Record each input's source kind in the snapshot, with the flags self-reported values
    and sources the rule does not accept raise."""
    from huiqi.grants.sources import source_flags

    snap["sources"] = sources
    snap["source_flags"] = source_flags(
        session,
        rule=rule,
        row=row,
        on=on,
        credit_code=credit_code,
        period=period,
        amount_fen=fen,
        sources=sources,
    )


def _hold(
    session: Session,
    grant: Grant,
    code: str,
    zh: str,
    en: str,
    detail: dict[str, Any],
    *,
    actor: str = "matching",
) -> None:
    """Flag a decided grant whose basis changed; the amount and status stay as decided."""
    if any(f["code"] == code for f in grant.risk_flags or []):
        return
    grant.risk_flags = [*(grant.risk_flags or []), flag(code, zh, en, **detail)]
    grant.inputs_changed_at = utcnow()
    grant.updated_at = utcnow()
    append_ledger(session, grant, code, actor=actor, status_from=grant.status, detail=detail)


def grants_from_results(
    session: Session,
    changed_results: Iterable[ResultChange],
    *,
    today: date | None = None,
    actor: str | None = None,
) -> list[Grant]:
    """Create or update grants for new or changed results of auto_grant rules.

    Call it with matching's changed results in the same transaction. A new eligible result
    gets a pending grant with its amount and input snapshot; a pending grant whose inputs
    changed is recomputed (ledger entry with old and new); an approved or disbursed grant is
    never altered: it is flagged for review instead.

    `actor` is who caused the change (e.g. the officer who published a new rule version); the
    ledger records it instead of "matching" on every entry written here.
    """
    by = actor or "matching"
    from huiqi.matching.models import RuleVersion
    from huiqi.matching.service import evaluated_on_many
    from huiqi.rules.evaluate import amount

    today = today or clock.today()
    touched: list[Grant] = []
    listed = [c for c in changed_results if c.mode == "auto_grant"]
    if not listed:
        return touched
    # the batch's grants, rule versions and evaluation dates, each read in one pass; registry
    # rows and dates only of the eligible, the only ones a grant is computed for
    existing: dict[tuple[str, str], list[Grant]] = {}
    for found in session.scalars(
        select(Grant)
        .where(
            one_of(session, Grant.credit_code, sorted({c.credit_code for c in listed})),
            Grant.rule_id.in_(sorted({c.rule_id for c in listed})),
        )
        .order_by(Grant.id)
    ):
        existing.setdefault((found.rule_id, found.credit_code), []).append(found)
    versions: dict[tuple[str, int], RuleVersion | None] = {}
    codes = sorted({c.credit_code for c in listed if c.result == "eligible"})
    dates = evaluated_on_many(session, codes)
    rows = {
        found.credit_code: {k: v for k, v in found._mapping.items() if k != "id"}
        for found in ent_repo.all_current(session, codes)
    }
    paying: list[tuple[ResultChange, RuleVersion, Any, dict[str, Any], date, int, int]] = []
    items: list[LedgerItem] = []

    def write_ledger() -> None:
        append_many(session, items)
        items.clear()

    for change in listed:
        if change.result != "eligible":
            for decided in existing.get((change.rule_id, change.credit_code), []):
                if decided.status == GrantStatus.rejected:
                    continue
                if decided.status == GrantStatus.pending:
                    if not any(f["code"] == "no_longer_eligible" for f in decided.risk_flags):
                        decided.risk_flags = [
                            *decided.risk_flags,
                            flag(
                                "no_longer_eligible",
                                "最新数据下已不符合条件",
                                "no longer eligible on the latest data",
                                result=change.result,
                            ),
                        ]
                    items.append(
                        LedgerItem(
                            decided,
                            "no_longer_eligible",
                            by,
                            decided.status,
                            {"result": change.result},
                        )
                    )
                else:
                    write_ledger()
                    _hold(
                        session,
                        decided,
                        "no_longer_eligible",
                        "批准后数据变化,已不符合条件",
                        "no longer eligible after approval",
                        {"result": change.result},
                        actor=by,
                    )
                touched.append(decided)
            continue
        vkey = (change.rule_id, int(change.rule_version))
        if vkey not in versions:
            versions[vkey] = session.scalar(
                select(RuleVersion).where(
                    RuleVersion.rule_id == change.rule_id, RuleVersion.version == vkey[1]
                )
            )
        version = versions[vkey]
        row = rows.get(change.credit_code)
        if version is None or row is None:
            continue
        rule = snapshots.rule_of(version.source, version.rule_id, version.version)
        on = dates.get(change.credit_code) or clock.today()
        fen = amount(rule, row, on)[0]
        if fen is None:
            continue
        period = int(row.get("figures_year") or on.year)
        paying.append((change, version, rule, row, on, fen, period))
    # the values, accounts and sources of every grant to write, read once for the batch
    facts = risk_facts(session, [item[0].credit_code for item in paying])
    sources = input_sources_many(
        session,
        [
            (change.credit_code, used_fields(rule.columns()), period)
            for change, _v, rule, _r, _on, _f, period in paying
        ],
    )
    for (change, version, rule, row, on, fen, period), mine in zip(paying, sources, strict=True):
        snap = build_snapshot(
            rule, row, on, provenance(session, change.credit_code, rule.columns(), period, facts)
        )
        _mark_sources(
            session, snap, rule, row, on, change.credit_code, period, fen, mine
        )  # fmt: skip
        ihash = inputs_hash(snap["inputs"])
        grant = next(
            (
                g
                for g in existing.get((change.rule_id, change.credit_code), [])
                if g.period == period
            ),
            None,
        )
        if grant is None:
            grant = Grant(
                credit_code=change.credit_code,
                enterprise_name=row.get("name") or change.enterprise_name,
                rule_id=rule.id,
                rule_version=version.version,
                rule_hash=version.hash,
                rule_title=version.title_zh,
                legal_basis=f"{version.doc_number} {version.article}",
                department=version.department,
                period=period,
                amount_fen=fen,
                snapshot=snap,
                input_hash=ihash,
                status=GrantStatus.pending,
                risk_flags=[],
            )
            session.add(grant)
            existing.setdefault((change.rule_id, change.credit_code), []).append(grant)
            set_flags(grant, assess_risk(session, grant, today, facts))
            items.append(
                LedgerItem(
                    grant,
                    "created",
                    by,
                    None,
                    {"input_hash": ihash, "rule_version": version.version},
                )
            )
            touched.append(grant)
            continue
        if grant.input_hash == ihash and grant.rule_hash == version.hash:
            # the same value from another kind of source re-marks a pending grant's snapshot
            if grant.status != GrantStatus.pending or _kinds(grant.snapshot) == _kinds(snap):
                continue
        if grant.status == GrantStatus.pending:
            old = {
                "amount_fen": grant.amount_fen,
                "input_hash": grant.input_hash,
                "rule_version": grant.rule_version,
            }
            grant.amount_fen, grant.snapshot, grant.input_hash = fen, snap, ihash
            grant.rule_version, grant.rule_hash = version.version, version.hash
            grant.updated_at = utcnow()
            grant.risk_flags = [f for f in grant.risk_flags if f["code"] != "no_longer_eligible"]
            set_flags(grant, assess_risk(session, grant, today, facts))
            items.append(
                LedgerItem(
                    grant,
                    "recomputed",
                    by,
                    grant.status,
                    {
                        "old": old,
                        "new": {
                            "amount_fen": fen,
                            "input_hash": ihash,
                            "rule_version": version.version,
                        },
                    },
                )
            )
        else:
            write_ledger()
            _hold(
                session,
                grant,
                "inputs_changed",
                f"批准后输入数据已变化(按新数据为 {format_fen(fen)}),金额未改动,请复核",
                "inputs changed after the decision; the amount was not altered",
                {
                    "new_amount_fen": fen,
                    "new_input_hash": ihash,
                    "new_rule_version": version.version,
                },
                actor=by,
            )
        touched.append(grant)
    write_ledger()
    session.flush()
    return touched


def check_inputs(session: Session) -> list[Grant]:
    """Flag decided grants whose current registry inputs differ from their snapshot."""
    flagged = []
    for grant in session.scalars(
        select(Grant).where(Grant.status.in_([GrantStatus.approved, GrantStatus.disbursed]))
    ):
        row = ent_repo.current_mapping(session, grant.credit_code)
        if row is None:
            continue
        now = {k: encode_value(row.get(k)) for k in grant.snapshot["inputs"]}
        if inputs_hash(now) != grant.input_hash:
            before = len(grant.risk_flags or [])
            _hold(
                session,
                grant,
                "inputs_changed",
                "批准后输入数据已变化,金额未改动,请复核",
                "inputs changed after the decision; the amount was not altered",
                {"new_input_hash": inputs_hash(now)},
            )
            if len(grant.risk_flags) > before:
                flagged.append(grant)
    return flagged


def on_results_changed(session: Session, event: ResultsChanged) -> None:
    """Matching stored new or changed results: create or flag the grants of auto_grant rules."""
    auto = of_mode(event.changes, "auto_grant")
    if auto:
        grants_from_results(session, auto, today=event.on, actor=event.actor)
