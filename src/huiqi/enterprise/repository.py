"""SQL access for the enterprise registry (bound parameters only; set-based where volume matters)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from huiqi.enterprise.models import Enterprise, EnterpriseValue, GraduateHire, enterprise_current

# SQLite allows at most 32766 bound parameters per statement; keep IN lists well under it.
CHUNK = 900


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ids_for_codes(session: Session, codes: Sequence[str]) -> dict[str, int]:
    """Map credit codes to enterprise ids for those that exist."""
    out: dict[str, int] = {}
    for part in _chunks(codes):
        rows = session.execute(
            select(Enterprise.credit_code, Enterprise.id).where(Enterprise.credit_code.in_(part))
        )
        out.update({code: ident for code, ident in rows})
    return out


def create_enterprises(session: Session, codes: Sequence[str], now: datetime) -> dict[str, int]:
    """Insert enterprises for new codes and return their ids."""
    if codes:
        session.execute(
            insert(Enterprise),
            [{"credit_code": c, "created_at": now, "updated_at": now} for c in codes],
        )
    return ids_for_codes(session, codes)


def touch_enterprises(session: Session, ids: Sequence[int], now: datetime) -> None:
    """Record that these enterprises changed."""
    for part in _chunks(ids):
        session.execute(update(Enterprise).where(Enterprise.id.in_(part)).values(updated_at=now))


def current_values(session: Session, ids: Sequence[int]) -> list[Any]:
    """Current value rows (id, enterprise_id, field, year, value, source, as_of) of the enterprises."""
    rows: list[Any] = []
    cols = (
        EnterpriseValue.id,
        EnterpriseValue.enterprise_id,
        EnterpriseValue.field,
        EnterpriseValue.year,
        EnterpriseValue.value,
        EnterpriseValue.source,
        EnterpriseValue.as_of,
    )
    for part in _chunks(ids):
        rows.extend(
            session.execute(
                select(*cols).where(
                    EnterpriseValue.enterprise_id.in_(part), EnterpriseValue.superseded_at.is_(None)
                )
            )
        )
    return rows


def values_at(session: Session, moment: datetime) -> Any:
    """Every value row that was current at a moment: (enterprise_id, credit_code, field, year, value)."""
    return session.execute(
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


def supersede(session: Session, value_ids: Sequence[int], now: datetime) -> None:
    """Close the current period of these value rows."""
    for part in _chunks(value_ids):
        session.execute(
            update(EnterpriseValue).where(EnterpriseValue.id.in_(part)).values(superseded_at=now)
        )


VALUE_COLUMNS = (
    "enterprise_id", "field", "year", "value", "source", "as_of", "recorded_at", "superseded_at", "recorded_by",
)  # fmt: skip


def _executemany(
    session: Session, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """A plain DB-API executemany: bulk loads skip statement compilation per batch.

    Values pass through each column type's bind processor, so they are stored exactly as the ORM
    would store them. Table and column names come from the models, never from input.
    """
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    procs = [table.c[c].type.bind_processor(dialect) for c in columns]
    if any(procs):
        rows = [
            tuple(
                p(v) if p is not None and v is not None else v
                for p, v in zip(procs, row, strict=True)
            )
            for row in rows
        ]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"  # noqa: S608
    conn.exec_driver_sql(sql, rows)


def add_values(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert value rows given as tuples in VALUE_COLUMNS order."""
    _executemany(session, EnterpriseValue.__table__, VALUE_COLUMNS, rows)  # type: ignore[arg-type]


def replace_current(session: Session, rows: list[dict[str, Any]]) -> None:
    """Replace the enterprise_current rows of these enterprises (delete then insert, portable)."""
    ids = [r["id"] for r in rows]
    for part in _chunks(ids):
        session.execute(delete(enterprise_current).where(enterprise_current.c.id.in_(part)))
    if rows:
        columns = [c.name for c in enterprise_current.columns]
        _executemany(
            session, enterprise_current, columns, [tuple(r[c] for c in columns) for r in rows]
        )


def value_history(session: Session, enterprise_id: int) -> list[EnterpriseValue]:
    """Every value row of an enterprise, newest first."""
    return list(
        session.scalars(
            select(EnterpriseValue)
            .where(EnterpriseValue.enterprise_id == enterprise_id)
            .order_by(EnterpriseValue.recorded_at.desc(), EnterpriseValue.id.desc())
        )
    )


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
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Any]]:
    """Filtered page of enterprise_current rows and the total count."""
    t = enterprise_current
    conds: list[Any] = []
    if region_prefix:
        conds.append(t.c.region_code.like(f"{region_prefix}%"))
    if industry_prefix:
        conds.append(t.c.industry_code.like(f"{industry_prefix}%"))
    if size_class == "unknown":
        conds.append(t.c.size_class.is_(None))
    elif size_class:
        conds.append(t.c.size_class == size_class)
    if certification:
        start, end = t.c[f"cert_{certification}_from"], t.c[f"cert_{certification}_to"]
        day = on or date.today()
        conds.append(start <= day)
        conds.append(or_(end.is_(None), end >= day))
    if query:
        conds.append(or_(t.c.name.like(f"%{query}%"), t.c.credit_code.like(f"{query.upper()}%")))
    total = session.scalar(select(func.count()).select_from(t).where(*conds)) or 0
    rows = session.execute(
        select(t).where(*conds).order_by(t.c.credit_code).limit(limit).offset(offset)
    ).all()
    return total, list(rows)


def current_row(session: Session, credit_code: str) -> Any:
    """The enterprise_current row of one enterprise."""
    return session.execute(
        select(enterprise_current).where(enterprise_current.c.credit_code == credit_code)
    ).first()


def all_current(session: Session) -> Any:
    """Every enterprise_current row."""
    return session.execute(select(enterprise_current).order_by(enterprise_current.c.credit_code))
