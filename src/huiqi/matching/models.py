"""Matching tables.

- ``rule_version``: every published (or draft) version of a rule: its YAML source, content hash,
  legal basis and status. Loading the library again adds a version only when the content changed.
- ``match_layout``: the rule versions (in order, with their condition counts) a stored state
  encodes; a new layout appears when a rule is published, edited or withdrawn. A layout whose
  rows a full run found unchanged under a newer layout of the same rules and widths is moved
  to it (`moved_to`): its rows then count as the newer layout's without being rewritten.
- ``match_state``: one row per enterprise: every rule's result and every condition's outcome
  packed two bits each, the amounts of eligible 免申即享 rules and a hash of the input values
  used. Words (reasons, missing data) are rendered from the codes only when shown.
- ``match_run``: progress of a long matching run (phase, enterprises done, rows written),
  committed batch by batch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
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


class MatchLayout(Base):
    """Which rule versions, in which order and with how many conditions, a stored state encodes.

    `rules` lists [rule_id, version, hash, conditions] per position; `key` is a hash of that list
    and of each rule's resolved tests on the evaluation date, so a rule edit, a new or withdrawn
    rule, or a date that reads a rule differently each give a new layout (and a re-evaluation).

    `moved_to` names the layout (same rule ids and condition counts) that this layout's stored
    rows count as: a full run sets it once every row of the layout compared equal under the
    newer one, so a rule version that changes no codes rewrites one layout row, not every
    enterprise's. It is cleared when this layout becomes the current one again.
    """

    __tablename__ = "match_layout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    rules: Mapped[list[list[Any]]] = mapped_column(JSON)
    on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    moved_to: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MatchState(Base):
    """Every rule's current result for one enterprise, packed.

    `results` holds two bits per rule of the layout (position i at bits 2i, 2i+1 of byte i // 4:
    0 ineligible, 1 eligible, 2 unknown); `conditions` two bits per condition of every rule in
    layout order (0 false, 1 true, 2 unknown), as the batch engine computes them. `amounts` are
    the computed benefits of eligible 免申即享 rules. `input_hash` hashes the values the layout's
    rules read: a run skips an enterprise whose hash and layout are unchanged.
    """

    __tablename__ = "match_state"

    enterprise_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("enterprise.id", ondelete="CASCADE"), primary_key=True
    )
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    layout_id: Mapped[int] = mapped_column(Integer, ForeignKey("match_layout.id"), index=True)
    input_hash: Mapped[int] = mapped_column(BigInteger)
    evaluated_on: Mapped[date] = mapped_column(Date)
    results: Mapped[bytes] = mapped_column(LargeBinary)
    conditions: Mapped[bytes] = mapped_column(LargeBinary)
    amounts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    eligible: Mapped[int] = mapped_column(Integer, default=0)  # rules with an eligible result
    unknown: Mapped[int] = mapped_column(Integer, default=0)  # rules waiting for data
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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
