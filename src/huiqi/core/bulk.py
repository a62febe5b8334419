"""Set-based writes that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

T = TypeVar("T")
IN_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    come back, in no particular order.
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = maker(table).on_conflict_do_nothing(index_elements=list(conflict))
    if not returning:
        session.execute(stmt, list(rows))
        return []
    back = stmt.returning(*(table.c[name] for name in returning))
    return list(session.execute(back, list(rows)).all())


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
    columns = [table.c[name] for name in names]
    conn = session.connection()
    dialect = conn.dialect
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    active = [(i, p) for i, p in enumerate(processors) if p is not None]

    def processed(row: Sequence[Any]) -> Sequence[Any]:
        if not active:
            return row
        out = list(row)
        for i, proc in active:
            if out[i] is not None:
                out[i] = proc(out[i])
        return out

    quoted = ", ".join(dialect.identifier_preparer.quote(n) for n in names)
    target = dialect.identifier_preparer.format_table(table)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if dialect.name == "postgresql":
            with cursor.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(processed(row))
        else:
            marks = ", ".join("?" for _ in names)
            cursor.executemany(
                f"INSERT INTO {target} ({quoted}) VALUES ({marks})",  # noqa: S608
                [tuple(processed(row)) for row in rows],
            )
    finally:
        cursor.close()
