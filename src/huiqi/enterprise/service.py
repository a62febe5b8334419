"""Registry services: apply values with provenance and history, keep enterprise_current in step,
rebuild the current frame as of a date, and tell listeners which enterprises changed.

Services take the session first and never commit; the caller's unit of work does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.core.errors import Invalid
from huiqi.enterprise import repository as repo
from huiqi.enterprise.catalogue import Field, ValueProblem, catalogue, decode, display, encode
from huiqi.enterprise.incoming import Incoming
from huiqi.enterprise.models import Enterprise, GraduateHire
from huiqi.enterprise.sizing import classify_frame, classify_rows

SELF_REPORTED = "self-reported"
# certification kinds of the field contract (cert_<kind>_from / cert_<kind>_to)
CERT_KINDS: dict[str, tuple[str, str]] = {
    "high_tech": ("高新技术企业", "High-tech enterprise"),
    "tech_sme": ("科技型中小企业", "Tech-based SME"),
    "innovative_sme": ("创新型中小企业", "Innovative SME"),
    "srdi_sme": ("专精特新中小企业", "Specialised (SRDI) SME"),
    "little_giant": ("专精特新“小巨人”", "SRDI little giant"),
}
COMPUTED = "computed"

_POLARS = {
    "str": pl.Utf8,
    "enum": pl.Utf8,
    "int": pl.Int64,
    "money": pl.Int64,
    "date": pl.Date,
    "bool": pl.Boolean,
}


class RegistryError(Invalid):
    """A change could not be applied (unknown field, value of the wrong kind, not allowed)."""


def enterprise_changed(
    session: Session, codes: set[str], created_values: pl.DataFrame | None = None
) -> None:
    """Publish EnterpriseChanged for these credit codes (handlers: see huiqi.wiring);
    `created_values`: all the values of the enterprises created, see EnterpriseChanged."""
    events.enterprise_changed(session, codes, created_values)


def upsert(
    session: Session,
    items: list[Incoming],
    *,
    recorded_by: str | None = None,
    notify: bool = True,
) -> dict[str, str]:
    """Apply values for many enterprises; returns credit code → inserted / updated / unchanged.

    A value equal to the current one from the same source is left alone, so applying the same data
    twice changes nothing. A different value or source supersedes the current row. The batch is
    handled as a whole: one read of the current values, one bulk insert of new value rows, one
    update of superseded rows, one upsert of the changed enterprise_current rows and one change
    notification.
    """
    now = utcnow()
    codes = list(dict.fromkeys(i.credit_code for i in items))
    ids = repo.ids_for_codes(session, codes)
    new_codes = [c for c in codes if c not in ids]
    ids.update(repo.create_enterprises(session, new_codes, now))
    new_set = set(new_codes)
    # current state of every enterprise in the batch: (field, year) → (value id, text, source)
    # (a packed value has no row id: None)
    state: dict[int, dict[tuple[str, int], tuple[int | None, str, str]]] = defaultdict(dict)
    existing_ids = [ids[c] for c in codes if c not in new_set]
    packed: set[int] = set()
    for vid, eid, fname, year, value, source in repo.current_values(session, existing_ids):
        state[eid][(fname, year)] = (vid, value, source)
        if vid is None:
            packed.add(eid)
    retire: dict[int, set[tuple[str, int]]] = defaultdict(set)
    stale: list[int] = []
    fresh: list[tuple[Any, ...]] = []
    outcome: dict[str, str] = {}
    changed_ids: dict[int, str] = {}
    for item in items:
        code = item.credit_code
        eid = ids[code]
        mine = state[eid]
        changed = False
        for key, (value, source, as_of) in item.values.items():
            text = encode(value)
            old = mine.get(key)
            if old is not None:
                # same value from the same source: keep the row (and its first as-of date), so
                # a re-import on a later day changes nothing
                if old[1] == text and old[2] == source:
                    continue
                if old[0] is None:
                    retire[eid].add(key)
                elif old[0] >= 0:
                    stale.append(old[0])
            fresh.append((eid, key[0], key[1], text, source, as_of, now, None, recorded_by))
            mine[key] = (-1, text, source)
            changed = True
        if code in new_set:
            outcome[code] = "inserted"
        elif changed:
            outcome[code] = "updated"
        else:
            outcome.setdefault(code, "unchanged")
        if changed or code in new_set:
            changed_ids[eid] = code
    # a changed enterprise's pack becomes value rows first: an enterprise has one form or the other
    repo.unpack(session, [e for e in changed_ids if e in packed], now, retire)
    # close old periods before adding new rows: one current row per (enterprise, field, year)
    repo.supersede(session, stale, now)
    repo.add_values(session, fresh)
    if changed_ids:
        repo.touch_enterprises(
            session, [e for e, c in changed_ids.items() if c not in new_set], now
        )
        repo.upsert_current(
            session,
            _contract_rows(
                [(e, c, {k: v[1] for k, v in state[e].items()}) for e, c in changed_ids.items()],
                clock.today(),
            ),
        )
    if notify:
        enterprise_changed(session, {c for c, o in outcome.items() if o in ("inserted", "updated")})
    return outcome


def _check_field(name: str, year: int | None) -> Field:
    cat = catalogue()
    if name not in cat.fields or cat[name].kind not in ("profile", "yearly"):
        raise RegistryError(f"未知或不可写的字段 {name!r} / unknown or derived field")
    f = cat[name]
    if f.kind == "yearly" and not year:
        raise RegistryError(f"{f.zh} 为年度数据，需要年度 / {name} needs a figures year")
    return f


def apply_changes(
    session: Session,
    credit_code: str,
    changes: dict[str, Any],
    *,
    source: str,
    as_of: date,
    year: int | None = None,
    recorded_by: str | None = None,
) -> set[str]:
    """Apply field values to one enterprise; returns the set of credit codes that changed.

    Matching re-evaluates only the returned codes (also announced through enterprise_changed).
    """
    if source not in catalogue().sources:
        raise RegistryError(f"未知数据来源 {source!r} / unknown source")
    item = Incoming(credit_code)
    for name, value in changes.items():
        f = _check_field(name, year)
        if value is None:
            continue
        item.values[(name, (year or 0) if f.kind == "yearly" else 0)] = (value, source, as_of)
    outcome = upsert(session, [item], recorded_by=recorded_by)
    return {c for c, o in outcome.items() if o != "unchanged"}


def self_report(
    session: Session,
    credit_code: str,
    changes: dict[str, str],
    *,
    year: int | None,
    recorded_by: str,
    today: date | None = None,
) -> set[str]:
    """An enterprise corrects its self-reportable fields (raw form text); values are validated."""
    cat = catalogue()
    parsed: dict[str, Any] = {}
    for name, raw in changes.items():
        f = _check_field(name, year)
        if not f.self_report:
            raise RegistryError(f"{f.zh} 不可由企业自行填报 / {name} is not self-reportable")
        text = (raw or "").strip()
        if not text:
            continue
        try:
            value = f.parse(text)
        except ValueProblem as exc:
            raise RegistryError(f"{f.zh}：{exc}") from None
        if f.type in ("int", "money") and value < 0:
            raise RegistryError(f"{f.zh} 不能为负数 / {name} must not be negative")
        parsed[name] = value
    by_kind: dict[bool, dict[str, Any]] = defaultdict(dict)
    for name, value in parsed.items():
        by_kind[cat[name].kind == "yearly"][name] = value
    changed: set[str] = set()
    for is_yearly, values in by_kind.items():
        changed |= apply_changes(
            session,
            credit_code,
            values,
            source=SELF_REPORTED,
            as_of=today or clock.today(),
            year=year if is_yearly else None,
            recorded_by=recorded_by,
        )
    return changed


_DECODERS: dict[str, Callable[[str], Any]] = {
    "int": int,
    "money": int,
    "date": date.fromisoformat,
    "bool": lambda text: text == "1",
}


@cache
def _contract_plan() -> tuple[
    tuple[tuple[str, Callable[[str], Any] | None], ...],
    tuple[tuple[str, Callable[[str], Any] | None], ...],
    frozenset[str],
]:
    """(profile fields, yearly fields) of the contract with their decoders, and the yearly names."""
    cat = catalogue()
    profile = tuple((f.name, _DECODERS.get(f.type)) for f in cat.contract if f.kind == "profile")
    yearly = tuple((f.name, _DECODERS.get(f.type)) for f in cat.contract if f.kind == "yearly")
    return profile, yearly, frozenset(f.name for f in cat.of_kind("yearly"))


SIZE_FIGURES = frozenset({"employees", "revenue", "total_assets"})


def _contract_rows(
    items: list[tuple[int, str, dict[tuple[str, int], str]]], on: date
) -> list[tuple[Any, ...]]:
    """enterprise_current rows (in repo.CURRENT_COLUMNS order) of many enterprises' current values.

    The figures year is the latest year with any of the size-class figures (employees, revenue,
    total assets), so a later year's stray value such as a graduate count does not hide the
    last complete accounts; only without those figures is it the latest year with any yearly
    value. Size class and 规模以上 status are classified for the whole batch at once under the
    standard in force on ``on``.
    """
    profile, yearly, yearly_names = _contract_plan()
    dicts: list[dict[str, Any]] = []
    for eid, code, vals in items:
        row: dict[str, Any] = {"id": eid, "credit_code": code}
        years = [y for (name, y) in vals if y and name in yearly_names]
        core_years = [y for (name, y) in vals if y and name in SIZE_FIGURES]
        figures_year = max(core_years or years) if years else None
        for name, dec in profile:
            text = vals.get((name, 0))
            row[name] = text if text is None or dec is None else dec(text)
        for name, dec in yearly:
            text = vals.get((name, figures_year)) if figures_year else None
            row[name] = text if text is None or dec is None else dec(text)
        row["figures_year"] = figures_year
        prior = vals.get(("revenue", figures_year - 1)) if figures_year else None
        row["revenue_prior_year"] = int(prior) if prior is not None else None
        row["individual_business"] = code.startswith("92")
        dicts.append(row)
    sizes = classify_rows(
        [(r["industry_code"], r["employees"], r["revenue"], r["total_assets"]) for r in dicts], on
    )
    out = []
    for row, (size, scale) in zip(dicts, sizes, strict=True):
        row["size_class"], row["above_scale"] = size, scale
        out.append(tuple(row[c] for c in repo.CURRENT_COLUMNS))
    return out


def refresh_current(session: Session, ids: list[int], on: date | None = None) -> None:
    """Recompute the enterprise_current rows of these enterprises from their current values."""
    day = on or clock.today()
    codes: dict[int, str] = {}
    for part in range(0, len(ids), repo.CHUNK):
        chunk = ids[part : part + repo.CHUNK]
        stmt = select(Enterprise.id, Enterprise.credit_code).where(Enterprise.id.in_(chunk))
        codes.update({eid: code for eid, code in session.execute(stmt)})
    per: dict[int, dict[tuple[str, int], str]] = defaultdict(dict)
    for _vid, eid, fname, year, value, _source in repo.current_values(session, ids):
        per[eid][(fname, year)] = value
    repo.upsert_current(session, _contract_rows([(eid, codes[eid], per[eid]) for eid in ids], day))


def contract_schema() -> dict[str, Any]:
    """Polars dtypes of the current frame, in contract order."""
    return {f.name: _POLARS[f.type] for f in catalogue().contract}


def current_frame(
    session: Session, as_of: date | None = None, credit_codes: Iterable[str] | None = None
) -> pl.DataFrame:
    """The field-contract frame: current values, or as they were recorded by the end of ``as_of``.

    Rebuilding as of a date uses the value history (what the registry knew then) and classifies
    sizes under the standard in force on that date. ``credit_codes`` limits the frame to those
    enterprises (read with an indexed lookup rather than the whole registry).
    """
    schema = contract_schema()
    names = list(schema)
    wanted = None if credit_codes is None else set(credit_codes)
    if as_of is None:
        listed = None if wanted is None else sorted(wanted)
        rows = [dict(r._mapping) for r in repo.all_current(session, listed)]
    else:
        moment = clock.day_end(as_of)
        per: dict[int, dict[tuple[str, int], str]] = defaultdict(dict)
        codes: dict[int, str] = {}
        for eid, code, fname, year, value in repo.values_at(session, moment):
            if wanted is None or code in wanted:
                per[eid][(fname, year)] = value
                codes[eid] = code
        columns = repo.CURRENT_COLUMNS
        rows = [
            dict(zip(columns, r, strict=True))
            for r in _contract_rows([(eid, codes[eid], per[eid]) for eid in sorted(per)], as_of)
        ]
    data = {name: [r[name] for r in rows] for name in names}
    return pl.DataFrame(data, schema=schema).sort("credit_code")


@dataclass
class ValueView:
    """One current value as an enterprise or officer sees it."""

    field: Field
    year: int
    value: Any
    shown: str
    source: str
    as_of: date
    recorded_at: datetime


def profile_values(session: Session, credit_code: str) -> tuple[list[ValueView], list[ValueView]]:
    """(current values, superseded history) of one enterprise, each with source and dates."""
    ent = repo.get_by_code(session, credit_code)
    if ent is None:
        return [], []
    cat = catalogue()
    current: list[ValueView] = []
    history: list[ValueView] = []
    order = {name: i for i, name in enumerate(cat.fields)}
    for row in repo.value_history(session, ent.id):
        f = cat.fields.get(row.field)
        if f is None:
            continue
        value = decode(f, row.value)
        view = ValueView(
            f, row.year, value, display(f, value), row.source, row.as_of, row.recorded_at
        )
        (current if row.superseded_at is None else history).append(view)
    current.sort(key=lambda v: (-v.year, order[v.field.name]))
    return current, history


def qualifies_as_graduate_hire(
    graduated_on: date, hired_on: date, contract_months: int, insured: bool
) -> bool:
    """Seed art. (二十二): hired within 2 years of leaving school, contract ≥ 1 year, insurance paid."""
    try:
        limit = graduated_on.replace(year=graduated_on.year + 2)
    except ValueError:  # 29 February
        limit = graduated_on.replace(year=graduated_on.year + 2, day=28)
    return graduated_on <= hired_on <= limit and contract_months >= 12 and insured


def add_graduate_hires(
    session: Session,
    credit_code: str,
    hires: Iterable[dict[str, Any]],
    *,
    source: str,
    as_of: date,
) -> set[str]:
    """Record graduate hires and recompute the qualifying count of each affected year."""
    ent = repo.get_by_code(session, credit_code)
    if ent is None:
        raise RegistryError(f"未登记的企业 {credit_code} / unknown enterprise")
    years: set[int] = set()
    for hire in hires:
        session.add(GraduateHire(enterprise_id=ent.id, source=source, as_of=as_of, **hire))
        years.add(hire["hired_on"].year)
    session.flush()
    changed: set[str] = set()
    for year in sorted(years):
        count = sum(
            1
            for h in repo.graduate_hires(session, ent.id)
            if h.hired_on.year == year
            and qualifies_as_graduate_hire(
                h.graduated_on, h.hired_on, h.contract_months, h.social_insurance
            )
        )
        changed |= apply_changes(
            session, credit_code, {"graduate_hires": count}, source=COMPUTED, as_of=as_of, year=year
        )
    return changed


def contract_frame(enterprises: pl.DataFrame, state: pl.DataFrame, on: date) -> pl.DataFrame:
    """enterprise_current rows (CURRENT_COLUMNS) from current values in long form, set-based.

    ``enterprises`` has eid and code; ``state`` one row per current value of them: eid, field,
    year, value (encoded text). The
    answers are those of ``_contract_rows``: the figures year, the profile and that year's
    figures, the year before's revenue, and the size class under the standard in force on ``on``.
    """
    cat = catalogue()
    yearly_names = [f.name for f in cat.of_kind("yearly")]
    profile = [f for f in cat.contract if f.kind == "profile"]
    yearly = [f for f in cat.contract if f.kind == "yearly"]
    years = (
        state.filter((pl.col("year") > 0) & pl.col("field").is_in(yearly_names))
        .group_by("eid")
        .agg(
            pl.col("year").max().alias("any_year"),
            pl.col("year").filter(pl.col("field").is_in(list(SIZE_FIGURES))).max().alias("core"),
        )
        .select("eid", pl.coalesce("core", "any_year").alias("figures_year"))
    )
    base = enterprises.join(years, on="eid", how="left")
    with_year = state.join(years, on="eid", how="left")
    parts = [
        state.filter((pl.col("year") == 0) & pl.col("field").is_in([f.name for f in profile])),
        with_year.filter(
            (pl.col("year") == pl.col("figures_year"))
            & pl.col("field").is_in([f.name for f in yearly])
        ).drop("figures_year"),
    ]
    prior = with_year.filter(
        (pl.col("field") == "revenue") & (pl.col("year") == pl.col("figures_year") - 1)
    ).select("eid", pl.col("value").cast(pl.Int64).alias("revenue_prior_year"))
    wide = base
    picked = pl.concat(parts).select("eid", "field", "value")
    if picked.height:
        wide = wide.join(
            picked.pivot(on="field", index="eid", values="value"), on="eid", how="left"
        )
    wide = wide.join(prior, on="eid", how="left")
    columns = []
    for f in profile + yearly:
        col = pl.col(f.name) if f.name in wide.columns else pl.lit(None, pl.Utf8)
        if f.type in ("int", "money"):
            col = col.cast(pl.Int64)
        elif f.type == "date":
            col = col.str.to_date("%Y-%m-%d")
        elif f.type == "bool":
            col = col == "1"
        columns.append(col.alias(f.name))
    wide = wide.select(
        pl.col("eid").alias("id"),
        pl.col("code").alias("credit_code"),
        "figures_year",
        "revenue_prior_year",
        pl.col("code").str.starts_with("92").alias("individual_business"),
        *columns,
    )
    wide = wide.with_columns(
        classify_frame(wide.select("industry_code", "employees", "revenue", "total_assets"), on)
    )
    return wide.select(repo.CURRENT_COLUMNS)
