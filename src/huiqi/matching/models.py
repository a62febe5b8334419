"""Matching tables.

- ``rule_version``: every published (or draft) version of a rule: its YAML source, content hash,
  legal basis and status. Loading the library again adds a version only when the content changed.
- ``match_result``: one row per enterprise × rule: the result, the rule version and hash it came
  from, the missing fields, the per-condition outcomes packed two bits per condition, the benefit
  amount and a hash of the input values used. A row whose input hash, rule hash or evaluation
  date no longer matches is stale; the service re-evaluates instead of serving it. Only
  eligible and unknown pairs have a row: a pair without one is ineligible.
- ``match_run``: progress of a long matching run (phase, enterprises done, rows written),
  committed batch by batch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huiqi.core.db import Base, utcnow


class RuleVersion(Base):
    """One version of a rule."""

    __tablename__ = "rule_version"
    __table_args__ = (
        UniqueConstraint("rule_id", "version", name="uq_rule_version_rule_id_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(16))
    # review | published | retired | rejected | withdrawn
    status: Mapped[str] = mapped_column(String(12), default="published")
    source: Mapped[str] = mapped_column(Text)
    title_zh: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(12))
    department: Mapped[str] = mapped_column(String(100))
    doc_number: Mapped[str] = mapped_column(String(100))
    article: Mapped[str] = mapped_column(String(50))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # the publish workflow: who submitted the version, who reviewed it (the second person of the
    # department for auto_grant rules and moves), who made it take effect and who withdrew it
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    moved_from: Mapped[str | None] = mapped_column(String(100), nullable=True)


class MatchResult(Base):
    """The current result of one rule for one enterprise."""

    __tablename__ = "match_result"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "rule_id", name="uq_match_result_enterprise_id_rule_id"),
        Index("ix_match_result_rule_id_result", "rule_id", "result"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("enterprise.id", ondelete="CASCADE")
    )
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_hash: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(12))  # eligible | ineligible | unknown
    conditions: Mapped[int] = mapped_column(
        BigInteger
    )  # two bits per condition, condition j at bits 2j, 2j+1
    missing: Mapped[str] = mapped_column(Text, default="")  # comma-separated field names
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    input_hash: Mapped[str] = mapped_column(String(32))
    evaluated_on: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MatchRun(Base):
    """A matching run's progress, committed after each batch so an officer page can show it."""

    __tablename__ = "match_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), default="running")  # running | done | failed
    phase: Mapped[str] = mapped_column(String(16), default="evaluate")
    done: Mapped[int] = mapped_column(Integer, default=0)  # enterprises finished
    total: Mapped[int] = mapped_column(Integer, default=0)
    evaluated: Mapped[int] = mapped_column(BigInteger, default=0)  # enterprise × rule pairs
    written: Mapped[int] = mapped_column(BigInteger, default=0)  # result rows written
    changes: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # per phase
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def shown_status(self, now: datetime | None = None) -> str:
        """running, done, failed, or interrupted when a running run stopped beating."""
        if self.status != "running":
            return self.status
        beat = (
            self.heartbeat_at if self.heartbeat_at.tzinfo else self.heartbeat_at.replace(tzinfo=UTC)
        )
        return "interrupted" if (now or utcnow()) - beat > STALE_AFTER else "running"


STALE_AFTER = timedelta(minutes=5)  # a batch commits far more often than this
