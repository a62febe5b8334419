"""Risk flags for officer review (stale data, large amount, shared account, jumping
figures) and the provenance of the values a grant relies on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from huiqi.core.bulk import rows_of_codes
from huiqi.core.money import format_fen
from huiqi.enterprise import repository as ent_repo
from huiqi.grants.models import BankAccount, Grant

RISK_FILE = Path(__file__).parent / "data" / "risk.yaml"
SIZE_INPUTS = ("industry_code", "employees", "revenue", "total_assets")
HOLD_FLAGS = {"inputs_changed", "no_longer_eligible"}


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


# --- provenance and risk -------------------------------------------------------------------


@dataclass(frozen=True)
class RiskFacts:
    """What provenance and risk checks read about some enterprises, read once for all of them."""

    values: dict[str, list[tuple[str, int, str, date]]]  # code → (field, year, value, as_of)
    accounts: dict[str, str]  # code → receiving account number
    holders: dict[str, set[str]]  # account number → codes registered with it


def risk_facts(session: Session, credit_codes: Sequence[str]) -> RiskFacts:
    """Current registry values and receiving accounts of these enterprises, in a few queries."""
    codes = sorted(set(credit_codes))
    values: dict[str, list[tuple[str, int, str, date]]] = {c: [] for c in codes}
    for code, fname, year, value, as_of, _source in ent_repo.live_values(session, codes):
        values[code].append((fname, year, value, as_of))
    # both read one index probe per code or number (bulk.rows_of_codes): a batch's enterprises
    # are a sliver of every account on record
    t: Table = BankAccount.__table__  # type: ignore[assignment]
    accounts: dict[str, str] = {}
    own = rows_of_codes(session, t, [t.c.id, t.c.credit_code, t.c.account_no], codes).subquery()
    for code, number in session.execute(
        select(own.c.credit_code, own.c.account_no).order_by(own.c.id.desc())
    ):
        accounts[code] = number
    holders: dict[str, set[str]] = {}
    numbers = sorted(set(accounts.values()))
    for number, code in (
        session.execute(
            rows_of_codes(session, t, [t.c.account_no, t.c.credit_code], numbers, key="account_no")
        )
        if numbers
        else ()
    ):
        holders.setdefault(number, set()).add(code)
    return RiskFacts(values, accounts, holders)


def used_fields(columns: Iterable[str]) -> set[str]:
    """Stored registry fields behind the columns a rule reads (size class reads its inputs)."""
    used = set(columns)
    if used & {"size_class", "above_scale"}:
        used |= set(SIZE_INPUTS)
    return used - {"size_class", "above_scale", "figures_year", "credit_code"}


def provenance(
    session: Session,
    credit_code: str,
    columns: Iterable[str],
    figures_year: int | None,
    facts: RiskFacts | None = None,
) -> dict[str, str]:
    """As-of date of each stored value the grant relies on (`facts`: read beforehand)."""
    facts = facts or risk_facts(session, [credit_code])
    out: dict[str, str] = {}
    used = used_fields(columns)
    for fname, year, _value, as_of in facts.values.get(credit_code, []):
        if fname in used and year in (0, figures_year or -1):
            out[fname] = as_of.isoformat()
    return out


def flag(code: str, zh: str, en: str, **detail: Any) -> dict[str, Any]:
    """A risk flag: its code, Chinese and English text, and any detail."""
    return {"code": code, "zh": zh, "en": en, **detail}


def assess_risk(
    session: Session, grant: Grant, today: date, facts: RiskFacts | None = None
) -> list[dict[str, Any]]:
    """Risk flags for officer review: stale data, large amount, shared account, jumping figures.

    `facts` are the enterprises' values and accounts read beforehand for a batch of grants."""
    facts = facts or risk_facts(session, [grant.credit_code])
    cfg = risk_settings()
    flags: list[dict[str, Any]] = []
    as_of = grant.snapshot.get("as_of") or {}
    if as_of:
        oldest = min(date.fromisoformat(d) for d in as_of.values())
        if (today - oldest).days > cfg.stale_days:
            flags.append(
                flag(
                    "stale_data",
                    f"数据过旧:最早的数据截至 {oldest},超过 {cfg.stale_days} 天",
                    f"stale data: oldest value as of {oldest}, over {cfg.stale_days} days",
                )
            )
    if grant.amount_fen > cfg.amount_threshold_fen:
        flags.append(
            flag(
                "high_amount",
                f"金额 {format_fen(grant.amount_fen)} 超过复核阈值 {format_fen(cfg.amount_threshold_fen)}",
                f"amount above the review threshold {format_fen(cfg.amount_threshold_fen)}",
            )
        )
    account = facts.accounts.get(grant.credit_code)
    if account is None:
        flags.append(flag("no_bank_account", "企业尚未登记收款账户", "no bank account on file"))
    else:
        others = sorted(facts.holders.get(account, set()) - {grant.credit_code})
        if others:
            flags.append(
                flag(
                    "shared_account",
                    f"收款账户与其他 {len(others)} 家企业相同",
                    f"bank account shared with {len(others)} other enterprise(s)",
                    others=others,
                )
            )
    flags += _yoy_flags(facts, grant, cfg.yoy_factor)
    # computed with the amount from the inputs' sources (huiqi.grants.sources)
    flags += list(grant.snapshot.get("source_flags") or [])
    return flags


def _yoy_flags(facts: RiskFacts, grant: Grant, factor: int) -> list[dict[str, Any]]:
    """Yearly figures the grant relies on that grew or shrank by `factor` or more in a year."""
    from huiqi.enterprise.catalogue import catalogue

    year = grant.period
    cat = catalogue()
    yearly = {f.name for f in cat.of_kind("yearly")}
    used = used_fields(grant.snapshot.get("inputs", {})) & yearly
    values: dict[tuple[str, int], int] = {}
    for fname, y, value, _as_of in facts.values.get(grant.credit_code, []):
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
                flag(
                    "yoy_jump",
                    f"{label} {year - 1}→{year} 变化超过 {factor} 倍({before}→{now})",
                    f"{fname} changed {factor}× or more from {year - 1} to {year}",
                    field=fname,
                )
            )
    return flags


def set_flags(grant: Grant, flags: list[dict[str, Any]]) -> None:
    """Replace the computed flags, keeping the hold flags raised after approval."""
    held = [f for f in (grant.risk_flags or []) if f["code"] in HOLD_FLAGS]
    grant.risk_flags = held + [f for f in flags if f["code"] not in HOLD_FLAGS]
