"""Special-fund tables (专项资金, 快申快享): funds, calls for applications, applications, review.

- ``funds_fund``: a special fund of one department with its legal basis, year and annual budget.
- ``funds_budget_line``: a line of a fund's budget; ``consumed_fen`` grows with awards and is
  never allowed past ``budget_fen`` (a check constraint backs the service's own check).
- ``funds_call``: a call for applications (申报通知) against one budget line: the measure and
  rule it implements, its window, quota, budget, per-award cap, and — as data — the materials
  required, the review stages, the scoring criteria and the interest-subsidy parameters.
- ``funds_application``: one enterprise's application to one call, with the registry values it
  was pre-filled with (each with source and as-of), the eligibility result, the declaration of
  truth, its place in the review and its award.
- ``funds_material``: an uploaded file of an application (checked by content, stored under the
  data folder, addressed by its SHA-256).
- ``funds_loan``: a loan an application claims an interest subsidy (贷款贴息) for.
- ``funds_review``: one decision of one reviewer at one stage (pass, return, reject, score), with
  the checks run and the reasons.
- ``funds_conflict_declaration``: an assigned expert's conflict-of-interest declaration for one
  application (the assignment itself is a ``user_assignment`` of kind ``funds_application``).
- ``funds_application_event``: the application's timeline, append-only.
- ``funds_performance_target`` / ``funds_performance_report``: the outcomes (绩效目标) an awarded
  project owes by a due date, and what it reported.
- ``funds_clawback``: money recovered from an award, recorded through the grant ledger.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huiqi.core.db import Base, utcnow
from huiqi.funds.schemas import ApplicationStatus, CallStatus, PerformanceStatus

TZ = DateTime(timezone=True)


class Fund(Base):
    """A special fund (专项资金) managed by one department for one budget year."""

    __tablename__ = "funds_fund"
    __table_args__ = (UniqueConstraint("name", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(100), index=True)
    # the document and article the fund is set up by, e.g. 甘工信发〔2020〕351号 第(七)条
    legal_basis: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(Integer)
    annual_budget_fen: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    lines: Mapped[list[BudgetLine]] = relationship(
        back_populates="fund", order_by="BudgetLine.id", cascade="all, delete-orphan"
    )


class BudgetLine(Base):
    """A line of a fund's budget; awards consume it and never past its budget."""

    __tablename__ = "funds_budget_line"
    __table_args__ = (
        UniqueConstraint("fund_id", "name"),
        CheckConstraint("consumed_fen >= 0 AND consumed_fen <= budget_fen", name="within_budget"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fund_id: Mapped[int] = mapped_column(ForeignKey("funds_fund.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    budget_fen: Mapped[int] = mapped_column(BigInteger)
    consumed_fen: Mapped[int] = mapped_column(BigInteger, default=0)

    fund: Mapped[Fund] = relationship(back_populates="lines")


class FundCall(Base):
    """A call for applications (申报通知) against one budget line, its terms held as data.

    ``materials``: ``[{"key", "name_zh", "name_en", "types": ["pdf", …], "max_mb", "required"}]``;
    ``stages``: ``[{"key", "name_zh", "name_en", "level": "county|city|province|expert",
    "days"}]`` in review order; ``criteria``: ``[{"key", "name_zh", "name_en", "max_points",
    "weight"}]``. Interest-subsidy columns are set only for a 贷款贴息 call: subsidy =
    principal × rate × days ÷ day-count basis × share, capped at ``subsidy_cap_fen``.
    """

    __tablename__ = "funds_call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fund_id: Mapped[int] = mapped_column(
        ForeignKey("funds_fund.id", ondelete="RESTRICT"), index=True
    )
    budget_line_id: Mapped[int] = mapped_column(
        ForeignKey("funds_budget_line.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    doc_number: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text)
    # the measure the call implements: its policy document, article and eligibility rule
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("policy_document.id", ondelete="SET NULL")
    )
    article_ref: Mapped[str | None] = mapped_column(String(100))
    rule_id: Mapped[str | None] = mapped_column(String(100), index=True)
    # the call itself as a document of the policy library, once published
    published_policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("policy_document.id", ondelete="SET NULL")
    )
    opens_at: Mapped[datetime] = mapped_column(TZ)
    closes_at: Mapped[datetime] = mapped_column(TZ, index=True)
    quota: Mapped[int | None] = mapped_column(Integer)
    budget_fen: Mapped[int] = mapped_column(BigInteger)
    award_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    award_kind: Mapped[str] = mapped_column(String(16), default="grant")
    materials: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # the performance template: {"targets": [{"key", "name_zh", "name_en", "unit",
    # "higher_is_better"}], "interval_months", "reports", "grace_working_days", "pass_ratio",
    # "clawback_share"}; empty when the call asks for no outcomes
    performance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    objection_days: Mapped[int] = mapped_column(Integer, default=5)
    return_days: Mapped[int] = mapped_column(Integer, default=7)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.draft, index=True)
    # 贷款贴息: "contract" (the loan's own rate) or "lpr_1y"/"lpr_5y" (the LPR of the loan's start)
    subsidy_rate_basis: Mapped[str | None] = mapped_column(String(16))
    subsidy_day_count: Mapped[int | None] = mapped_column(Integer)  # 360 or 365
    subsidy_share: Mapped[str | None] = mapped_column(String(16))  # Decimal text, e.g. "0.5"
    subsidy_cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[datetime | None] = mapped_column(TZ)
    publicity_from: Mapped[date | None] = mapped_column(Date)
    publicity_to: Mapped[date | None] = mapped_column(Date)
    awarded_at: Mapped[datetime | None] = mapped_column(TZ)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    fund: Mapped[Fund] = relationship()
    budget_line: Mapped[BudgetLine] = relationship()


class FundApplication(Base):
    """One enterprise's application to one call, from draft to payment."""

    __tablename__ = "funds_application"
    # One application per (enterprise, idempotency key): a repeated submission finds the first.
    __table_args__ = (UniqueConstraint("credit_code", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(
        ForeignKey("funds_call.id", ondelete="RESTRICT"), index=True
    )
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    enterprise_name: Mapped[str] = mapped_column(String(255), default="")
    # copied at submission, so a reviewer's region scope and the dashboards see them unchanged
    region_code: Mapped[str | None] = mapped_column(String(12), index=True)
    industry_code: Mapped[str | None] = mapped_column(String(4))
    size_class: Mapped[str | None] = mapped_column(String(16))
    # the project, for duplicate-funding checks across calls (enterprise + code or contract)
    project_name: Mapped[str] = mapped_column(String(300), default="")
    project_code: Mapped[str | None] = mapped_column(String(100), index=True)
    contract_no: Mapped[str | None] = mapped_column(String(100), index=True)
    requested_fen: Mapped[int | None] = mapped_column(BigInteger)
    # the outcomes the enterprise commits to: target key (of the call's template) → value text
    targets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ApplicationStatus.draft, index=True)
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    stage_entered_at: Mapped[datetime | None] = mapped_column(TZ)
    # {field: {"value", "source", "as_of", "self_reported": bool}} as shown when filled
    prefill: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"field", "value", "previous", "at"}]: corrections the enterprise self-reported
    corrections: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    eligibility: Mapped[str | None] = mapped_column(String(16))  # eligible | unknown | ineligible
    eligibility_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    declared_by: Mapped[str | None] = mapped_column(String(64))
    declared_at: Mapped[datetime | None] = mapped_column(TZ)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(TZ, index=True)
    return_deadline: Mapped[date | None] = mapped_column(Date)
    decision_reason: Mapped[str | None] = mapped_column(Text)  # what the enterprise is told
    score_x100: Mapped[int | None] = mapped_column(Integer)  # total score in hundredths
    rank: Mapped[int | None] = mapped_column(Integer)
    award_fen: Mapped[int | None] = mapped_column(BigInteger)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grant_record.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    call: Mapped[FundCall] = relationship()
    materials: Mapped[list[FundMaterial]] = relationship(
        back_populates="application", order_by="FundMaterial.id", cascade="all, delete-orphan"
    )
    loans: Mapped[list[FundLoan]] = relationship(
        back_populates="application", order_by="FundLoan.id", cascade="all, delete-orphan"
    )


class FundMaterial(Base):
    """A file uploaded with an application, checked by its content and stored by hash."""

    __tablename__ = "funds_material"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))  # the call's material key
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_path: Mapped[str] = mapped_column(String(500))  # relative to the data folder
    uploaded_by: Mapped[str | None] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    application: Mapped[FundApplication] = relationship(back_populates="materials")


class FundLoan(Base):
    """A loan an application claims an interest subsidy (贷款贴息) for."""

    __tablename__ = "funds_loan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    lender: Mapped[str] = mapped_column(String(128))
    contract_no: Mapped[str] = mapped_column(String(100))
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    annual_rate: Mapped[str] = mapped_column(String(16))  # Decimal text, e.g. "0.0345"
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    subsidy_fen: Mapped[int | None] = mapped_column(BigInteger)  # computed when reviewed
    entered_by: Mapped[str | None] = mapped_column(String(64))  # the enterprise or the lender
    entered_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)

    application: Mapped[FundApplication] = relationship(back_populates="loans")


class FundReview(Base):
    """One reviewer's decision at one stage, with its checks, scores and reasons."""

    __tablename__ = "funds_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    stage_index: Mapped[int] = mapped_column(Integer)
    stage_key: Mapped[str] = mapped_column(String(32))
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    reviewer_name: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))  # schemas.ReviewDecision
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # criterion key → points
    score_x100: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[str] = mapped_column(Text, default="")
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    return_deadline: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class ConflictDeclaration(Base):
    """An assigned expert's conflict-of-interest declaration for one application."""

    __tablename__ = "funds_conflict_declaration"
    __table_args__ = (UniqueConstraint("application_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    has_conflict: Mapped[bool] = mapped_column(Boolean)
    statement: Mapped[str] = mapped_column(Text, default="")
    declared_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class FundApplicationEvent(Base):
    """A step of an application's timeline (append-only): who did what, when."""

    __tablename__ = "funds_application_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # schemas.EventKind
    status_from: Mapped[str | None] = mapped_column(String(16))
    status_to: Mapped[str | None] = mapped_column(String(16))
    stage_index: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(TZ, default=utcnow, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PerformanceTarget(Base):
    """Outcomes (绩效目标) an awarded project owes by a due date."""

    __tablename__ = "funds_performance_target"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    due_on: Mapped[date] = mapped_column(Date, index=True)
    # [{"key", "name_zh", "name_en", "unit", "target"}]
    targets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=PerformanceStatus.pending, index=True)
    assessed_by: Mapped[str | None] = mapped_column(String(64))
    assessed_at: Mapped[datetime | None] = mapped_column(TZ)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class PerformanceReport(Base):
    """What an awarded project reported against its targets."""

    __tablename__ = "funds_performance_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(
        ForeignKey("funds_performance_target.id", ondelete="CASCADE"), index=True
    )
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # target key → reported
    note: Mapped[str] = mapped_column(Text, default="")
    reported_by: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    late: Mapped[bool] = mapped_column(Boolean, default=False)


class Clawback(Base):
    """Money recovered from an award; the grant ledger entry is the authoritative record."""

    __tablename__ = "funds_clawback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("funds_application.id", ondelete="CASCADE"), index=True
    )
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grant_record.id", ondelete="SET NULL"))
    ledger_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("grant_ledger.id", ondelete="SET NULL")
    )
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
