"""Financing tables.

- ``finance_product``: a loan or guarantee product published by a bank or guarantee agency; its
  eligibility is rule-language text (``conditions_yaml``) plus the structured size/industry/region
  limits, evaluated by the rules engine. Editing a product stores a new version (a new row of the
  same ``family_id``); the old row is kept as ``superseded`` so applications made against it keep
  the terms they were made on.
- ``finance_need``: an enterprise's financing need (amount, term, purpose, collateral, deadline).
- ``finance_application``: one need addressed to one product; unique per need × product, so a
  repeated submission finds the existing application instead of creating another.
- ``finance_application_event``: every status change and reminder, append-only.
- ``finance_consent``: field-level consent to share profile fields with the addressed lender; a
  revoked row keeps its ``revoked_at`` and sharing stops from that moment.
- ``finance_disclosure``: each time a lender was shown an application's shared fields, and which.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huiqi.core.db import Base, utcnow


class ProductKind(StrEnum):
    """Kinds of financing named by seed articles (十三), (十八) and (十九)."""

    credit_loan = "credit_loan"
    tax_bank = "tax_bank"
    ip_pledge = "ip_pledge"
    receivables = "receivables"
    supply_chain = "supply_chain"
    guarantee = "guarantee"
    startup_guarantee_loan = "startup_guarantee_loan"
    other = "other"


KIND_LABELS: dict[str, tuple[str, str]] = {
    ProductKind.credit_loan: ("信用贷款", "Credit loan"),
    ProductKind.tax_bank: ("银税互动贷款", "Tax-credit loan"),
    ProductKind.ip_pledge: ("知识产权质押贷款", "IP-pledge loan"),
    ProductKind.receivables: ("应收账款融资", "Receivables financing"),
    ProductKind.supply_chain: ("供应链融资", "Supply-chain financing"),
    ProductKind.guarantee: ("融资担保", "Financing guarantee"),
    ProductKind.startup_guarantee_loan: ("创业担保贷款", "Start-up guaranteed loan"),
    ProductKind.other: ("其他融资", "Other financing"),
}


class Collateral(StrEnum):
    """What an enterprise offers, or a product accepts, as security; none = credit only."""

    none = "none"
    ip = "ip"
    receivables = "receivables"
    inventory = "inventory"
    equipment = "equipment"
    property = "property"
    equity = "equity"
    guarantee = "guarantee"


COLLATERAL_LABELS: dict[str, tuple[str, str]] = {
    Collateral.none: ("无需抵押(信用)", "None (credit)"),
    Collateral.ip: ("知识产权(专利、商标)", "Intellectual property"),
    Collateral.receivables: ("应收账款", "Receivables"),
    Collateral.inventory: ("存货、仓单、订单", "Inventory, warehouse receipts, orders"),
    Collateral.equipment: ("机器设备等动产", "Equipment and movables"),
    Collateral.property: ("不动产", "Real estate"),
    Collateral.equity: ("股权", "Equity"),
    Collateral.guarantee: ("第三方或担保机构保证", "Third-party or agency guarantee"),
}


class ProviderKind(StrEnum):
    """Who offers a product."""

    bank = "bank"
    guarantee = "guarantee"


class ProductStatus(StrEnum):
    """Whether enterprises can see and apply to a product."""

    published = "published"
    withdrawn = "withdrawn"
    superseded = "superseded"  # replaced by a newer version of the same product


class AppStatus(StrEnum):
    """Application states; declined, disbursed and withdrawn are final."""

    submitted = "submitted"
    accepted = "accepted"
    approved = "approved"
    declined = "declined"
    disbursed = "disbursed"
    withdrawn = "withdrawn"


STATUS_LABELS: dict[str, tuple[str, str]] = {
    AppStatus.submitted: ("已提交", "Submitted"),
    AppStatus.accepted: ("已受理", "Accepted"),
    AppStatus.approved: ("已批准", "Approved"),
    AppStatus.declined: ("未获批准", "Declined"),
    AppStatus.disbursed: ("已放款", "Disbursed"),
    AppStatus.withdrawn: ("已撤回", "Withdrawn"),
}

FINAL_STATUSES = frozenset({AppStatus.declined, AppStatus.disbursed, AppStatus.withdrawn})


class Product(Base):
    """A financing product; rates are LPR + spread in basis points, money in fen."""

    __tablename__ = "finance_product"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the id of the product's first version, shared by all its versions
    family_id: Mapped[int | None] = mapped_column(Integer, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    institution: Mapped[str] = mapped_column(String(128), index=True)
    provider_kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    amount_min_fen: Mapped[int] = mapped_column(BigInteger)
    amount_max_fen: Mapped[int] = mapped_column(BigInteger)
    term_min_months: Mapped[int] = mapped_column(Integer)
    term_max_months: Mapped[int] = mapped_column(Integer)
    # lpr_1y or lpr_5y (a dated parameter) for loans; None for a guarantee without a loan rate.
    rate_base: Mapped[str | None] = mapped_column(String(16))
    spread_bp: Mapped[int | None] = mapped_column(Integer)
    guarantee_fee_bp: Mapped[int | None] = mapped_column(Integer)
    collateral: Mapped[list[str]] = mapped_column(JSON, default=list)
    size_classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    industry_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    conditions_yaml: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    decision_days: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=ProductStatus.published, index=True)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Need(Base):
    """An enterprise's financing need; region, industry and size are copied when it is posted."""

    __tablename__ = "finance_need"
    # One need per (enterprise, idempotency key): a repeated submission finds the first one.
    __table_args__ = (UniqueConstraint("credit_code", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text)
    collateral: Mapped[list[str]] = mapped_column(JSON, default=list)
    deadline: Mapped[date | None] = mapped_column(Date)
    first_loan: Mapped[bool | None] = mapped_column(Boolean)
    source_rule_id: Mapped[str | None] = mapped_column(String(100))
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    industry_code: Mapped[str | None] = mapped_column(String(4))
    size_class: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Application(Base):
    """One need sent to one product; the terms quoted at submission are kept."""

    __tablename__ = "finance_application"
    __table_args__ = (UniqueConstraint("need_id", "product_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("finance_need.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(
        ForeignKey("finance_product.id", ondelete="RESTRICT"), index=True
    )
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    institution: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    term_months: Mapped[int] = mapped_column(Integer)
    eligibility: Mapped[str] = mapped_column(String(16))
    lpr_bp: Mapped[int | None] = mapped_column(Integer)
    rate_bp: Mapped[int | None] = mapped_column(Integer)
    guarantee_fee_bp: Mapped[int | None] = mapped_column(Integer)
    submitted_on: Mapped[date] = mapped_column(Date)
    decided_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date, index=True)
    reminded_for: Mapped[date | None] = mapped_column(Date)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    approved_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    approved_rate_bp: Mapped[int | None] = mapped_column(Integer)
    disbursed_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    disbursed_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    need: Mapped[Need] = relationship()
    product: Mapped[Product] = relationship()


class ApplicationEvent(Base):
    """A recorded step of an application: a transition or a reminder."""

    __tablename__ = "finance_application_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("finance_application.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # transition | reminder | consent
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[date | None] = mapped_column(Date)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Consent(Base):
    """Consent to share one profile field with the lender of one application."""

    __tablename__ = "finance_consent"
    __table_args__ = (
        Index(
            "uq_finance_consent_active",
            "application_id",
            "field",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("finance_application.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    granted_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(Integer)


class Disclosure(Base):
    """A lender was shown these consented fields of an application at this moment."""

    __tablename__ = "finance_disclosure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("finance_application.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
