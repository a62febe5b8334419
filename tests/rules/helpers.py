"""Shared helpers for the rules tests: build frames and SQL tables from rows of the field contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine, MetaData, create_engine, insert

from huiqi.rules.catalogue import default_catalogue
from huiqi.rules.sql import enterprise_table

POLARS_TYPES = {"money": pl.Int64, "int": pl.Int64, "date": pl.Date, "bool": pl.Boolean}


def frame(rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """A polars frame with every catalogue column typed per the contract."""
    cat = default_catalogue()
    data = {
        name: pl.Series(name, [r.get(name) for r in rows], dtype=POLARS_TYPES.get(f.kind, pl.Utf8))
        for name, f in cat.fields.items()
    }
    return pl.DataFrame(data)


def sql_table(rows: Sequence[dict[str, Any]], url: str = "sqlite://") -> tuple[Engine, Any]:
    """A database holding enterprise_current with the rows (ids 1…n in row order)."""
    engine = create_engine(url)
    md = MetaData()
    table = enterprise_table(md)
    md.drop_all(engine)
    md.create_all(engine)
    cat = default_catalogue()
    with engine.begin() as conn:
        payload = []
        for i, r in enumerate(rows):
            rec = {name: r.get(name) for name in cat.fields}
            rec["id"] = i + 1
            rec["credit_code"] = r.get("credit_code") or f"TEST{i:014d}"
            payload.append(rec)
        if payload:
            conn.execute(insert(table), payload)
    return engine, table


D = date
