"""Set-based writes that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session

from huiqi.core.db import note_write

T = TypeVar("T")
IN_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit
PROCESSED_KEPT = 256  # processed values kept per column by _processor


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class JsonText(str):
    """A value of a JSON column already encoded as JSON text: the bulk writers store it as it is
    (lists assembled from pre-encoded items cost less than encoding each whole list)."""


def one_of(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN values` with the values as one bound parameter, however many there are.

    An IN list is a statement per length (SQLAlchemy renders one placeholder per value), and
    psycopg keeps its parse of a statement only up to 50 parameters, re-parsing longer ones in
    Python every time. Here: `= ANY(:array)` on PostgreSQL, a JSON array read by json_each on
    SQLite (the values must be JSON scalars: text or numbers).
    """
    expr = column if isinstance(column, ColumnElement) else column.expression
    if session.get_bind().dialect.name == "postgresql":
        kind = ARRAY(expr.type)
        return expr == any_(cast(bindparam(None, list(values), type_=kind), kind))
    listed: Select[tuple[Any]] = select(literal_column("value")).select_from(
        func.json_each(json.dumps(list(values)))
    )
    return expr.in_(listed.scalar_subquery())


def rows_of_codes(
    session: Session,
    table: Table,
    columns: Sequence[ColumnElement[Any]],
    codes: Sequence[str] | None,
    where: Sequence[ColumnElement[bool]] = (),
    key: str = "credit_code",
) -> Select[Any]:
    """A select of these columns of the rows of `table` whose `key` column (the credit code, or
    another indexed text column) is one of `codes` (all rows when None) and that meet the `where`
    conditions.

    On PostgreSQL the key's index is probed once per code, by a lateral join: given a
    batch's thousands of codes in one ``= ANY``, the planner prices every index descent as a
    random read and scans the whole table instead, which grows with the table while a batch
    does not. (``OFFSET 0`` keeps the lateral subquery from being merged into a plain join.)
    The selected columns keep their names, so a caller can group or order over a subquery.
    """
    if codes is None:
        return select(*columns).where(*where)
    if session.get_bind().dialect.name != "postgresql":
        return select(*columns).where(one_of(session, table.c[key], codes), *where)
    # the codes go as one JSON text: the driver dumps a list parameter element by element
    listed = bindparam(None, json.dumps(list(codes)), type_=Text)
    wanted = (
        func.json_array_elements_text(cast(listed, JSON))
        .table_valued("code")
        .render_derived(name="u")
    )
    each = (
        select(*columns)
        .where(table.c[key] == wanted.c.code, *where)
        .offset(literal_column("0"))
        .lateral("t")
    )
    return select(*each.c).select_from(wanted).join(each, true())


def insert_ignoring(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str] = (),
) -> list[Any]:
    """INSERT … ON CONFLICT (conflict) DO NOTHING for many rows in one statement per page.

    Rows whose key exists already (stored earlier, or by a concurrent transaction that
    committed first) are skipped without an error; `returning` columns of the inserted rows
    come back, in no particular order. The rows do not give the table's id (SQLite finds the
    new rows by it).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        note_write(session)  # COPY and driver SQL pass by the ORM's record of writes
        return _copy_ignoring(session, table, rows, conflict, returning)
    return _sqlite_ignoring(session, table, rows, conflict, returning)


def _sqlite_ignoring(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    """insert_ignoring on SQLite: one executemany at the driver, then the new rows read back by
    rowid. The transaction holds the write lock from its first write to its commit and SQLite
    gives each new row the next rowid above the largest, so the n rows inserted are the n
    largest rowids."""
    names = list(rows[0])
    if any(table.c[name].primary_key for name in names):
        raise ValueError(f"insert_ignoring into {table.name}: the ids come from the table")
    conn = session.connection()
    prep = conn.dialect.identifier_preparer
    target = prep.format_table(table)
    quoted = ", ".join(prep.quote(n) for n in names)
    processed = _processor(session, table, names)
    done = conn.exec_driver_sql(
        f"INSERT INTO {target} ({quoted}) VALUES ({', '.join('?' for _ in names)}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(prep.quote(c) for c in conflict)}) DO NOTHING",
        [tuple(processed(tuple(r[n] for n in names))) for r in rows],
    )
    inserted = int(done.rowcount or 0)
    note_write(session)
    if not returning or not inserted:
        return []
    top = select(func.max(literal_column("rowid"))).select_from(table).scalar_subquery()
    new = select(*(table.c[name] for name in returning)).where(
        literal_column("rowid") > top - inserted
    )
    return list(conn.execute(new).all())


def insert_many(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows given as dicts (see insert_rows)."""
    if rows:
        names = list(rows[0])
        insert_rows(session, table, names, [tuple(r[n] for n in names) for r in rows])


def insert_rows(
    session: Session, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert many rows at the driver's speed: COPY on PostgreSQL, executemany on SQLite.

    Values go through each column's own bind processing (dates and JSON as SQLAlchemy stores
    them), but not through a compiled statement per row, which costs more than the write.
    """
    note_write(session)  # the raw cursor passes by the ORM's record of writes
    conn = session.connection()
    dialect = conn.dialect
    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        _copy(session, table, names, f"{target} ({quoted})", rows)
        return
    processed = _processor(session, table, names)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        marks = ", ".join("?" for _ in names)
        cursor.executemany(
            f"INSERT INTO {target} ({quoted}) VALUES ({marks})",  # noqa: S608
            [tuple(processed(row)) for row in rows],
        )
    finally:
        cursor.close()


def _processor(
    session: Session, table: Table, names: Sequence[str]
) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A row's values through each column's bind processing (the identity when none has one).

    Rows of a bulk write share value objects (the same timestamp, date or empty list in every
    row), so each object's processed value is kept, by identity, and reused while it is kept.
    """
    dialect = session.connection().dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    active: list[tuple[int, Callable[[Any], Any], dict[int, tuple[Any, Any]]]] = [
        (i, p, {}) for i, p in enumerate(processors) if p is not None
    ]

    def processed(row: Sequence[Any]) -> Sequence[Any]:
        if not active:
            return row
        out = list(row)
        for i, proc, seen in active:
            value = out[i]
            if value is not None and not isinstance(value, JsonText):
                # the object is held beside its result, so its id cannot be reused meanwhile
                hit = seen.get(id(value))
                if hit is None or hit[0] is not value:
                    if len(seen) >= PROCESSED_KEPT:
                        seen.clear()
                    hit = seen[id(value)] = (value, proc(value))
                out[i] = hit[1]
        return out

    return processed


def _copy(
    session: Session, table: Table, names: Sequence[str], into: str, rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows (values of `names` of `table`) into `into` (a table and its column list)."""
    processed = _processor(session, table, names)
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        with cursor.copy(f"COPY {into} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(processed(row))
    finally:
        cursor.close()


def _copy_ignoring(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[Any]:
    """insert_ignoring on PostgreSQL: the rows are copied into a temporary table of the same
    columns, then moved by one INSERT … SELECT … ON CONFLICT DO NOTHING. A multi-row VALUES
    statement would be parsed by the driver in Python, which costs more than the insert."""
    conn = session.connection()
    prep = conn.dialect.identifier_preparer
    names = list(rows[0])
    quoted = ", ".join(prep.quote(n) for n in names)
    target = prep.format_table(table)
    digest = hashlib.sha1(f"{table.name}:{quoted}".encode()).hexdigest()[:12]
    stage = prep.quote(f"hq_stage_{digest}")
    # a temporary table lives as long as the connection (and goes with a rolled-back creation)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS "  # noqa: S608
        f"SELECT {quoted} FROM {target} WITH NO DATA"
    )
    _copy(session, table, names, f"{stage} ({quoted})", (tuple(r[n] for n in names) for r in rows))
    back = ", ".join(prep.quote(n) for n in returning)
    got = conn.exec_driver_sql(
        f"INSERT INTO {target} ({quoted}) SELECT {quoted} FROM {stage} "  # noqa: S608
        f"ON CONFLICT ({', '.join(prep.quote(c) for c in conflict)}) DO NOTHING"
        + (f" RETURNING {back}" if returning else "")
    )
    out = list(got.all()) if returning else []
    # emptied at once: a temporary table is never vacuumed, so deleted rows would pile up
    conn.exec_driver_sql(f"TRUNCATE {stage}")
    return out


def assign_ids(session: Session, objects: Sequence[Any]) -> None:
    """Give new ORM objects of one mapped table their ids from its sequence, in one query.

    On PostgreSQL a flush of objects without ids is a multi-row INSERT … RETURNING that the
    driver parses in Python, row by row; with ids given it is one prepared executemany. SQLite
    keeps assigning them in the flush. A single object is left to its flush too.
    """
    todo = [obj for obj in objects if obj.id is None]
    if len(todo) < 2 or session.get_bind().dialect.name != "postgresql":
        return
    table = type(todo[0]).__table__
    with session.no_autoflush:  # the objects are not to be flushed before they have their ids
        ids = session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": len(todo)},
        ).scalars()
    for obj, ident in zip(todo, ids, strict=True):
        obj.id = int(ident)
