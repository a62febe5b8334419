"""Validating a batch column by column (Polars) instead of row by row.

Each column is read at once: credit codes (charset and GB 32100 check character), whole numbers
and money in their plain written forms, ISO dates and plain phone numbers, e-mail and webhook
addresses are checked and converted as vectors; every other text (other date forms, codes,
enumerations, numbers written with separators, anything a vector check does not pass) is parsed
once per distinct value by the same parser the row validator uses. The cross-field checks (revenue per
employee, validity periods, a figures year for yearly values) are vector expressions too.

A row that any check flags — and a row whose credit code repeats an earlier one — is handed to
:func:`validation.validate_row`, which says exactly what is wrong with it, so the error report is
the row validator's word for word; a row no check flags gives the values the row validator would
give. The good rows come back in long form, one row per value.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from huiqi.core.codes import CREDIT_ALPHABET, CREDIT_WEIGHTS, division_known
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise.catalogue import Field, catalogue, encode
from huiqi.enterprise.importer.report import Issue
from huiqi.enterprise.importer.validation import (
    CHECKED_TEXT,
    MAX_REVENUE_PER_EMPLOYEE,
    MAX_WAN,
    RowContext,
    field_value,
    meta,
    validate_row,
    validity_pairs,
)
from huiqi.enterprise.incoming import Incoming

LONG_SCHEMA = {
    "code": pl.Utf8,
    "field": pl.Utf8,
    "year": pl.Int64,
    "value": pl.Utf8,
    "source": pl.Utf8,
    "as_of": pl.Date,
}
"""The long form of good values: one row per (enterprise, field, year)."""

_CHECK_VALUE = {ch: i for i, ch in enumerate(CREDIT_ALPHABET)}
_UNITS = {"yuan": 100, "wan": FEN_PER_WAN}


@dataclass
class BatchResult:
    """Good rows of a batch (credit codes in file order, values in long form) and the rejected."""

    codes: list[str]
    values: pl.DataFrame
    rejected: list[list[Issue]]

    def __getstate__(self) -> dict[str, Any]:
        # a reading process sends batches pickled: Arrow IPC costs a fifth of a frame's pickle
        out = io.BytesIO()
        self.values.write_ipc(out, compression="uncompressed")
        return {"codes": self.codes, "values": out.getvalue(), "rejected": self.rejected}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.codes = state["codes"]
        self.values = pl.read_ipc(io.BytesIO(state["values"]))
        self.rejected = state["rejected"]


@cache
def _stored() -> dict[str, Field]:
    return {f.name: f for f in catalogue().stored}


def _credit_ok(text: pl.Series) -> pl.Series:
    """Whether each text is already a normalised credit code with a right check character."""
    shape = text.str.contains(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
    frame = pl.DataFrame({"t": text.set(~shape, "0" * 18)})
    total = pl.sum_horizontal(
        pl.col("t").str.slice(pos, 1).replace_strict(_CHECK_VALUE, return_dtype=pl.Int64) * weight
        for pos, weight in enumerate(CREDIT_WEIGHTS)
    )
    check = (31 - total % 31).replace(31, 0)
    expected = check.replace_strict(dict(enumerate(CREDIT_ALPHABET)), return_dtype=pl.Utf8)
    right = frame.select(pl.col("t").str.slice(17, 1) == expected).to_series()
    divisions = text.str.slice(2, 6)
    known = {d: division_known(d) for d in divisions.filter(shape).unique().to_list()}
    division_ok = divisions.replace_strict(known, default=False, return_dtype=pl.Boolean)
    return shape & right & division_ok


def _plain_numbers(f: Field, text: pl.Series) -> pl.Series:
    """Encoded values of numbers written plainly (digits, a point); null for any other text."""
    if f.type == "int":
        plain = text.str.contains(r"^\d{1,15}$")
        return text.cast(pl.Int64, strict=False).cast(pl.Utf8).set(~plain, None)
    unit = _UNITS[f.import_unit or "yuan"]
    digits = len(str(unit)) - 1
    plain = text.str.contains(rf"^\d{{1,12}}(\.\d{{1,{digits}}})?$")
    whole = text.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)
    part = text.str.extract(r"\.(\d+)$", 1).fill_null("").str.pad_end(digits, "0")
    fen = whole * unit + part.cast(pl.Int64, strict=False).fill_null(0)
    # beyond the plausible magnitude the row validator has the message to give
    return fen.cast(pl.Utf8).set(~plain | (fen > MAX_WAN), None)


_EMAIL_PART = r"[\x21-\x3f\x41-\x7e]+"  # printable ASCII but "@" (and so no whitespace)


def _plain_texts(f: Field, text: pl.Series, today: date) -> pl.Series | None:
    """Encoded values of dates and contact addresses in their plain forms; null for any other.

    Each text that passes is one the row validator accepts unchanged: an ISO date (not in the
    future unless it ends a validity period), a phone number, a printable-ASCII e-mail address,
    an http(s) webhook. Any other text — other date forms, addresses in other scripts, every
    problem — is left to the row validator's parser. None: no plain form for this field.
    """
    if f.type == "date":
        iso = text.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
        day = text.str.to_date("%Y-%m-%d", strict=False)
        good = iso & day.is_not_null() & (day.dt.year() >= 1)
        if not f.name.endswith("_to"):
            good = good & (day <= today)
    elif f.name == "contact_phone":
        good = text.str.contains(r"^\+?[0-9\- ]{7,20}$")
    elif f.name == "contact_email":
        good = text.str.contains(rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")
    elif f.name == "contact_webhook":
        good = text.str.starts_with("http://") | text.str.starts_with("https://")
    else:
        return None
    return text.set(~good.fill_null(False), None)


def _by_distinct(
    text: pl.Series, done: pl.Series | None, parse: Any
) -> tuple[pl.Series, pl.Series, dict[str, Any]]:
    """Encoded values and problem flags of texts not already done, parsing each distinct text once.

    Returns (encoded, problem, parsed value by text).
    """
    todo = text != ""
    if done is not None:
        todo = todo & done.is_null()
    good: dict[str, Any] = {}
    bad: list[str] = []
    for raw in text.filter(todo).unique().to_list():
        value, problem = parse(raw)
        if problem:
            bad.append(raw)
        else:
            good[raw] = value
    encoded = text.replace_strict(
        {k: encode(v) for k, v in good.items()}, default=None, return_dtype=pl.Utf8
    )
    if done is not None:
        encoded = done.fill_null(encoded)
    return encoded, text.is_in(bad), good


def validate_batch(ctx: RowContext, rows: list[tuple[int, list[str]]]) -> BatchResult:
    """Check a batch of (row number, cell texts) column by column; see the module docstring."""
    count = len(rows)
    if not count:
        return BatchResult([], pl.DataFrame(schema=LONG_SCHEMA), [])
    # transpose once (short rows padded), then strip each column as a vector
    width = max(ctx.mapping) + 1 if ctx.mapping else 0
    lines = [
        cells if len(cells) >= width else [*cells, *[""] * (width - len(cells))]
        for _n, cells in rows
    ]
    grid = list(zip(*lines, strict=False))
    texts: dict[str, pl.Series] = {}
    for i, key in ctx.mapping.items():
        texts[key] = pl.Series(key, grid[i], pl.Utf8).str.strip_chars()
    empty = pl.Series([""] * count, dtype=pl.Utf8)
    problem = pl.Series([False] * count, dtype=pl.Boolean)
    code_text = texts.get("credit_code", empty)
    problem |= ~_credit_ok(code_text)

    meta_values: dict[str, pl.Series] = {}
    for key in ("source", "as_of", "year"):
        text = texts.get(key)
        if text is None:
            continue
        encoded, bad, _ = _by_distinct(text, None, lambda raw, k=key: meta(ctx, k, raw))
        problem |= bad
        meta_values[key] = encoded

    encoded_fields: dict[str, pl.Series] = {}
    stored = _stored()
    for key, text in texts.items():
        f = stored.get(key)
        if f is None:
            continue
        if f.type == "str" and key not in CHECKED_TEXT:
            encoded_fields[key] = text.set(text == "", None)
            continue
        fast = (
            _plain_numbers(f, text)
            if f.type in ("int", "money")
            else _plain_texts(f, text, ctx.today)
        )
        encoded, bad, _ = _by_distinct(text, fast, lambda raw, f=f: field_value(ctx, f, raw))
        problem |= bad
        encoded_fields[key] = encoded

    frame = pl.DataFrame(encoded_fields) if encoded_fields else pl.DataFrame()
    checks: list[pl.Expr] = []
    if "employees" in frame.columns and "revenue" in frame.columns:
        employees = pl.col("employees").cast(pl.Int64)
        revenue = pl.col("revenue").cast(pl.Int64)
        checks.append(
            (employees > 0) & (revenue != 0) & (revenue > MAX_REVENUE_PER_EMPLOYEE * employees)
        )
    for start, end in validity_pairs():
        if start in frame.columns and end in frame.columns:
            checks.append(pl.col(end) < pl.col(start))  # ISO dates compare as text
    yearly = [k for k in frame.columns if stored[k].kind == "yearly"]
    if yearly:
        year_text = texts.get("year", empty)
        checks.append(
            pl.any_horizontal(pl.col(k).is_not_null() for k in yearly) & (year_text == "")
        )
    if checks:
        flagged = frame.select(pl.any_horizontal(checks).fill_null(False)).to_series()
        problem |= flagged

    # file order decides which of two equal credit codes is the duplicate
    codes: list[str] = []
    keep: list[bool] = []
    slow: list[Incoming] = []
    rejected: list[list[Issue]] = []
    seen = ctx.seen
    seen.settle()
    # rows no check flagged carry normalised codes: looked up among earlier batches' at once
    earlier = np.zeros(count, dtype=np.int64)
    unflagged = (~problem).to_numpy()
    earlier[unflagged] = seen.settled(code_text.filter(~problem).to_list())
    for (number, cells), code, flagged, before in zip(
        rows, code_text, problem, earlier.tolist(), strict=True
    ):
        if not flagged and not before and seen.claim(code, number):
            codes.append(code)
            keep.append(True)
            continue
        keep.append(False)
        item, issues = validate_row(ctx, number, cells)
        if issues:
            rejected.append(issues)
        elif item is not None:
            codes.append(item.credit_code)
            slow.append(item)
    values = _long_values(
        ctx, code_text, texts, meta_values, frame, pl.Series(keep, dtype=pl.Boolean)
    )
    if slow:
        values = pl.concat([values, _long_from_items(slow)])
    seen.settle()
    return BatchResult(codes, values, rejected)


def _long_values(
    ctx: RowContext,
    code_text: pl.Series,
    texts: dict[str, pl.Series],
    meta_values: dict[str, pl.Series],
    frame: pl.DataFrame,
    keep: pl.Series,
) -> pl.DataFrame:
    """Values of the rows kept, one row per value, with source and as-of as validate_row gives."""
    if not frame.columns or not keep.any():
        return pl.DataFrame(schema=LONG_SCHEMA)
    count = len(code_text)
    today = ctx.today
    as_of_given = (
        texts["as_of"] != "" if "as_of" in texts else pl.Series([False] * count, dtype=pl.Boolean)
    )
    as_of = meta_values.get("as_of", pl.Series([None] * count, dtype=pl.Utf8))
    year = meta_values.get("year", pl.Series([None] * count, dtype=pl.Utf8))
    source = meta_values.get("source", pl.Series([None] * count, dtype=pl.Utf8))
    base = pl.DataFrame(
        {
            "code": code_text,
            "row_source": source,
            "as_of": as_of.str.to_date("%Y-%m-%d").fill_null(today),
            "year": year.cast(pl.Int64).fill_null(0),
            "as_of_given": as_of_given,
        }
    ).with_columns(
        yearly_as_of=pl.when(pl.col("as_of_given") | (pl.col("year") == 0))
        .then(pl.col("as_of"))
        .otherwise(
            pl.min_horizontal(pl.col("as_of"), pl.date(pl.col("year").clip(1, 9999), 12, 31))
        )
    )
    wide = pl.concat([base, frame], how="horizontal").filter(keep)
    stored = _stored()
    fields = pl.DataFrame(
        {
            "field": frame.columns,
            "is_yearly": [stored[k].kind == "yearly" for k in frame.columns],
            "field_source": [stored[k].source for k in frame.columns],
        }
    )
    default = pl.lit(ctx.default_source, pl.Utf8)
    return (
        wide.unpivot(
            on=frame.columns,
            index=["code", "row_source", "as_of", "yearly_as_of", "year"],
            variable_name="field",
            value_name="value",
        )
        .drop_nulls("value")
        .join(fields, on="field", how="left")
        .select(
            "code",
            "field",
            pl.when("is_yearly").then(pl.col("year")).otherwise(0).alias("year"),
            "value",
            pl.coalesce(pl.col("row_source"), default, pl.col("field_source")).alias("source"),
            pl.when("is_yearly")
            .then(pl.col("yearly_as_of"))
            .otherwise(pl.col("as_of"))
            .alias("as_of"),
        )
    )


def _long_from_items(items: list[Incoming]) -> pl.DataFrame:
    """Long-form values of rows the row validator accepted."""
    out: list[tuple[str, str, int, str, str, date]] = []
    for item in items:
        for (name, year), (value, source, as_of) in item.values.items():
            out.append((item.credit_code, name, year, encode(value), source, as_of))
    return pl.DataFrame(out, schema=LONG_SCHEMA, orient="row")
