"""Enterprise registry tables.

- ``enterprise``: one row per 统一社会信用代码.
- ``enterprise_value``: every catalogue value with its source and as-of date, kept as history:
  a change supersedes the current row (``superseded_at``) and adds a new one (``recorded_at``), so
  the registry as it stood at any moment can be rebuilt. ``year`` is the figures year for yearly
  fields and 0 for profile fields.
- ``enterprise_value_pack``: an enterprise's first recorded values in one row (a bulk import's new
  enterprises), each value with the same provenance a value row has. A pack's values are all
  current; the first change to the enterprise turns the pack into value rows (same provenance and
  recorded_at, the replaced ones superseded), so an enterprise has a pack or value rows, never
  both, and every reader gives the same answers for either form.
- ``enterprise_graduate_hire``: recent-graduate hires reported by 人社 or the enterprise.
- ``enterprise_current``: the field-contract columns, one row per enterprise (``id`` is the
  enterprise's), kept in step with the current values in the same transaction; the SQL rules
  engine reads it. Its columns are built from
  the catalogue so a new contract field shows up in Alembic autogenerate.
- ``enterprise_import``: bulk-import jobs (progress, counts, error report location, heartbeat).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from huiqi.core.db import Base, utcnow
from huiqi.enterprise.catalogue import catalogue

# Value rows number tens of millions for a large registry: 64-bit ids on PostgreSQL, while SQLite
# needs INTEGER PRIMARY KEY to allocate ids itself.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Enterprise(Base):
    """An enterprise, identified by its credit code."""

    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EnterpriseValue(Base):
    """One value of one field (and figures year) with provenance and its period of being current."""

    __tablename__ = "enterprise_value"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(64))
    year: Mapped[int] = mapped_column(Integer, default=0)
    value: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        # at most one current value per enterprise, field and year
        Index(
            "uq_enterprise_value_current",
            "enterprise_id",
            "field",
            "year",
            unique=True,
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
    )


class EnterpriseValuePack(Base):
    """An enterprise's first recorded values, packed: all current, recorded together.

    ``entries`` is a JSON list in recording order of texts ``[field, year, value]`` — the value's
    source and as-of are the pack's — or ``[field, year, value, source, as_of]`` where they differ.
    """

    __tablename__ = "enterprise_value_pack"

    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    source: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(128))
    entries: Mapped[str] = mapped_column(Text)


class GraduateHire(Base):
    """A recent graduate hired by an enterprise (seed art. (二十二): within 2 years, contract ≥ 1 year)."""

    __tablename__ = "enterprise_graduate_hire"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        ForeignKey("enterprise.id", ondelete="CASCADE"), index=True
    )
    person_ref: Mapped[str] = mapped_column(String(64))
    graduated_on: Mapped[date] = mapped_column(Date)
    hired_on: Mapped[date] = mapped_column(Date)
    contract_months: Mapped[int] = mapped_column(Integer)
    social_insurance: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # employer's contributions for the graduate over `insured_months` from the hire (NULL = none
    # recorded); the graduate's own share is never included
    insured_months: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pension_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    medical_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    unemployment_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# A running import commits a batch and records a heartbeat every few seconds; one silent for this
# long has lost its process.
STALE_AFTER = timedelta(minutes=5)


class ImportJob(Base):
    """A bulk import: who started it, how far it got, what it did, where its error report is."""

    __tablename__ = "enterprise_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_by: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_seen: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    error_report: Mapped[str | None] = mapped_column(String(500))
    # written with every committed batch (and at least every few seconds while reading)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def shown_status(self, now: datetime | None = None) -> str:
        """The status to show: a running job without a recent heartbeat is ``interrupted``.

        Its process stopped (server restarted or killed) and nothing will finish it. Every batch
        it committed stays valid, and re-running the same file is safe: rows already imported
        come out unchanged.
        """
        if self.status != "running":
            return self.status
        last = self.heartbeat_at or self.started_at
        if last is None:
            return self.status
        if last.tzinfo is None:  # SQLite hands timestamps back without their zone (stored as UTC)
            last = last.replace(tzinfo=UTC)
        return "interrupted" if (now or utcnow()) - last > STALE_AFTER else self.status


_SQL_TYPES: dict[str, Any] = {
    "str": lambda f: (
        String(6)
        if f.name == "region_code"
        else String(4)
        if f.name == "industry_code"
        else String(18)
        if f.name == "credit_code"
        else String(255)
    ),
    "int": lambda f: Integer(),
    "money": lambda f: BigInteger(),
    "date": lambda f: Date(),
    "bool": lambda f: Boolean(),
    "enum": lambda f: String(16),
}


def _current_columns() -> list[Column[Any]]:
    # the enterprise's id, without a foreign key: these rows are derived, written only with their
    # enterprise, and the key's check cost a bulk import a look-up per row (migration 0241)
    cols: list[Column[Any]] = [Column("id", Integer, primary_key=True, autoincrement=False)]
    for f in catalogue().contract:
        if f.name == "credit_code":
            cols.append(Column("credit_code", String(18), nullable=False, unique=True))
        else:
            cols.append(Column(f.name, _SQL_TYPES[f.type](f), nullable=True))
    return cols


enterprise_current = Table("enterprise_current", Base.metadata, *_current_columns())
# No index on region_code or industry_code: they are only ever asked for by prefix (LIKE,
# substr), which neither SQLite's LIKE nor PostgreSQL's B-tree outside the C collation can
# serve, and a bulk import would keep them up to date for every enterprise (migration 0240).
Index("ix_enterprise_current_size_class", enterprise_current.c.size_class)
