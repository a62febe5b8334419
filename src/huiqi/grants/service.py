"""Grant services (免申即享): compute grants from auto_grant results, assess risk, review in
batches, disburse with a file, tell enterprises, publish the notice list, keep the ledger.
Every function takes the session first and never commits."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts.models import Role
from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.core.export import append_row, csv_bytes
from huiqi.core.money import FEN_PER_YUAN, format_fen
from huiqi.enterprise import repository as ent_repo
from huiqi.events import GrantDecided, ResultChange, ResultsChanged, publish
from huiqi.grants.ledger import LedgerItem, append_ledger, append_many, ledger_problems
from huiqi.grants.ledger import ledger as ledger  # re-exported: pages read it from here
from huiqi.grants.ledger import verify_ledger as verify_ledger
from huiqi.grants.models import BankAccount, Disbursement, Grant, GrantStatus
from huiqi.grants.schemas import (
    BankAccountInput,
    GrantError,
    GrantForbidden,
    GrantFourEyes,
    LedgerMismatch,
    mask_account,
)
from huiqi.grants.sources import CONFIRM_FLAGS

RISK_FILE = Path(__file__).parent / "data" / "risk.yaml"
SIZE_INPUTS = ("industry_code", "employees", "revenue", "total_assets")
HOLD_FLAGS = {"inputs_changed", "no_longer_eligible"}


# --- who may review ------------------------------------------------------------------------

# The departments (as written on grants) a user may act for; None means every department.
Scope = Collection[str] | None


def department_key(session: Session, name: str | None, registry: Any = None) -> str | None:
    """A department name normalised through the policy department registry (its code), so
    省人社厅 and 甘肃省人力资源和社会保障厅 compare equal; unknown names compare as written."""
    if not name or not name.strip():
        return None
    if registry is None:
        from huiqi.policy.service import registry_for

        registry = registry_for(session)
    resolved = registry.resolve(name)
    return str(resolved.code or resolved.name)


def review_scope(session: Session, *, role: str, department: str | None) -> Scope:
    """The grant departments a user may review: all for admin, the officer's own department
    (matched through the registry) for an officer, none for anyone else."""
    reviewer = scopes.Scope(role=Role(role), department=department)
    if reviewer.unrestricted:
        return None
    if reviewer.role != Role.officer:
        return frozenset()
    from huiqi.policy.service import registry_for

    registry = registry_for(session)

    def same(mine: str, theirs: str) -> bool:
        key = department_key(session, mine, registry)
        return key is not None and key == department_key(session, theirs, registry)

    written = session.scalars(select(Grant.department).distinct()).all()
    return frozenset(
        d
        for d in written
        # a grant without a department belongs to no officer's review
        if d and scopes.can_access(reviewer, department=d, same_department=same)
    )


def in_scope(grant: Grant, departments: Scope) -> bool:
    """Whether a grant's rule belongs to one of the departments (None: any)."""
    return departments is None or grant.department in departments


def _scoped(q: Any, departments: Scope) -> Any:
    return q if departments is None else q.where(Grant.department.in_(sorted(departments)))


# --- risk settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskSettings:
    """Review thresholds (see grants/data/risk.yaml for their basis)."""

    stale_days: int
    amount_threshold_fen: int
    yoy_factor: int
    basis: str


@cache
def risk_settings() -> RiskSettings:
    """The review thresholds shipped with the package."""
    data = yaml.safe_load(RISK_FILE.read_text(encoding="utf-8"))
    basis = data["basis"]
    return RiskSettings(
        stale_days=int(data["stale_days"]),
        amount_threshold_fen=int(data["amount_threshold_fen"]),
        yoy_factor=int(data["yoy_factor"]),
        basis=f"{basis['doc_number']} {basis['article']} — {basis['note']}",
    )


# --- snapshots -----------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """A JSON form of an input value that decodes back to the same Python value."""
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Fraction):
        return {"fraction": f"{value.numerator}/{value.denominator}"}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def decode_value(value: Any) -> Any:
    """Inverse of encode_value."""
    if isinstance(value, dict):
        if "date" in value:
            return date.fromisoformat(value["date"])
        if "fraction" in value:
            return Fraction(value["fraction"])
        if "decimal" in value:
            return Decimal(value["decimal"])
    return value


def inputs_hash(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the encoded inputs."""
    canonical = json.dumps(inputs, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rule(source: str, rule_id: str, version: int) -> Any:
    """The checked rule of a stored version."""
    from huiqi.matching.service import base_library

    return base_library().parse_rule(source, f"{rule_id} v{version}")


def build_snapshot(
    rule: Any, row: dict[str, Any], on: date, provenance: dict[str, str]
) -> dict[str, Any]:
    """What the amount was computed from: the date, the inputs the rule reads, the parameters."""
    from huiqi.rules.compiler import Parameter

    params = {
        name: encode_value(ref.value_on(on))
        for name, ref in rule.formula_names.items()
        if isinstance(ref, Parameter)
    }
    return {
        "on": on.isoformat(),
        "inputs": {col: encode_value(row.get(col)) for col in rule.columns()},
        "parameters": params,
        "formula": rule.formula.text if rule.formula is not None else None,
        "as_of": provenance,
    }


def recompute(session: Session, grant: Grant) -> int | None:
    """The amount computed again from the grant's snapshot and its rule version."""
    from huiqi.matching.models import RuleVersion
    from huiqi.rules.evaluate import amount

    version = session.scalar(
        select(RuleVersion).where(
            RuleVersion.rule_id == grant.rule_id, RuleVersion.version == grant.rule_version
        )
    )
    if version is None:
        raise GrantError(f"rule {grant.rule_id} v{grant.rule_version} is not stored")
    rule = _rule(version.source, version.rule_id, version.version)
    inputs = {k: decode_value(v) for k, v in grant.snapshot["inputs"].items()}
    return amount(rule, inputs, date.fromisoformat(grant.snapshot["on"]))[0]


# --- provenance and risk -------------------------------------------------------------------


def _value_rows(session: Session, credit_code: str) -> list[tuple[str, int, str, date]]:
    """Current registry values (field, year, value, as_of) of one enterprise."""
    return [(f, y, v, a) for _c, f, y, v, a, _s in ent_repo.live_values(session, [credit_code])]


def _used_fields(columns: Iterable[str]) -> set[str]:
    """Stored registry fields behind the columns a rule reads (size class reads its inputs)."""
    used = set(columns)
    if used & {"size_class", "above_scale"}:
        used |= set(SIZE_INPUTS)
    return used - {"size_class", "above_scale", "figures_year", "credit_code"}


def provenance(
    session: Session, credit_code: str, columns: Iterable[str], figures_year: int | None
) -> dict[str, str]:
    """As-of date of each stored value the grant relies on."""
    out: dict[str, str] = {}
    used = _used_fields(columns)
    for fname, year, _value, as_of in _value_rows(session, credit_code):
        if fname in used and year in (0, figures_year or -1):
            out[fname] = as_of.isoformat()
    return out


def _flag(code: str, zh: str, en: str, **detail: Any) -> dict[str, Any]:
    return {"code": code, "zh": zh, "en": en, **detail}


def assess_risk(session: Session, grant: Grant, today: date) -> list[dict[str, Any]]:
    """Risk flags for officer review: stale data, large amount, shared account, jumping figures."""
    cfg = risk_settings()
    flags: list[dict[str, Any]] = []
    as_of = grant.snapshot.get("as_of") or {}
    if as_of:
        oldest = min(date.fromisoformat(d) for d in as_of.values())
        if (today - oldest).days > cfg.stale_days:
            flags.append(
                _flag(
                    "stale_data",
                    f"数据过旧:最早的数据截至 {oldest},超过 {cfg.stale_days} 天",
                    f"stale data: oldest value as of {oldest}, over {cfg.stale_days} days",
                )
            )
    if grant.amount_fen > cfg.amount_threshold_fen:
        flags.append(
            _flag(
                "high_amount",
                f"金额 {format_fen(grant.amount_fen)} 超过复核阈值 {format_fen(cfg.amount_threshold_fen)}",
                f"amount above the review threshold {format_fen(cfg.amount_threshold_fen)}",
            )
        )
    account = session.scalar(
        select(BankAccount).where(BankAccount.credit_code == grant.credit_code)
    )
    if account is None:
        flags.append(_flag("no_bank_account", "企业尚未登记收款账户", "no bank account on file"))
    else:
        others = session.scalars(
            select(BankAccount.credit_code).where(
                BankAccount.account_no == account.account_no,
                BankAccount.credit_code != grant.credit_code,
            )
        ).all()
        if others:
            flags.append(
                _flag(
                    "shared_account",
                    f"收款账户与其他 {len(others)} 家企业相同",
                    f"bank account shared with {len(others)} other enterprise(s)",
                    others=sorted(others),
                )
            )
    flags += _yoy_flags(session, grant, cfg.yoy_factor)
    # computed with the amount from the inputs' sources (huiqi.grants.sources)
    flags += list(grant.snapshot.get("source_flags") or [])
    return flags


def _yoy_flags(session: Session, grant: Grant, factor: int) -> list[dict[str, Any]]:
    """Yearly figures the grant relies on that grew or shrank by `factor` or more in a year."""
    from huiqi.enterprise.catalogue import catalogue

    year = grant.period
    cat = catalogue()
    yearly = {f.name for f in cat.of_kind("yearly")}
    used = _used_fields(grant.snapshot.get("inputs", {})) & yearly
    values: dict[tuple[str, int], int] = {}
    for fname, y, value, _as_of in _value_rows(session, grant.credit_code):
        if fname in used and y in (year, year - 1) and cat[fname].type in ("int", "money"):
            values[(fname, y)] = int(value)
    flags = []
    for fname in sorted(used):
        now, before = values.get((fname, year)), values.get((fname, year - 1))
        if now is None or before is None or now <= 0 or before <= 0:
            continue
        if now >= before * factor or before >= now * factor:
            label = cat[fname].zh
            flags.append(
                _flag(
                    "yoy_jump",
                    f"{label} {year - 1}→{year} 变化超过 {factor} 倍({before}→{now})",
                    f"{fname} changed {factor}× or more from {year - 1} to {year}",
                    field=fname,
                )
            )
    return flags


# --- creating grants from matching ---------------------------------------------------------


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
) -> None:
    """Record each input's source kind in the snapshot, with the flags self-reported values
    and sources the rule does not accept raise."""
    from huiqi.grants.sources import input_sources, source_flags

    sources = input_sources(session, credit_code, _used_fields(rule.columns()), period)
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


def _evaluated_on(session: Session, credit_code: str, rule_id: str) -> date:
    from huiqi.matching.models import MatchResult

    on = session.scalar(
        select(MatchResult.evaluated_on).where(
            MatchResult.credit_code == credit_code, MatchResult.rule_id == rule_id
        )
    )
    return on or clock.today()


def _set_flags(grant: Grant, flags: list[dict[str, Any]]) -> None:
    """Replace the computed flags, keeping the hold flags raised after approval."""
    held = [f for f in (grant.risk_flags or []) if f["code"] in HOLD_FLAGS]
    grant.risk_flags = held + [f for f in flags if f["code"] not in HOLD_FLAGS]


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
    grant.risk_flags = [*(grant.risk_flags or []), _flag(code, zh, en, **detail)]
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
    from huiqi.rules.evaluate import amount

    today = today or clock.today()
    touched: list[Grant] = []
    for change in changed_results:
        if change.mode != "auto_grant":
            continue
        if change.result != "eligible":
            for decided in session.scalars(
                select(Grant).where(
                    Grant.rule_id == change.rule_id,
                    Grant.credit_code == change.credit_code,
                    Grant.status != GrantStatus.rejected,
                )
            ):
                if decided.status == GrantStatus.pending:
                    if not any(f["code"] == "no_longer_eligible" for f in decided.risk_flags):
                        decided.risk_flags = [
                            *decided.risk_flags,
                            _flag(
                                "no_longer_eligible",
                                "最新数据下已不符合条件",
                                "no longer eligible on the latest data",
                                result=change.result,
                            ),
                        ]
                    append_ledger(
                        session,
                        decided,
                        "no_longer_eligible",
                        actor=by,
                        status_from=decided.status,
                        detail={"result": change.result},
                    )
                else:
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
        version = session.scalar(
            select(RuleVersion).where(
                RuleVersion.rule_id == change.rule_id,
                RuleVersion.version == int(change.rule_version),
            )
        )
        row = ent_repo.current_mapping(session, change.credit_code)
        if version is None or row is None:
            continue
        rule = _rule(version.source, version.rule_id, version.version)
        on = _evaluated_on(session, change.credit_code, change.rule_id)
        fen = amount(rule, row, on)[0]
        if fen is None:
            continue
        period = int(row.get("figures_year") or on.year)
        snap = build_snapshot(
            rule, row, on, provenance(session, change.credit_code, rule.columns(), period)
        )
        _mark_sources(session, snap, rule, row, on, change.credit_code, period, fen)
        ihash = inputs_hash(snap["inputs"])
        grant = session.scalar(
            select(Grant).where(
                Grant.rule_id == change.rule_id,
                Grant.credit_code == change.credit_code,
                Grant.period == period,
            )
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
            session.flush()
            _set_flags(grant, assess_risk(session, grant, today))
            append_ledger(
                session,
                grant,
                "created",
                actor=by,
                status_from=None,
                detail={"input_hash": ihash, "rule_version": version.version},
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
            _set_flags(grant, assess_risk(session, grant, today))
            append_ledger(
                session,
                grant,
                "recomputed",
                actor=by,
                status_from=grant.status,
                detail={
                    "old": old,
                    "new": {
                        "amount_fen": fen,
                        "input_hash": ihash,
                        "rule_version": version.version,
                    },
                },
            )
        else:
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


# --- bank accounts -------------------------------------------------------------------------


def bank_account(session: Session, credit_code: str) -> BankAccount | None:
    """The enterprise's receiving account."""
    return session.scalar(select(BankAccount).where(BankAccount.credit_code == credit_code))


def set_bank_account(
    session: Session, credit_code: str, data: BankAccountInput, *, actor: str | None
) -> BankAccount:
    """Record the enterprise's receiving account; pending grants are re-assessed."""
    account = bank_account(session, credit_code)
    if account is None:
        account = BankAccount(credit_code=credit_code)
        session.add(account)
    old_number = account.account_no
    account.bank_name, account.account_name = data.bank_name, data.account_name
    account.account_no = data.account_no
    account.recorded_at, account.recorded_by = utcnow(), actor
    session.flush()
    # enterprises that share the old or the new number are re-assessed too
    sharing = set(
        session.scalars(
            select(BankAccount.credit_code).where(
                BankAccount.account_no.in_([n for n in (old_number, data.account_no) if n])
            )
        )
    ) | {credit_code}
    for grant in session.scalars(
        select(Grant).where(Grant.credit_code.in_(sharing), Grant.status == GrantStatus.pending)
    ):
        _set_flags(grant, assess_risk(session, grant, clock.today()))
    return account


# --- review --------------------------------------------------------------------------------


@dataclass
class ReviewReport:
    """What a batch review did, and which grants it skipped and why."""

    done: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def review(
    session: Session,
    grant_ids: Sequence[int],
    decision: str,
    *,
    actor: str,
    reason: str = "",
    ack_risk: bool = False,
    departments: Scope = None,
) -> ReviewReport:
    """Approve or reject pending grants in a batch.

    Rejection needs a reason. Flagged grants are approved only when the officer acknowledges
    the flags; a grant without a bank account cannot be approved. An approved grant that was
    flagged afterwards may still be rejected (with a reason) before disbursement. A grant of
    a rule outside `departments` refuses the whole batch (GrantForbidden) before any change.
    """
    if decision not in ("approve", "reject"):
        raise GrantError("decision must be approve or reject")
    reason = reason.strip()
    if decision == "reject" and not reason:
        raise GrantError("驳回必须填写理由 / a rejection needs a reason")
    if len(reason) > 1000:
        raise GrantError("理由最多 1000 字 / reason: at most 1000 characters")
    asked = session.scalars(select(Grant).where(Grant.id.in_(list(set(grant_ids))))).all()
    foreign = [g.id for g in asked if not in_scope(g, departments)]
    if foreign:
        raise GrantForbidden(
            "只能审核本部门政策的项目 / only grants of your department's rules: "
            + ", ".join(f"#{gid}" for gid in sorted(foreign))
        )
    # a decision is taken on the amount the ledger proves, never on an edited row
    check_ledger_before_payment(session, asked, ("拒绝审核", "review refused"))
    report = ReviewReport()
    for gid in dict.fromkeys(grant_ids):
        grant = session.get(Grant, gid)
        if grant is None:
            report.skipped.append((gid, "not found"))
            continue
        before = grant.status
        flagged_after = grant.status == GrantStatus.approved and any(
            f["code"] in HOLD_FLAGS for f in grant.risk_flags or []
        )
        if grant.status != GrantStatus.pending and not (decision == "reject" and flagged_after):
            report.skipped.append((gid, f"status is {grant.status}"))
            continue
        if decision == "approve":
            if any(f["code"] == "no_longer_eligible" for f in grant.risk_flags or []):
                report.skipped.append((gid, "no longer eligible"))
                continue
            if any(f["code"] in CONFIRM_FLAGS for f in grant.risk_flags or []):
                report.skipped.append((gid, "to confirm: an input's source is not accepted"))
                continue
            account = bank_account(session, grant.credit_code)
            if account is None:
                report.skipped.append((gid, "no bank account"))
                continue
            if grant.risk_flags and not ack_risk:
                report.skipped.append((gid, "risk flags not acknowledged"))
                continue
            grant.status = GrantStatus.approved
            grant.bank_name, grant.account_name = account.bank_name, account.account_name
            grant.account_no = account.account_no
        else:
            grant.status = GrantStatus.rejected
        grant.reviewed_by, grant.reviewed_at = actor, utcnow()
        grant.review_reason = reason or None
        grant.updated_at = utcnow()
        append_ledger(
            session,
            grant,
            "approved" if decision == "approve" else "rejected",
            actor=actor,
            status_from=before,
            detail={
                "reason": reason,
                "flags": [f["code"] for f in grant.risk_flags or []],
                # the account the payment file must use; verified before every batch
                **({"account_no": grant.account_no} if decision == "approve" else {}),
            },
        )
        report.done.append(gid)
    session.flush()
    return report


def acknowledge_change(
    session: Session, grant_id: int, *, actor: str, reason: str, departments: Scope = None
) -> Grant:
    """Keep an approved grant whose inputs changed: the officer confirms it with a reason."""
    grant = session.get(Grant, grant_id)
    if grant is not None and not in_scope(grant, departments):
        raise GrantForbidden("只能处理本部门政策的项目 / only grants of your department's rules")
    if grant is None or grant.status != GrantStatus.approved:
        raise GrantError("only approved grants can be confirmed")
    if not reason.strip():
        raise GrantError("确认须填写理由 / a confirmation needs a reason")
    held = [f for f in grant.risk_flags or [] if f["code"] in HOLD_FLAGS]
    if not held:
        raise GrantError("this grant has no change to confirm")
    grant.risk_flags = [
        {**f, "acknowledged_by": actor} if f["code"] in HOLD_FLAGS else f for f in grant.risk_flags
    ]
    grant.risk_flags = [f for f in grant.risk_flags if f["code"] not in HOLD_FLAGS] + [
        {**f, "code": f"{f['code']}_confirmed"} for f in held
    ]
    append_ledger(
        session,
        grant,
        "change_confirmed",
        actor=actor,
        status_from=grant.status,
        detail={"reason": reason.strip(), "flags": [f["code"] for f in held]},
    )
    return grant


# --- disbursement --------------------------------------------------------------------------


def disbursable(session: Session, *, departments: Scope = None) -> list[Grant]:
    """Approved grants not yet in a disbursement file and not held by a change after approval."""
    rows = session.scalars(
        _scoped(
            select(Grant).where(
                Grant.status == GrantStatus.approved, Grant.disbursement_id.is_(None)
            ),
            departments,
        ).order_by(Grant.id)
    ).all()
    blocking = HOLD_FLAGS | CONFIRM_FLAGS
    return [g for g in rows if not any(f["code"] in blocking for f in g.risk_flags or [])]


DISBURSEMENT_HEADERS = [
    "序号",
    "统一社会信用代码",
    "企业名称",
    "开户银行",
    "户名",
    "银行账号",
    "金额(元)",
    "金额(分)",
    "政策",
    "政策依据",
    "规则版本",
    "所属年度",
    "审核人",
    "审核时间",
    "拨付批次",
]


def yuan_text(fen: int) -> str:
    """Exact yuan with two decimals, e.g. 12345.60."""
    return f"{Decimal(fen) / FEN_PER_YUAN:.2f}"


def disbursement_rows(session: Session, disbursement_id: int) -> list[list[Any]]:
    """The rows of a disbursement file, in grant order."""
    grants = session.scalars(
        select(Grant).where(Grant.disbursement_id == disbursement_id).order_by(Grant.id)
    ).all()
    out = []
    for i, g in enumerate(grants, 1):
        reviewed = g.reviewed_at.strftime("%Y-%m-%d %H:%M") if g.reviewed_at else ""
        out.append(
            [
                i,
                g.credit_code,
                g.enterprise_name,
                g.bank_name or "",
                g.account_name or "",
                g.account_no or "",
                yuan_text(g.amount_fen),
                g.amount_fen,
                g.rule_title,
                g.legal_basis,
                g.rule_version,
                g.period,
                g.reviewed_by or "",
                reviewed,
                disbursement_id,
            ]
        )
    return out


def disbursement_csv(rows: list[list[Any]]) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheet programs read the Chinese headers), every cell safe."""
    return csv_bytes(DISBURSEMENT_HEADERS, rows)


def disbursement_xlsx(rows: list[list[Any]]) -> bytes:
    """XLSX with the same columns; account numbers and yuan amounts are text, so none is rounded."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "拨付清单"
    append_row(sheet, DISBURSEMENT_HEADERS)
    for row in rows:
        append_row(sheet, row)
    for cell in sheet["F"][1:] + sheet["B"][1:]:
        cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# Ledger events by which a person decides that a grant is to be paid.
APPROVING_EVENTS = ("approved", "change_confirmed")


def approvers(session: Session, grant_ids: Sequence[int]) -> dict[int, set[str]]:
    """Who approved (or confirmed after a change) each grant, from the ledger."""
    from huiqi.grants.models import LedgerEntry

    out: dict[int, set[str]] = {gid: set() for gid in grant_ids}
    ids = list(grant_ids)
    for start in range(0, len(ids), 5000):
        for gid, actor in session.execute(
            select(LedgerEntry.grant_id, LedgerEntry.actor).where(
                LedgerEntry.grant_id.in_(ids[start : start + 5000]),
                LedgerEntry.event.in_(APPROVING_EVENTS),
            )
        ):
            if actor:
                out[gid].add(actor)
    return out


def split_four_eyes(
    session: Session, grants: Sequence[Grant], actor: str
) -> tuple[list[Grant], list[Grant]]:
    """(grants the actor may put in a payment file, grants the actor approved: someone else's)."""
    who = approvers(session, [g.id for g in grants])
    mine = [g for g in grants if actor in who.get(g.id, set())]
    return [g for g in grants if g not in mine], mine


def check_ledger_before_payment(
    session: Session,
    grants: Sequence[Grant],
    refused: tuple[str, str] = ("拒绝生成拨付文件", "batch refused"),
) -> None:
    """Refuse (LedgerMismatch, naming each grant) when a grant differs from its ledger."""
    problems = ledger_problems(session, [g.id for g in grants])
    if not problems:
        return
    names = {g.id: g.enterprise_name for g in grants}
    lines = [f"#{p.grant_id} {names.get(p.grant_id, '')}: {p.message}" for p in problems[:20]]
    raise LedgerMismatch(
        f"台账校验未通过,{refused[0]} / the ledger does not prove these grants, {refused[1]}: "
        + "; ".join(lines)
    )


def create_disbursement(
    session: Session,
    *,
    actor: str,
    grant_ids: Sequence[int] | None = None,
    departments: Scope = None,
) -> Disbursement:
    """Put approved grants (of the departments) into a new disbursement batch and tell each
    enterprise what it gets.

    Four-eyes: grants the actor approved are left for another person (named grants refuse the
    batch). Each grant's amount, status and account are verified against its ledger first.
    """
    ready = disbursable(session, departments=departments)
    if grant_ids is not None:
        wanted = set(grant_ids)
        ready = [g for g in ready if g.id in wanted]
    if not ready:
        raise GrantError("没有可拨付的已批准项目 / no approved grants ready for disbursement")
    ready, own = split_four_eyes(session, ready, actor)
    if own and (grant_ids is not None or not ready):
        raise GrantFourEyes(
            "审核与制作拨付文件须由两人分别完成,以下项目由您审核,请由本部门另一位工作人员制作拨付文件"
            " / the approver may not build the payment file; another officer must do it for: "
            + ", ".join(f"#{g.id}" for g in own)
        )
    check_ledger_before_payment(session, ready)
    batch = Disbursement(
        created_at=utcnow(),
        created_by=actor,
        count=len(ready),
        total_fen=sum(g.amount_fen for g in ready),
        csv_sha256="",
    )
    session.add(batch)
    session.flush()
    items = []
    for grant in ready:
        grant.disbursement_id = batch.id
        grant.status = GrantStatus.disbursed
        grant.updated_at = utcnow()
        items.append(
            LedgerItem(
                grant,
                "disbursed",
                actor,
                GrantStatus.approved,
                {"disbursement_id": batch.id, "account_no": grant.account_no},
            )
        )
    append_many(session, items)
    for grant in ready:
        _tell_enterprise(session, grant)
    batch.csv_sha256 = hashlib.sha256(
        disbursement_csv(disbursement_rows(session, batch.id))
    ).hexdigest()
    session.flush()
    return batch


def batch_problems(session: Session, batch_id: int) -> list[str]:
    """Why a batch's file may not be handed out again: its grants no longer match their ledger,
    or the file rebuilt now differs from the one recorded when the batch was made."""
    batch = session.get(Disbursement, batch_id)
    if batch is None:
        return [f"batch {batch_id}: not found"]
    ids = session.scalars(select(Grant.id).where(Grant.disbursement_id == batch_id)).all()
    problems = [p.message for p in ledger_problems(session, ids)]
    digest = hashlib.sha256(disbursement_csv(disbursement_rows(session, batch_id))).hexdigest()
    if digest != batch.csv_sha256:
        problems.append(
            f"批次 {batch_id} 的拨付文件与生成时记录的 SHA-256 不符 / batch {batch_id}: the file "
            "differs from the one recorded when the batch was made"
        )
    return problems


def grant_message(grant: Grant) -> tuple[str, str]:
    """Subject and Chinese body telling an enterprise what it received and why."""
    if grant.snapshot.get("kind") == AWARD_KIND:
        return _award_message(grant)
    from huiqi.enterprise.catalogue import catalogue, display

    cat = catalogue()
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "贵企业:",
        f"根据「{grant.rule_title}」(政策依据:{grant.legal_basis}),"
        f"贵企业 {grant.period} 年度的{grant.rule_title}已审核通过并拨付,无需提交任何申请。",
        f"金额:{format_fen(grant.amount_fen)}",
        f"收款账户:{grant.bank_name or ''} {mask_account(grant.account_no)}",
        "依据的数据:",
    ]
    for name, raw in sorted(grant.snapshot.get("inputs", {}).items()):
        value = decode_value(raw)
        try:
            f = cat[name]
            lines.append(f"  · {f.zh}:{display(f, value)}")
        except KeyError:
            lines.append(f"  · {name}:{value}")
    if grant.snapshot.get("formula"):
        lines.append(f"计算方式:{grant.snapshot['formula']}")
    lines.append(f"怎么办:无需任何操作。如对金额有疑问,请联系{grant.department or '主管部门'}。")
    return f"「{grant.rule_title}」{format_fen(grant.amount_fen)} 已拨付", "\n".join(lines)


def _award_message(grant: Grant) -> tuple[str, str]:
    """What an enterprise is told when the award of its application is paid."""
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "贵企业:",
        f"贵企业申报的「{grant.rule_title}」(政策依据:{grant.legal_basis})已立项并拨付。",
        f"金额:{format_fen(grant.amount_fen)}",
        f"收款账户:{grant.bank_name or ''} {mask_account(grant.account_no)}",
    ]
    lines += [f"计算方式:{line}" for line in grant.snapshot.get("explain") or []]
    lines.append(
        f"怎么办:请按申报通知的要求按期报送绩效情况。如有疑问,请联系{grant.department or '主管部门'}。"
    )
    return f"「{grant.rule_title}」{format_fen(grant.amount_fen)} 已拨付", "\n".join(lines)


def _tell_enterprise(session: Session, grant: Grant) -> None:
    """Announce the disbursement; the notifying domain tells the enterprise."""
    subject, body = grant_message(grant)
    publish(
        session,
        GrantDecided(
            grant_id=grant.id,
            credit_code=grant.credit_code,
            status="disbursed",
            rule_id=grant.rule_id,
            rule_version=grant.rule_version,
            subject=subject,
            body=body,
            link=f"/grants/mine#grant-{grant.id}",
        ),
    )


def on_results_changed(session: Session, event: ResultsChanged) -> None:
    """Matching stored new or changed results: create or flag the grants of auto_grant rules."""
    if any(change.mode == "auto_grant" for change in event.changes):
        grants_from_results(session, event.changes, today=event.on, actor=event.actor)


# --- queries -------------------------------------------------------------------------------


def grants(
    session: Session,
    *,
    status: str | None = None,
    credit_code: str | None = None,
    rule_id: str | None = None,
    limit: int = 500,
    departments: Scope = None,
) -> Sequence[Grant]:
    """Grants, newest first, filtered (by the rule's department too when given)."""
    q = _scoped(select(Grant), departments)
    if status:
        q = q.where(Grant.status == status)
    if credit_code:
        q = q.where(Grant.credit_code == credit_code)
    if rule_id:
        q = q.where(Grant.rule_id == rule_id)
    return session.scalars(q.order_by(Grant.id.desc()).limit(limit)).all()


@dataclass(frozen=True)
class NoticeRow:
    """One line of the public notice (公示): only name, policy, amount and date."""

    enterprise_name: str
    rule_title: str
    amount_fen: int
    period: int
    approved_on: date | None


def public_notice(session: Session, *, days: int | None = None) -> list[NoticeRow]:
    """Approved and disbursed grants for the public notice list."""
    q = select(Grant).where(Grant.status.in_([GrantStatus.approved, GrantStatus.disbursed]))
    if days is not None:
        q = q.where(Grant.reviewed_at >= utcnow() - timedelta(days=days))
    out = []
    for g in session.scalars(q.order_by(Grant.reviewed_at.desc(), Grant.id.desc())):
        approved = g.reviewed_at.date() if isinstance(g.reviewed_at, datetime) else None
        out.append(NoticeRow(g.enterprise_name, g.rule_title, g.amount_fen, g.period, approved))
    return out


def totals_by_status(session: Session, *, departments: Scope = None) -> dict[str, tuple[int, int]]:
    """Grant count and amount per status."""
    q = _scoped(select(Grant.status, func.count(), func.sum(Grant.amount_fen)), departments)
    return {
        st: (int(n), int(total or 0)) for st, n, total in session.execute(q.group_by(Grant.status))
    }


def batches(session: Session, *, departments: Scope = None) -> Sequence[Disbursement]:
    """Disbursement batches, newest first; with departments, those holding their grants."""
    q = select(Disbursement)
    if departments is not None:
        q = q.where(
            Disbursement.id.in_(
                _scoped(select(Grant.disbursement_id), departments).where(
                    Grant.disbursement_id.is_not(None)
                )
            )
        )
    return session.scalars(q.order_by(Disbursement.id.desc())).all()


def batch_in_scope(session: Session, batch_id: int, departments: Scope) -> bool:
    """Whether every grant of a batch belongs to the departments (None: any)."""
    if departments is None:
        return True
    written = session.scalars(
        select(Grant.department).where(Grant.disbursement_id == batch_id).distinct()
    ).all()
    return all(d in departments for d in written)


# --- awards of calls for applications (快申快享) --------------------------------------------

AWARD_KIND = "award"


def grant_for_award(
    session: Session,
    *,
    ref: str,
    credit_code: str,
    enterprise_name: str,
    title: str,
    legal_basis: str,
    department: str,
    period: int,
    amount_fen: int,
    detail: dict[str, Any],
    actor: str,
) -> Grant:
    """Enter an award decided on an application into the grant ledger (idempotent per ref,
    enterprise and period): a grant approved by the awarding officer when the enterprise has a
    receiving account (else pending with that flag), paid through the same disbursement files
    with the same four-eyes control. `ref` names the call (e.g. ``funds-call-7``)."""
    if amount_fen <= 0:
        raise GrantError("立项金额须大于 0 / an award must be above 0")
    existing = session.scalar(
        select(Grant).where(
            Grant.rule_id == ref, Grant.credit_code == credit_code, Grant.period == period
        )
    )
    if existing is not None:
        return existing
    snapshot = {"kind": AWARD_KIND, "on": clock.today().isoformat(), "inputs": {}, **detail}
    grant = Grant(
        credit_code=credit_code,
        enterprise_name=enterprise_name,
        rule_id=ref,
        rule_version=1,
        rule_hash=hashlib.sha256(ref.encode()).hexdigest()[:16],
        rule_title=title[:300],
        legal_basis=legal_basis[:200],
        department=department,
        period=period,
        amount_fen=amount_fen,
        snapshot=snapshot,
        input_hash=inputs_hash({}),
        status=GrantStatus.pending,
    )
    session.add(grant)
    session.flush()
    _set_flags(grant, assess_risk(session, grant, clock.today()))
    append_ledger(
        session, grant, "awarded", actor=actor, status_from=None, detail={"ref": ref, **detail}
    )
    # the award was decided in review and 公示: the awarding officer's approval is the decision
    review(
        session,
        [grant.id],
        "approve",
        actor=actor,
        reason="立项批准 / award approved",
        ack_risk=True,
    )
    return grant


def clawbacks_fen(session: Session, grant_id: int) -> int:
    """Money already recovered from a grant, from its ledger."""
    from huiqi.grants.models import LedgerEntry

    details = session.scalars(
        select(LedgerEntry.detail).where(
            LedgerEntry.grant_id == grant_id, LedgerEntry.event == "clawback"
        )
    )
    return sum(int((d or {}).get("clawback_fen", 0)) for d in details)


def record_clawback(
    session: Session, grant_id: int, amount_fen: int, *, reason: str, actor: str
) -> Any:
    """Record money recovered from a paid or approved grant as a ledger entry (never more than
    was granted, all clawbacks together); returns the entry."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise GrantError(f"grant {grant_id}: not found")
    if grant.status not in (GrantStatus.approved, GrantStatus.disbursed):
        raise GrantError("只有已批准或已拨付的项目可以追回资金 / only approved or paid grants")
    reason = reason.strip()
    if not reason:
        raise GrantError("追回资金须填写理由 / a clawback needs a reason")
    already = clawbacks_fen(session, grant_id)
    if amount_fen <= 0 or already + amount_fen > grant.amount_fen:
        raise GrantError(
            f"追回金额须大于 0 且累计不超过支持金额 {format_fen(grant.amount_fen)}"
            f"(已追回 {format_fen(already)}) / a clawback must be above 0 and, with earlier "
            "ones, at most the amount granted"
        )
    return append_ledger(
        session,
        grant,
        "clawback",
        actor=actor,
        status_from=grant.status,
        detail={"clawback_fen": amount_fen, "reason": reason[:1000]},
    )


def enterprise_risk_flags(session: Session, credit_code: str) -> list[dict[str, Any]]:
    """The grant module's risk signals about one enterprise, for reviewers of other benefits:
    no or a shared receiving account, grants rejected before, and decided grants held because
    their data changed or the enterprise is no longer eligible."""
    flags: list[dict[str, Any]] = []
    account = bank_account(session, credit_code)
    if account is None:
        flags.append(_flag("no_bank_account", "企业尚未登记收款账户", "no bank account on file"))
    else:
        others = session.scalars(
            select(BankAccount.credit_code).where(
                BankAccount.account_no == account.account_no,
                BankAccount.credit_code != credit_code,
            )
        ).all()
        if others:
            flags.append(
                _flag(
                    "shared_account",
                    f"收款账户与其他 {len(others)} 家企业相同",
                    f"bank account shared with {len(others)} other enterprise(s)",
                    others=sorted(others),
                )
            )
    own = session.scalars(select(Grant).where(Grant.credit_code == credit_code)).all()
    rejected = [g for g in own if g.status == GrantStatus.rejected]
    if rejected:
        flags.append(
            _flag(
                "grant_rejected",
                f"曾有 {len(rejected)} 个免申即享项目被驳回",
                f"{len(rejected)} grant(s) rejected before",
                grants=[g.id for g in rejected],
            )
        )
    held = [g for g in own if any(f["code"] in HOLD_FLAGS for f in g.risk_flags or [])]
    if held:
        flags.append(
            _flag(
                "grant_held",
                f"{len(held)} 个已批准项目因数据变化或不再符合条件待核实",
                f"{len(held)} decided grant(s) held: data changed or no longer eligible",
                grants=[g.id for g in held],
            )
        )
    return flags
