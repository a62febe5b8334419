"""Staging and upserting a batch set-based: the same outcome as ``service.upsert``, as joins.

The batch's values (long form) are joined with the current values of its enterprises: a value
equal to the current one from the same source is left alone (so a re-import changes nothing); any
other supersedes the current one. New enterprises' values are recorded as one pack each
(``enterprise_value_pack``); a changed enterprise's pack first becomes value rows. Packs, new value
rows, superseded rows and the changed enterprises' ``enterprise_current`` rows are each written in
one statement (COPY on PostgreSQL), and one ``EnterpriseChanged`` names the enterprises inserted or
updated, with the new ones' values (so its handlers need not read back what the batch holds).
"""

from __future__ import annotations

from datetime import UTC

import polars as pl
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.enterprise import repository as repo
from huiqi.enterprise.service import contract_frame, enterprise_changed


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
    current = repo.current_value_frame(session, existing)
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
    # a changed enterprise's pack becomes value rows first (the replaced values superseded), so
    # an enterprise keeps one form or the other
    packed = set(current.filter(pl.col("vid").is_null())["eid"].to_list())
    retire: dict[int, set[tuple[str, int]]] = {}
    for eid, fname, year in (
        fresh.filter(pl.col("vid").is_null() & pl.col("old_value").is_not_null())
        .select("eid", "field", "year")
        .iter_rows()
    ):
        retire.setdefault(eid, set()).add((fname, year))
    repo.unpack(session, sorted({ids[c] for c in changed} & packed), now, retire)
    # close old periods before adding new rows: one current row per (enterprise, field, year)
    repo.supersede(session, stale, now)
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    new_ids = pl.Series([ids[c] for c in new_codes], dtype=pl.Int64).implode()
    is_new = pl.col("eid").is_in(new_ids)
    # a new enterprise's values are recorded as one pack: one row instead of one per value
    repo.add_packs(
        session,
        fresh.filter(is_new).select(
            pl.col("eid").alias("enterprise_id"), "field", "year", "value", "source", "as_of"
        ),
        recorded_at=moment,
        recorded_by=recorded_by,
    )
    repo.add_value_frame(
        session,
        fresh.filter(~is_new).select(
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
        kept = current.filter(pl.col("eid").is_in(touched["eid"].implode())).join(
            fresh.select("eid", "field", "year"), on=["eid", "field", "year"], how="anti"
        )
        state = pl.concat(
            [
                kept.select("eid", "field", "year", pl.col("old_value").alias("value")),
                fresh.select("eid", "field", "year", "value"),
            ]
        )
        rows = contract_frame(touched, state, clock.today())
        # new enterprises have no row yet: inserted plainly, without the upsert's conflict check
        repo.upsert_current_frame(session, rows.filter(pl.col("id").is_in(new_ids)), new=True)
        repo.upsert_current_frame(session, rows.filter(~pl.col("id").is_in(new_ids)))
    if notify:
        # the new enterprises' values are all in the batch: the handlers need not read them back
        created = values.filter(pl.col("code").is_in(new_codes)).select(
            "code", "field", "year", "value", "as_of", "source"
        )
        enterprise_changed(session, {c for c, o in outcome.items() if o != "unchanged"}, created)
    return outcome
