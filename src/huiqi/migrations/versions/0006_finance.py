"""Financing matchmaking: products, needs, applications with history, consent, disclosures.

Revision ID: 0006_finance
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_finance"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0003_enterprise"


def upgrade() -> None:
    """Create the finance tables."""
    op.create_table(
        "finance_product",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution", sa.String(128), nullable=False),
        sa.Column("provider_kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("amount_min_fen", sa.BigInteger(), nullable=False),
        sa.Column("amount_max_fen", sa.BigInteger(), nullable=False),
        sa.Column("term_min_months", sa.Integer(), nullable=False),
        sa.Column("term_max_months", sa.Integer(), nullable=False),
        sa.Column("rate_base", sa.String(16), nullable=True),
        sa.Column("spread_bp", sa.Integer(), nullable=True),
        sa.Column("guarantee_fee_bp", sa.Integer(), nullable=True),
        sa.Column("collateral", sa.JSON(), nullable=False),
        sa.Column("size_classes", sa.JSON(), nullable=False),
        sa.Column("industry_prefixes", sa.JSON(), nullable=False),
        sa.Column("region_prefixes", sa.JSON(), nullable=False),
        sa.Column("required_fields", sa.JSON(), nullable=False),
        sa.Column("conditions_yaml", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.JSON(), nullable=False),
        sa.Column("decision_days", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_finance_product_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_product")),
    )
    op.create_index(op.f("ix_finance_product_institution"), "finance_product", ["institution"])
    op.create_index(op.f("ix_finance_product_kind"), "finance_product", ["kind"])
    op.create_index(op.f("ix_finance_product_status"), "finance_product", ["status"])

    op.create_table(
        "finance_need",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("collateral", sa.JSON(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("first_loan", sa.Boolean(), nullable=True),
        sa.Column("source_rule_id", sa.String(100), nullable=True),
        sa.Column("region_code", sa.String(6), nullable=True),
        sa.Column("industry_code", sa.String(4), nullable=True),
        sa.Column("size_class", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_finance_need_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_need")),
    )
    op.create_index(op.f("ix_finance_need_credit_code"), "finance_need", ["credit_code"])
    op.create_index(op.f("ix_finance_need_region_code"), "finance_need", ["region_code"])
    op.create_index(op.f("ix_finance_need_status"), "finance_need", ["status"])

    op.create_table(
        "finance_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("institution", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("eligibility", sa.String(16), nullable=False),
        sa.Column("lpr_bp", sa.Integer(), nullable=True),
        sa.Column("rate_bp", sa.Integer(), nullable=True),
        sa.Column("guarantee_fee_bp", sa.Integer(), nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("reminded_for", sa.Date(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.Column("approved_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("approved_rate_bp", sa.Integer(), nullable=True),
        sa.Column("disbursed_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("disbursed_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["finance_need.id"],
            name=op.f("fk_finance_application_need_id_finance_need"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["finance_product.id"],
            name=op.f("fk_finance_application_product_id_finance_product"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_application")),
        sa.UniqueConstraint("need_id", "product_id", name=op.f("uq_finance_application_need_id")),
    )
    for col in ("product_id", "credit_code", "institution", "status", "due_on"):
        op.create_index(op.f(f"ix_finance_application_{col}"), "finance_application", [col])

    op.create_table(
        "finance_application_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["finance_application.id"],
            name=op.f("fk_finance_application_event_application_id_finance_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_application_event")),
    )
    op.create_index(
        op.f("ix_finance_application_event_application_id"),
        "finance_application_event",
        ["application_id"],
    )

    op.create_table(
        "finance_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["finance_application.id"],
            name=op.f("fk_finance_consent_application_id_finance_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_consent")),
    )
    op.create_index(
        op.f("ix_finance_consent_application_id"), "finance_consent", ["application_id"]
    )
    op.create_index(
        "uq_finance_consent_active",
        "finance_consent",
        ["application_id", "field"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )

    op.create_table(
        "finance_disclosure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["finance_application.id"],
            name=op.f("fk_finance_disclosure_application_id_finance_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finance_disclosure")),
    )
    op.create_index(
        op.f("ix_finance_disclosure_application_id"), "finance_disclosure", ["application_id"]
    )


def downgrade() -> None:
    """Drop the finance tables."""
    op.drop_index(op.f("ix_finance_disclosure_application_id"), table_name="finance_disclosure")
    op.drop_table("finance_disclosure")
    op.drop_index("uq_finance_consent_active", table_name="finance_consent")
    op.drop_index(op.f("ix_finance_consent_application_id"), table_name="finance_consent")
    op.drop_table("finance_consent")
    op.drop_index(
        op.f("ix_finance_application_event_application_id"),
        table_name="finance_application_event",
    )
    op.drop_table("finance_application_event")
    for col in ("product_id", "credit_code", "institution", "status", "due_on"):
        op.drop_index(op.f(f"ix_finance_application_{col}"), table_name="finance_application")
    op.drop_table("finance_application")
    for col in ("credit_code", "region_code", "status"):
        op.drop_index(op.f(f"ix_finance_need_{col}"), table_name="finance_need")
    op.drop_table("finance_need")
    for col in ("institution", "kind", "status"):
        op.drop_index(op.f(f"ix_finance_product_{col}"), table_name="finance_product")
    op.drop_table("finance_product")
