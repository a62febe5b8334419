"""SQL access for the enterprise registry (bound parameters only; set-based where volume matters)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

import polars as pl
from sqlalchemy import (
    ARRAY,
    Select,
    String,
    Table,
    any_,
    bindparam,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.db import note_write
from huiqi.enterprise.models import (
    Enterprise,
    EnterpriseValue,
    EnterpriseValuePack,
    GraduateHire,
    enterprise_current,
)

# SQLite allows at most 32766 bound parameters per statement; keep IN lists well under it.
CHUNK = 900


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items (bounded IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _joined(codes: Sequence[str]) -> str | None:
    """The codes as one comma-separated text, or None if one holds a comma itself.

    psycopg converts a list to an array literal in Python, code by code (a tenth of an import's
    writing thread for 5,000 codes a batch); one text split by the server costs nothing.
    """
    if any("," in code for code in codes):
        return None
    return ",".join(codes)


def _code_list(conn: Any, codes: Sequence[str]) -> tuple[str, Any]:
    """SQL naming a list of credit codes as one bound parameter, and that parameter.

    One statement per list whatever its length, where IN-lists need one per 900 codes and cost
    a parse and a plan each: a text split into an array on PostgreSQL (an array where a code
    holds a comma), a JSON array read by json_each on SQLite.
    """
    if conn.dialect.name == "postgresql":
        joined = _joined(codes)
        if joined is None:
            return "SELECT unnest(CAST(%s AS varchar[])) AS value", list(codes)
        return "SELECT unnest(string_to_array(%s, ',')) AS value", joined
    return "SELECT value FROM json_each(?)", json.dumps(list(codes))


def codes_in(conn: Any, column: Any, codes: Sequence[str]) -> Any:
    """``column IN codes`` as one bound parameter (see ``_code_list``), for statements built with
    SQLAlchemy."""
    if conn.dialect.name == "postgresql":
        joined = _joined(codes)
        if joined is None:
            listed = cast(bindparam(None, list(codes), type_=ARRAY(String)), ARRAY(String))
        else:
            listed = cast(
                func.string_to_array(bindparam(None, joined, type_=String), ","), ARRAY(String)
            )
        return column == any_(listed)
    values: Select[tuple[Any]] = select(literal_column("value")).select_from(
        func.json_each(json.dumps(list(codes)))
    )
    return column.in_(values.scalar_subquery())


def ids_for_codes(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """Map credit codes to enterprise ids for those that exist (one statement)."""
    if not codes:
        return {}
    t: Table = Enterprise.__table__  # type: ignore[assignment]
    conn = session.connection()
    rows = conn.execute(
        select(t.c.credit_code, t.c.id).where(codes_in(conn, t.c.credit_code, codes))
    )
    return dict(rows.tuples().fetchall())


def create_enterprises(session: Session, codes: Sequence[str], now: datetime) -> dict[str, int]:
    """Insert enterprises for new codes and return their ids (one INSERT … RETURNING)."""
    if not codes:
        return {}
    note_write(session)  # driver SQL passes by the ORM's record of writes
    conn = session.connection()
    listed, param = _code_list(conn, codes)
    # timestamps bound as the ORM binds them: ISO text on SQLite, the datetime on PostgreSQL
    moment: Any = now if conn.dialect.name == "postgresql" else now.isoformat(" ")
    mark = "%s" if conn.dialect.paramstyle != "qmark" else "?"
    rows = conn.exec_driver_sql(
        "INSERT INTO enterprise (credit_code, created_at, updated_at) "  # noqa: S608
        f"SELECT code.value, {mark}, {mark} FROM ({listed}) AS code "
        "RETURNING credit_code, id",
        (moment, moment, param),
    )
    return dict(rows.tuples().fetchall())  # fetched at once: 5,000 rows one by one cost more


def touch_enterprises(session: Session, ids: Sequence[int], now: datetime) -> None:
    """Record that these enterprises changed."""
    for part in chunks(ids):
        session.execute(update(Enterprise).where(Enterprise.id.in_(part)).values(updated_at=now))


def current_values(session: Session, ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """Current values (value row id, enterprise_id, field, year, value, source) of the enterprises.

    A packed value has no row of its own: its id is None (see ``unpack``). Read through the Core
    connection as plain tuples: an import reads tens of thousands per batch.
    """
    t: Table = EnterpriseValue.__table__  # type: ignore[assignment]
    cols = (t.c.id, t.c.enterprise_id, t.c.field, t.c.year, t.c.value, t.c.source)
    conn = session.connection()
    rows: list[tuple[Any, ...]] = []
    for part in chunks(ids):
        result = conn.execute(
            select(*cols).where(t.c.enterprise_id.in_(part), t.c.superseded_at.is_(None))
        )
        rows.extend(tuple(r) for r in result)
    rows.extend(
        (None, v.enterprise_id, v.field, v.year, v.value, v.source)
        for v in _packed(session, ids=ids)
    )
    return rows


def values_at(session: Session, moment: datetime) -> list[tuple[int, str, str, int, str]]:
    """Every value that was current at a moment: (enterprise_id, credit_code, field, year, value)."""
    rows = session.execute(
        select(
            EnterpriseValue.enterprise_id,
            Enterprise.credit_code,
            EnterpriseValue.field,
            EnterpriseValue.year,
            EnterpriseValue.value,
        )
        .join(Enterprise, Enterprise.id == EnterpriseValue.enterprise_id)
        .where(
            EnterpriseValue.recorded_at <= moment,
            or_(EnterpriseValue.superseded_at.is_(None), EnterpriseValue.superseded_at > moment),
        )
    )
    out: list[tuple[int, str, str, int, str]] = [tuple(r) for r in rows]  # type: ignore[misc]
    out.extend(
        (v.enterprise_id, v.credit_code, v.field, v.year, v.value)
        for v in _packed(session, recorded_by_end=moment)
    )
    return out


def supersede(session: Session, value_ids: Sequence[int], now: datetime) -> None:
    """Close the current period of these value rows."""
    for part in chunks(value_ids):
        session.execute(
            update(EnterpriseValue).where(EnterpriseValue.id.in_(part)).values(superseded_at=now)
        )


VALUE_COLUMNS = (
    "enterprise_id", "field", "year", "value", "source", "as_of", "recorded_at", "superseded_at", "recorded_by",
)  # fmt: skip


def _driver_rows(
    dialect: Any, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Rows converted once per distinct value as the ORM would bind them.

    A batch repeats the same few dates, sources and timestamps thousands of times, so conversions
    are memoised per column. On SQLite, dates and datetimes become the text the sqlite3 module's
    own adapters produce, so rows look exactly like rows written through the ORM.
    """
    procs = [table.c[c].type.bind_processor(dialect) for c in columns]
    sqlite = dialect.name == "sqlite"
    plan: list[tuple[int, Callable[[Any], Any]]] = []
    for i, proc in enumerate(procs):
        col_type = table.c[columns[i]].type
        python_type = getattr(col_type, "python_type", None) if not proc else None
        if proc is not None:
            plan.append((i, proc))
        elif sqlite and python_type is datetime:
            plan.append((i, lambda v: v.isoformat(" ")))
        elif sqlite and python_type is date:
            plan.append((i, lambda v: v.isoformat()))
    if not plan:
        return rows
    memo: list[dict[Any, Any]] = [{} for _ in plan]
    out = []
    for row in rows:
        values = list(row)
        for (i, convert), seen in zip(plan, memo, strict=True):
            v = values[i]
            if v is not None:
                got = seen.get(v)
                if got is None:
                    got = seen[v] = convert(v)
                values[i] = got
        out.append(tuple(values))
    return out


def _executemany(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    suffix: str = "",
) -> None:
    """A plain DB-API executemany: bulk loads skip statement compilation and per-row ORM work.

    Table and column names come from the models, never from input; values are bound parameters.
    """
    if not rows:
        return
    note_write(session)  # driver SQL passes by the ORM's record of writes
    conn = session.connection()
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}){suffix}"  # noqa: S608
    conn.exec_driver_sql(sql, _driver_rows(dialect, table, columns, rows))


def _copy(
    session: Session, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """PostgreSQL COPY … FROM STDIN on the session's own connection (same transaction)."""
    note_write(session)  # COPY passes by the ORM's record of writes
    raw: Any = session.connection().connection.dbapi_connection
    with (
        raw.cursor() as cur,
        cur.copy(
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"  # noqa: S608
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def add_values(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert value rows given as tuples in VALUE_COLUMNS order (COPY on PostgreSQL)."""
    if not rows:
        return
    table: Table = EnterpriseValue.__table__  # type: ignore[assignment]
    if session.connection().dialect.name == "postgresql":
        _copy(session, table, VALUE_COLUMNS, rows)
    else:
        _executemany(session, table, VALUE_COLUMNS, rows)


CURRENT_COLUMNS = tuple(c.name for c in enterprise_current.columns)


def upsert_current(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace enterprise_current rows (tuples in CURRENT_COLUMNS order).

    INSERT … ON CONFLICT (id) DO UPDATE is the same statement on SQLite and PostgreSQL.
    """
    assignments = ", ".join(f"{c} = excluded.{c}" for c in CURRENT_COLUMNS if c != "id")
    _executemany(
        session,
        enterprise_current,
        CURRENT_COLUMNS,
        rows,
        suffix=f" ON CONFLICT (id) DO UPDATE SET {assignments}",
    )


def value_history(session: Session, enterprise_id: int) -> list[EnterpriseValue]:
    """Every value of an enterprise, newest first (packed values as unsaved rows, id None)."""
    rows = list(
        session.scalars(
            select(EnterpriseValue)
            .where(EnterpriseValue.enterprise_id == enterprise_id)
            .order_by(EnterpriseValue.recorded_at.desc(), EnterpriseValue.id.desc())
        )
    )
    if rows:
        return rows
    # one pack at most, recorded in one moment: newest first is the reverse of recording order
    packed = [
        EnterpriseValue(
            enterprise_id=v.enterprise_id,
            field=v.field,
            year=v.year,
            value=v.value,
            source=v.source,
            as_of=v.as_of,
            recorded_at=v.recorded_at,
            superseded_at=None,
            recorded_by=v.recorded_by,
        )
        for v in _packed(session, ids=[enterprise_id])
    ]
    return packed[::-1]


def get_by_code(session: Session, credit_code: str) -> Enterprise | None:
    """The enterprise with this credit code."""
    return session.scalar(select(Enterprise).where(Enterprise.credit_code == credit_code))


def graduate_hires(session: Session, enterprise_id: int) -> list[GraduateHire]:
    """Graduate hires of an enterprise, newest hire first."""
    return list(
        session.scalars(
            select(GraduateHire)
            .where(GraduateHire.enterprise_id == enterprise_id)
            .order_by(GraduateHire.hired_on.desc())
        )
    )


def list_current(
    session: Session,
    *,
    region_prefix: str | None = None,
    industry_prefix: str | None = None,
    size_class: str | None = None,
    certification: str | None = None,
    on: date | None = None,
    query: str | None = None,
    within: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Any]]:
    """Filtered page of enterprise_current rows and the total count; `within` is the region
    prefix a city or county officer is limited to, on top of any region asked for."""
    t = enterprise_current
    conds: list[Any] = []
    for prefix in (region_prefix, within):
        if prefix:
            conds.append(t.c.region_code.like(f"{prefix}%"))
    if industry_prefix:
        conds.append(t.c.industry_code.like(f"{industry_prefix}%"))
    if size_class == "unknown":
        conds.append(t.c.size_class.is_(None))
    elif size_class:
        conds.append(t.c.size_class == size_class)
    if certification:
        start, end = t.c[f"cert_{certification}_from"], t.c[f"cert_{certification}_to"]
        day = on or clock.today()
        conds.append(start <= day)
        conds.append(or_(end.is_(None), end >= day))
    if query:
        conds.append(or_(t.c.name.like(f"%{query}%"), t.c.credit_code.like(f"{query.upper()}%")))
    total = session.scalar(select(func.count()).select_from(t).where(*conds)) or 0
    rows = session.execute(
        select(t).where(*conds).order_by(t.c.credit_code).limit(limit).offset(offset)
    ).all()
    return total, list(rows)


def region_of(session: Session, credit_code: str) -> str | None:
    """The GB/T 2260 region code of one enterprise (None if unknown)."""
    t = enterprise_current
    code: str | None = session.scalar(select(t.c.region_code).where(t.c.credit_code == credit_code))
    return code


def codes_in_region(prefix: str) -> Select[tuple[str]]:
    """A subquery of the credit codes whose region code starts with the prefix."""
    t = enterprise_current
    return select(t.c.credit_code).where(t.c.region_code.like(f"{prefix}%"))


def current_row(session: Session, credit_code: str) -> Any:
    """The enterprise_current row of one enterprise."""
    return session.execute(
        select(enterprise_current).where(enterprise_current.c.credit_code == credit_code)
    ).first()


def all_current(session: Session, credit_codes: Sequence[str] | None = None) -> list[Any]:
    """Every enterprise_current row (or those of the given credit codes), by credit code."""
    t = enterprise_current
    if credit_codes is None:
        return list(session.execute(select(t).order_by(t.c.credit_code)))
    if not credit_codes:
        return []
    conn = session.connection()
    rows = conn.execute(select(t).where(codes_in(conn, t.c.credit_code, credit_codes)))
    return sorted(rows, key=lambda r: r.credit_code)


def count_in_cell(
    session: Session,
    *,
    region_prefix: str | None,
    industry_prefix: str | None,
    size_class: str | None,
    at_most: int,
) -> int:
    """How many registered enterprises share a (region, industry, size) cell, counted to at_most.

    Prefixes are codes (digits only); a None leaves that attribute out. Counting stops at
    at_most, so the answer to "at least k?" reads at most k rows however large the registry.
    """
    t = enterprise_current
    conds: list[Any] = []
    if region_prefix is not None:
        conds.append(t.c.region_code.like(f"{region_prefix}%"))
    if industry_prefix is not None:
        conds.append(t.c.industry_code.like(f"{industry_prefix}%"))
    if size_class is not None:
        conds.append(t.c.size_class == size_class)
    few = select(t.c.id).where(*conds).limit(at_most).subquery()
    return session.scalar(select(func.count()).select_from(few)) or 0


def current_mapping(session: Session, credit_code: str) -> dict[str, Any] | None:
    """The enterprise_current row of one enterprise as column → value (without the id)."""
    found = current_row(session, credit_code)
    return None if found is None else {k: v for k, v in found._mapping.items() if k != "id"}


def live_values(
    session: Session,
    credit_codes: Sequence[str] | None,
    fields: Sequence[str] | None = None,
    *,
    year: int | None = None,
) -> list[tuple[str, str, int, str, date, str]]:
    """Current (not superseded) stored values: (credit code, field, year, value, as-of, source).

    Other domains read registry values through this, never the value table itself. Limit by
    enterprises (None: all), fields and year (0 holds the values that are not yearly).
    """
    return live_value_frame(session, credit_codes, fields, year=year).rows()


LIVE_SCHEMA = {
    "code": pl.Utf8, "field": pl.Utf8, "year": pl.Int64, "value": pl.Utf8, "as_of": pl.Date,
    "source": pl.Utf8,
}  # fmt: skip


def live_value_frame(
    session: Session,
    credit_codes: Sequence[str] | None,
    fields: Sequence[str] | None = None,
    *,
    year: int | None = None,
) -> pl.DataFrame:
    """``live_values`` as a frame (code, field, year, value, as_of, source), for readers that
    work on a whole batch of enterprises at once (a bulk import's handlers)."""
    q = (
        select(
            Enterprise.credit_code,
            EnterpriseValue.field,
            EnterpriseValue.year,
            EnterpriseValue.value,
            EnterpriseValue.as_of,
            EnterpriseValue.source,
        )
        .join(Enterprise, Enterprise.id == EnterpriseValue.enterprise_id)
        .where(EnterpriseValue.superseded_at.is_(None))
    )
    if fields is not None:
        q = q.where(EnterpriseValue.field.in_(list(fields)))
    if year is not None:
        q = q.where(EnterpriseValue.year == year)
    if credit_codes is not None:
        q = q.where(codes_in(session.connection(), Enterprise.credit_code, credit_codes))
    rows = pl.DataFrame(list(session.execute(q)), schema=LIVE_SCHEMA, orient="row")
    return pl.concat([rows, _packed_live(session, credit_codes, fields, year)])


def _packed_live(
    session: Session,
    credit_codes: Sequence[str] | None,
    fields: Sequence[str] | None,
    year: int | None,
) -> pl.DataFrame:
    """``live_value_frame`` of the enterprises recorded as packs, decoded by Polars: a bulk
    import's handlers read these for every enterprise of every batch."""
    p: Table = EnterpriseValuePack.__table__  # type: ignore[assignment]
    e: Table = Enterprise.__table__  # type: ignore[assignment]
    q = select(e.c.credit_code, p.c.source, p.c.as_of, p.c.entries).join(
        e, e.c.id == p.c.enterprise_id
    )
    conn = session.connection()
    if credit_codes is not None:
        q = q.where(codes_in(conn, e.c.credit_code, credit_codes))
    rows = list(conn.execute(q))
    if not rows:
        return pl.DataFrame(schema=LIVE_SCHEMA)
    entry = pl.col("entry")
    own = entry.list.len() > 3
    frame = (
        pl.DataFrame(
            rows,
            schema={"code": pl.Utf8, "source": pl.Utf8, "as_of": pl.Date, "entries": pl.Utf8},
            orient="row",
        )
        .with_columns(entry=pl.col("entries").str.json_decode(pl.List(pl.List(pl.Utf8))))
        .select("code", "source", "as_of", "entry")
        .explode("entry")
        .with_columns(field=entry.list.get(0), year=entry.list.get(1).cast(pl.Int64))
    )
    # the wanted entries are picked before the rest is decoded: a pack holds every field
    if fields is not None:
        frame = frame.filter(pl.col("field").is_in(list(fields)))
    if year is not None:
        frame = frame.filter(pl.col("year") == year)
    return frame.select(
        "code",
        "field",
        "year",
        entry.list.get(2).alias("value"),
        pl.when(own)
        .then(entry.list.get(4, null_on_oob=True).str.to_date("%Y-%m-%d"))
        .otherwise(pl.col("as_of"))
        .alias("as_of"),
        pl.when(own)
        .then(entry.list.get(3, null_on_oob=True))
        .otherwise(pl.col("source"))
        .alias("source"),
    )


def value_sources(
    session: Session, credit_code: str, fields: Iterable[str]
) -> list[tuple[str, int, str, str | None, date]]:
    """Provenance of one enterprise's current values: (field, year, source, recorded by, as-of)."""
    return value_sources_many(session, [credit_code], fields).get(credit_code, [])


def value_sources_many(
    session: Session, credit_codes: Sequence[str], fields: Iterable[str]
) -> dict[str, list[tuple[str, int, str, str | None, date]]]:
    """`value_sources` of many enterprises (credit code → its rows; none: no entry), read in
    one query per chunk of codes and per storage form."""
    wanted = set(fields)
    codes = sorted(set(credit_codes))
    out: dict[str, list[tuple[str, int, str, str | None, date]]] = {}
    if not codes or not wanted:
        return out
    t: Table = EnterpriseValue.__table__  # type: ignore[assignment]
    e: Table = Enterprise.__table__  # type: ignore[assignment]
    q = (
        select(e.c.credit_code, t.c.field, t.c.year, t.c.source, t.c.recorded_by, t.c.as_of)
        .join(e, e.c.id == t.c.enterprise_id)
        .where(t.c.superseded_at.is_(None), t.c.field.in_(sorted(wanted)))
    )
    conn = session.connection()
    for code, f, y, src, by, as_of in conn.execute(q.where(codes_in(conn, e.c.credit_code, codes))):
        out.setdefault(code, []).append((f, y, src, by, as_of))
    for v in _packed(session, codes=codes, fields=wanted):
        out.setdefault(v.credit_code, []).append(
            (v.field, v.year, v.source, v.recorded_by, v.as_of)
        )
    return out


def latest_value_not_from(
    session: Session, credit_code: str, field_name: str, years: Sequence[int], source: str
) -> tuple[str, str] | None:
    """(stored text, source) of the latest recorded value of a field from any other source."""
    found = session.execute(
        select(EnterpriseValue.value, EnterpriseValue.source)
        .join(Enterprise, Enterprise.id == EnterpriseValue.enterprise_id)
        .where(
            Enterprise.credit_code == credit_code,
            EnterpriseValue.field == field_name,
            EnterpriseValue.year.in_(list(years)),
            EnterpriseValue.source != source,
        )
        .order_by(EnterpriseValue.recorded_at.desc(), EnterpriseValue.id.desc())
        .limit(1)
    ).first()
    if found is not None:
        return found[0], found[1]
    # an enterprise with a pack has no value rows; the last recorded of a pack is the latest
    for v in reversed(_packed(session, codes=[credit_code])):
        if v.field == field_name and v.year in years and v.source != source:
            return v.value, v.source
    return None


def add_value_frame(session: Session, frame: pl.DataFrame) -> None:
    """Insert value rows given as a frame of VALUE_COLUMNS (COPY … CSV on PostgreSQL).

    Dates and timestamps are written as the text the ORM would bind, converted by Polars rather
    than row by row.
    """
    if not frame.height:
        return
    table: Table = EnterpriseValue.__table__  # type: ignore[assignment]
    insert_frame(session, table, VALUE_COLUMNS, frame)


def upsert_current_frame(session: Session, frame: pl.DataFrame, *, new: bool = False) -> None:
    """Insert or replace enterprise_current rows given as a frame of CURRENT_COLUMNS.

    ``new`` says none of these enterprises has a row yet (a bulk import's new enterprises): the
    rows are inserted plainly, by COPY on PostgreSQL. Otherwise PostgreSQL copies them into a
    temporary table and upserts from it in one statement; SQLite upserts them row by row.
    """
    if not frame.height:
        return
    columns = ", ".join(CURRENT_COLUMNS)
    assignments = ", ".join(f"{c} = excluded.{c}" for c in CURRENT_COLUMNS if c != "id")
    upsert = f" ON CONFLICT (id) DO UPDATE SET {assignments}"
    note_write(session)  # COPY and driver SQL pass by the ORM's record of writes
    conn = session.connection()
    if new or conn.dialect.name != "postgresql":
        insert_frame(
            session, enterprise_current, CURRENT_COLUMNS, frame, suffix="" if new else upsert
        )
        return
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS enterprise_current_stage "
        "(LIKE enterprise_current) ON COMMIT DELETE ROWS"
    )
    insert_frame(
        session, enterprise_current, CURRENT_COLUMNS, frame, into="enterprise_current_stage"
    )
    conn.exec_driver_sql(
        f"INSERT INTO enterprise_current ({columns}) SELECT {columns} "  # noqa: S608
        f"FROM enterprise_current_stage{upsert}"
    )
    conn.exec_driver_sql("DELETE FROM enterprise_current_stage")


def insert_frame(
    session: Session,
    table: Table,
    columns: Sequence[str],
    frame: pl.DataFrame,
    *,
    into: str | None = None,
    suffix: str = "",
) -> None:
    """Insert a frame's rows: COPY FROM STDIN (CSV) on PostgreSQL, executemany on SQLite.

    ``into`` names another table of the same columns (a staging table) to write to instead;
    ``suffix`` ends SQLite's INSERT (an ON CONFLICT clause) and is not for PostgreSQL's COPY.

    Dates and timestamps become the text the sqlite3 adapters (SQLite) or ISO input (PostgreSQL)
    take; timestamps repeat within a batch, so each distinct one is converted once.
    """
    note_write(session)  # COPY and driver SQL pass by the ORM's record of writes
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    sep = "T" if postgres else " "
    out: list[pl.Expr] = []
    for c in columns:
        kind = getattr(table.c[c].type, "python_type", None)
        if kind is datetime:
            moments = {v: v.isoformat(sep) for v in frame[c].drop_nulls().unique().to_list()}
            out.append(pl.col(c).replace_strict(moments, default=None, return_dtype=pl.Utf8))
        elif kind is date:
            out.append(pl.col(c).dt.to_string("%Y-%m-%d"))
        else:
            out.append(pl.col(c))
    converted = frame.select(out)
    if postgres:
        assert not suffix, "COPY takes no ON CONFLICT clause"
        raw: Any = conn.connection.dbapi_connection
        with (
            raw.cursor() as cur,
            cur.copy(
                f"COPY {into or table.name} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"  # noqa: S608
            ) as copy,
        ):
            copy.write(converted.write_csv(include_header=False, null_value="").encode())
        return
    marks = ", ".join(["?"] * len(columns))
    sql = f"INSERT INTO {into or table.name} ({', '.join(columns)}) VALUES ({marks}){suffix}"  # noqa: S608
    conn.exec_driver_sql(sql, converted.rows())


class PackedValue(NamedTuple):
    """One value of a pack with the provenance a value row would have."""

    enterprise_id: int
    credit_code: str
    field: str
    year: int
    value: str
    source: str
    as_of: date
    recorded_at: datetime
    recorded_by: str | None


def _packed(
    session: Session,
    *,
    ids: Sequence[int] | None = None,
    codes: Sequence[str] | None = None,
    recorded_by_end: datetime | None = None,
    fields: set[str] | None = None,
) -> list[PackedValue]:
    """Values held in packs, in recording order: of these enterprise ids or credit codes (None:
    all), recorded no later than ``recorded_by_end`` and of these fields, if given."""
    p: Table = EnterpriseValuePack.__table__  # type: ignore[assignment]
    e: Table = Enterprise.__table__  # type: ignore[assignment]
    q = select(
        p.c.enterprise_id, e.c.credit_code, p.c.source, p.c.as_of, p.c.recorded_at,
        p.c.recorded_by, p.c.entries,
    ).join(e, e.c.id == p.c.enterprise_id)  # fmt: skip
    if recorded_by_end is not None:
        q = q.where(p.c.recorded_at <= recorded_by_end)
    conn = session.connection()
    if ids is not None:
        parts = [conn.execute(q.where(p.c.enterprise_id.in_(part))) for part in chunks(ids)]
    elif codes is not None:
        parts = [conn.execute(q.where(codes_in(conn, e.c.credit_code, codes)))]
    else:
        parts = [conn.execute(q.order_by(p.c.enterprise_id))]
    out: list[PackedValue] = []
    days: dict[str, date] = {}
    for rows in parts:
        for eid, code, source, as_of, recorded_at, recorded_by, entries in rows:
            for entry in _decode(entries):
                if fields is not None and entry[0] not in fields:
                    continue
                if len(entry) == 3:
                    field, year, value = entry
                    v_source, v_as_of = source, as_of
                else:
                    field, year, value, v_source, day = entry
                    v_as_of = days.get(day) or days.setdefault(day, date.fromisoformat(day))
                out.append(
                    PackedValue(
                        eid, code, field, int(year), value, v_source, v_as_of, recorded_at,
                        recorded_by,
                    )
                )  # fmt: skip
    return out


def current_value_frame(session: Session, ids: Sequence[int]) -> pl.DataFrame:
    """``current_values`` as a frame (vid, eid, field, year, old_value, old_source); packs are
    decoded by Polars, as a re-import reads every value of every batch."""
    schema = {
        "vid": pl.Int64, "eid": pl.Int64, "field": pl.Utf8, "year": pl.Int64,
        "old_value": pl.Utf8, "old_source": pl.Utf8,
    }  # fmt: skip
    t: Table = EnterpriseValue.__table__  # type: ignore[assignment]
    p: Table = EnterpriseValuePack.__table__  # type: ignore[assignment]
    conn = session.connection()
    rows: list[tuple[Any, ...]] = []
    packs: list[tuple[Any, ...]] = []
    for part in chunks(ids):
        rows.extend(
            conn.execute(
                select(t.c.id, t.c.enterprise_id, t.c.field, t.c.year, t.c.value, t.c.source).where(
                    t.c.enterprise_id.in_(part), t.c.superseded_at.is_(None)
                )
            )
        )
        packs.extend(
            conn.execute(
                select(p.c.enterprise_id, p.c.source, p.c.entries).where(
                    p.c.enterprise_id.in_(part)
                )
            )
        )
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    if not packs:
        return frame
    entry = pl.col("entry")
    unpacked = (
        pl.DataFrame(
            packs, schema={"eid": pl.Int64, "source": pl.Utf8, "entries": pl.Utf8}, orient="row"
        )
        .with_columns(entry=pl.col("entries").str.json_decode(pl.List(pl.List(pl.Utf8))))
        .explode("entry")
        .select(
            pl.lit(None, pl.Int64).alias("vid"),
            "eid",
            entry.list.get(0).alias("field"),
            entry.list.get(1).cast(pl.Int64).alias("year"),
            entry.list.get(2).alias("old_value"),
            pl.when(entry.list.len() > 3)
            .then(entry.list.get(3, null_on_oob=True))
            .otherwise(pl.col("source"))
            .alias("old_source"),
        )
    )
    return pl.concat([frame, unpacked])


def _decode(entries: str) -> list[list[Any]]:
    decoded: list[list[Any]] = json.loads(entries)
    return decoded


def unpack(
    session: Session,
    ids: Sequence[int],
    now: datetime,
    retire: dict[int, set[tuple[str, int]]] | None = None,
) -> None:
    """Turn the packs of these enterprises into value rows before a change to them.

    Each value keeps its provenance and recorded_at; those named in ``retire`` (enterprise id →
    (field, year)) are superseded ``now``, as the change replaces them. Enterprises without a
    pack are left alone.
    """
    retire = retire or {}
    rows = [
        (
            v.enterprise_id, v.field, v.year, v.value, v.source, v.as_of, v.recorded_at,
            now if (v.field, v.year) in retire.get(v.enterprise_id, ()) else None,
            v.recorded_by,
        )
        for v in _packed(session, ids=ids)
    ]  # fmt: skip
    if not rows:
        return
    add_values(session, rows)
    for part in chunks(sorted({r[0] for r in rows})):
        session.execute(
            delete(EnterpriseValuePack).where(EnterpriseValuePack.enterprise_id.in_(part))
        )


PACK_COLUMNS = ("enterprise_id", "source", "as_of", "recorded_at", "recorded_by", "entries")


def _json_text(expr: pl.Expr) -> pl.Expr:
    """Each text as a JSON string literal (quotes and escapes), computed by Polars."""
    return (
        pl.struct(expr.alias("v"))
        .struct.json_encode()
        .str.strip_prefix('{"v":')
        .str.strip_suffix("}")
    )


_JSON_SPECIAL = r'["\\\x00-\x1f]'
"""Characters a JSON string literal escapes; a text without them is quoted as it is."""


def _json_texts(texts: pl.Series) -> dict[str, str]:
    """Each distinct text → its JSON string literal (for columns of few distinct values)."""
    distinct = texts.unique().drop_nulls()
    special = distinct.str.contains(_JSON_SPECIAL)
    out = {t: f'"{t}"' for t in distinct.filter(~special).to_list()}
    escaped = distinct.filter(special)
    if escaped.len():
        encoded = pl.DataFrame({"t": escaped}).select(_json_text(pl.col("t"))).to_series()
        out.update(zip(escaped.to_list(), encoded.to_list(), strict=True))
    return out


def add_packs(
    session: Session, values: pl.DataFrame, *, recorded_at: datetime, recorded_by: str | None
) -> None:
    """Record new enterprises' values as one pack each.

    ``values`` holds enterprise_id, field, year, value, source, as_of (a date) in recording
    order; each pack's common source and as-of are those of its first value.
    """
    if not values.height:
        return
    # fields, sources and dates repeat: each distinct one is encoded once; values are quoted as
    # they are unless one needs escaping (the JSON encoder costs several times a concatenation)
    value = pl.col("value")
    special = values.select(value.str.contains(_JSON_SPECIAL).any()).item()
    value_json = _json_text(value) if special else pl.concat_str(pl.lit('"'), value, pl.lit('"'))
    days = {d: d.isoformat() for d in values["as_of"].unique().drop_nulls().to_list()}
    firsts = values.group_by("enterprise_id").agg(
        pl.col("source").first().alias("_source"), pl.col("as_of").first().alias("_as_of")
    )
    own = pl.concat_str(
        pl.lit(","), pl.col("source").replace_strict(_json_texts(values["source"])),
        pl.lit(',"'), pl.col("as_of").replace_strict(days, return_dtype=pl.Utf8), pl.lit('"'),
    )  # fmt: skip
    entry = pl.concat_str(
        pl.lit("["), pl.col("field").replace_strict(_json_texts(values["field"])), pl.lit(',"'),
        pl.col("year").cast(pl.Utf8), pl.lit('",'), value_json,
        pl.when((pl.col("source") == pl.col("_source")) & (pl.col("as_of") == pl.col("_as_of")))
        .then(pl.lit("")).otherwise(own),
        pl.lit("]"),
    )  # fmt: skip
    packs = (
        values.join(firsts, on="enterprise_id", how="left", maintain_order="left")
        .with_columns(entry=entry)
        .group_by("enterprise_id", maintain_order=True)
        .agg(
            pl.col("source").first(),
            pl.col("as_of").first(),
            pl.concat_str(pl.lit("["), pl.col("entry").str.join(","), pl.lit("]")).alias("entries"),
        )
        .select(
            "enterprise_id",
            "source",
            "as_of",
            pl.lit(recorded_at).alias("recorded_at"),
            pl.lit(recorded_by, pl.Utf8).alias("recorded_by"),
            "entries",
        )
    )
    table: Table = EnterpriseValuePack.__table__  # type: ignore[assignment]
    insert_frame(session, table, PACK_COLUMNS, packs)


def value_count(session: Session) -> int:
    """How many values the registry has recorded, current or superseded, in either form."""
    rows = session.scalar(select(func.count()).select_from(EnterpriseValue)) or 0
    packed = session.scalars(select(EnterpriseValuePack.entries))
    return rows + sum(len(_decode(entries)) for entries in packed)
