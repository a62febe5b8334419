"""Grant tables.

- ``grant_record``: one no-application benefit for one enterprise, rule and period, with the
  amount in fen, the rule version, and a snapshot of every input value used (recomputing from the
  snapshot gives the same amount). Approved grants are never altered; changed inputs raise a flag.
- ``grant_bank_account``: the account an enterprise receives grants on (the registry keeps none).
- ``grant_ledger``: append-only history of every state change, chained per grant with keyed
  hashes (HMAC-SHA256, key outside the database); database triggers refuse UPDATE and DELETE on it.
- ``grant_ledger_head``: per grant, how many entries its chain has and the last hash, under the
  ledger key, written in the same transaction as each entry: a deleted last entry shows.
- ``grant_disbursement``: a disbursement batch (the file handed to the paying department).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from huiqi.core.db import Base, utcnow


class GrantStatus(StrEnum):
    """Life of a grant."""

    pending = "pending"  # computed, waiting for an officer's review
    approved = "approved"
    rejected = "rejected"
    disbursed = "disbursed"  # included in a disbursement file


STATUS_LABELS: dict[str, tuple[str, str]] = {
    GrantStatus.pending: ("待审核", "Pending review"),
    GrantStatus.approved: ("已批准", "Approved"),
    GrantStatus.rejected: ("已驳回", "Rejected"),
    GrantStatus.disbursed: ("已拨付", "Disbursed"),
}


class Grant(Base):
    """A no-application benefit computed for one enterprise."""

    __tablename__ = "grant_record"
    __table_args__ = (
        UniqueConstraint(
            "rule_id", "credit_code", "period", name="uq_grant_record_rule_id_credit_code_period"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(255), default="")
    rule_id: Mapped[str] = mapped_column(String(100), index=True)
    rule_version: Mapped[int] = mapped_column(Integer)
    rule_hash: Mapped[str] = mapped_column(String(16))
    rule_title: Mapped[str] = mapped_column(String(300), default="")
    legal_basis: Mapped[str] = mapped_column(String(200), default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    period: Mapped[int] = mapped_column(Integer)  # the figures year the benefit is for
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=GrantStatus.pending, index=True)
    risk_flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    inputs_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bank_name: Mapped[str | None] = mapped_column(String(100))
    account_name: Mapped[str | None] = mapped_column(String(255))
    account_no: Mapped[str | None] = mapped_column(String(40))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_reason: Mapped[str | None] = mapped_column(Text)
    disbursement_id: Mapped[int | None] = mapped_column(
        ForeignKey("grant_disbursement.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BankAccount(Base):
    """Where an enterprise receives its grants."""

    __tablename__ = "grant_bank_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    bank_name: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(255))
    account_no: Mapped[str] = mapped_column(String(40), index=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """One state change of a grant; never updated or deleted."""

    __tablename__ = "grant_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grant_record.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64))
    status_from: Mapped[str | None] = mapped_column(String(16))
    status_to: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "hmac-sha256" (keyed); "sha256" only for entries written before the ledger was keyed
    alg: Mapped[str] = mapped_column(String(16), server_default="sha256")


class LedgerHead(Base):
    """The anchored end of one grant's chain: entry count and last hash, sealed with the key."""

    __tablename__ = "grant_ledger_head"

    grant_id: Mapped[int] = mapped_column(ForeignKey("grant_record.id"), primary_key=True)
    entries: Mapped[int] = mapped_column(Integer)
    # entries sealed by `huiqi grants rekey` with their unkeyed hashes (0 for new grants)
    legacy_entries: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Disbursement(Base):
    """A disbursement batch: which approved grants went to the paying department, and when."""

    __tablename__ = "grant_disbursement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    csv_sha256: Mapped[str] = mapped_column(String(64))
