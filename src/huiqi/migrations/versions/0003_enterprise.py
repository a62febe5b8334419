"""Enterprise registry: enterprises, value history, graduate hires, import jobs, current frame.

Revision ID: 0003_enterprise
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_enterprise"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The field-contract columns of enterprise_current as of this revision (name, type).
CURRENT_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ("name", sa.String(255)),
    ("region_code", sa.String(6)),
    ("industry_code", sa.String(4)),
    ("founded_on", sa.Date()),
    ("registered_capital", sa.BigInteger()),
    ("ownership_type", sa.String(16)),
    ("figures_year", sa.Integer()),
    ("employees", sa.Integer()),
    ("revenue", sa.BigInteger()),
    ("total_assets", sa.BigInteger()),
    ("rd_expense", sa.BigInteger()),
    ("taxable_income", sa.BigInteger()),
    ("export_revenue", sa.BigInteger()),
    ("tax_credit_rating", sa.String(16)),
    ("cert_high_tech_from", sa.Date()),
    ("cert_high_tech_to", sa.Date()),
    ("cert_tech_sme_from", sa.Date()),
    ("cert_tech_sme_to", sa.Date()),
    ("cert_innovative_sme_from", sa.Date()),
    ("cert_innovative_sme_to", sa.Date()),
    ("cert_srdi_sme_from", sa.Date()),
    ("cert_srdi_sme_to", sa.Date()),
    ("cert_little_giant_from", sa.Date()),
    ("cert_little_giant_to", sa.Date()),
    ("graduate_hires", sa.Integer()),
    ("size_class", sa.String(16)),
    ("above_scale", sa.Boolean()),
]


def upgrade() -> None:
    """Create the enterprise tables."""
    op.create_table(
        "enterprise",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_enterprise_credit_code")),
    )
    op.create_table(
        "enterprise_value",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by", sa.String(128), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name=op.f("fk_enterprise_value_enterprise_id_enterprise"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_value")),
    )
    op.create_index(
        op.f("ix_enterprise_value_enterprise_id"), "enterprise_value", ["enterprise_id"]
    )
    op.create_index(
        "uq_enterprise_value_current",
        "enterprise_value",
        ["enterprise_id", "field", "year"],
        unique=True,
        sqlite_where=sa.text("superseded_at IS NULL"),
        postgresql_where=sa.text("superseded_at IS NULL"),
    )
    op.create_table(
        "enterprise_graduate_hire",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("person_ref", sa.String(64), nullable=False),
        sa.Column("graduated_on", sa.Date(), nullable=False),
        sa.Column("hired_on", sa.Date(), nullable=False),
        sa.Column("contract_months", sa.Integer(), nullable=False),
        sa.Column("social_insurance", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name=op.f("fk_enterprise_graduate_hire_enterprise_id_enterprise"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_graduate_hire")),
    )
    op.create_index(
        op.f("ix_enterprise_graduate_hire_enterprise_id"),
        "enterprise_graduate_hire",
        ["enterprise_id"],
    )
    op.create_table(
        "enterprise_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_seen", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error_report", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_import")),
    )
    op.create_table(
        "enterprise_current",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        *[sa.Column(name, type_, nullable=True) for name, type_ in CURRENT_COLUMNS],
        sa.ForeignKeyConstraint(
            ["id"],
            ["enterprise.id"],
            name=op.f("fk_enterprise_current_id_enterprise"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_current")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_enterprise_current_credit_code")),
    )
    for col in ("region_code", "industry_code", "size_class"):
        op.create_index(f"ix_enterprise_current_{col}", "enterprise_current", [col])


def downgrade() -> None:
    """Drop the enterprise tables."""
    for col in ("region_code", "industry_code", "size_class"):
        op.drop_index(f"ix_enterprise_current_{col}", table_name="enterprise_current")
    op.drop_table("enterprise_current")
    op.drop_table("enterprise_import")
    op.drop_index(
        op.f("ix_enterprise_graduate_hire_enterprise_id"), table_name="enterprise_graduate_hire"
    )
    op.drop_table("enterprise_graduate_hire")
    op.drop_index("uq_enterprise_value_current", table_name="enterprise_value")
    op.drop_index(op.f("ix_enterprise_value_enterprise_id"), table_name="enterprise_value")
    op.drop_table("enterprise_value")
    op.drop_table("enterprise")
