"""Staging and upserting a batch set-based: the same outcome as ``service.upsert``, as joins.

The batch's values (long form) are joined with the current values of its enterprises: a value
equal to the current one from the same source is left alone (so a re-import changes nothing); any
other supersedes the current row. New value rows, superseded rows and the changed enterprises'
``enterprise_current`` rows are each written in one statement (COPY on PostgreSQL), and one
``EnterpriseChanged`` names the enterprises inserted or updated.
"""

from __future__ import annotations

from datetime import UTC

import polars as pl
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.enterprise import repository as repo
from huiqi.enterprise.service import contract_frame, enterprise_changed

_CURRENT_SCHEMA = {
    "vid": pl.Int64,
    "eid": pl.Int64,
    "field": pl.Utf8,
    "year": pl.Int64,
    "old_value": pl.Utf8,
    "old_source": pl.Utf8,
}


def stage(
    session: Session,
    codes: list[str],
    values: pl.DataFrame,
    *,
    recorded_by: str | None,
    notify: bool = True,
) -> dict[str, str]:
    """Apply a batch (credit codes in file order, their values in long form); code → outcome."""
    now = utcnow()
    ids = repo.ids_for_codes(session, codes)
    new_codes = [c for c in codes if c not in ids]
    ids.update(repo.create_enterprises(session, new_codes, now))
    new_set = set(new_codes)
    enterprises = pl.DataFrame(
        {"eid": [ids[c] for c in codes], "code": codes}, schema={"eid": pl.Int64, "code": pl.Utf8}
    )
    existing = [ids[c] for c in codes if c not in new_set]
    current = pl.DataFrame(
        repo.current_values(session, existing), schema=_CURRENT_SCHEMA, orient="row"
    )
    incoming = values.join(enterprises, on="code").join(
        current, on=["eid", "field", "year"], how="left"
    )
    fresh = incoming.filter(
        pl.col("old_value").is_null()
        | (pl.col("value") != pl.col("old_value"))
        | (pl.col("source") != pl.col("old_source"))
    )
    stale = fresh["vid"].drop_nulls().to_list()
    changed = set(fresh["code"].unique().to_list())
    outcome = {
        c: "inserted" if c in new_set else "updated" if c in changed else "unchanged" for c in codes
    }
    # close old periods before adding new rows: one current row per (enterprise, field, year)
    repo.supersede(session, stale, now)
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    repo.add_value_frame(
        session,
        fresh.select(
            pl.col("eid").alias("enterprise_id"),
            "field",
            "year",
            "value",
            "source",
            "as_of",
            pl.lit(moment).alias("recorded_at"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("superseded_at"),
            pl.lit(recorded_by, pl.Utf8).alias("recorded_by"),
        ),
    )
    touched = enterprises.filter(pl.col("code").is_in(list(changed | new_set)))
    if touched.height:
        repo.touch_enterprises(session, [ids[c] for c in changed if c not in new_set], now)
        kept = current.filter(
            pl.col("eid").is_in(touched["eid"].implode())
            & ~pl.col("vid").is_in(pl.Series(stale, dtype=pl.Int64).implode())
        ).select("eid", "field", "year", pl.col("old_value").alias("value"))
        state = pl.concat([kept, fresh.select("eid", "field", "year", "value")])
        repo.upsert_current_frame(session, contract_frame(touched, state, clock.today()))
    if notify:
        enterprise_changed(session, {c for c, o in outcome.items() if o != "unchanged"})
    return outcome
