"""Matching: rule versions and match results.

Revision ID: 0004_matching
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_matching"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0003_enterprise",)

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create rule_version and match_result."""
    op.create_table(
        "rule_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("title_zh", sa.String(300), nullable=False),
        sa.Column("title_en", sa.String(300), nullable=False),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("doc_number", sa.String(100), nullable=False),
        sa.Column("article", sa.String(50), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rule_version"),
        sa.UniqueConstraint("rule_id", "version", name="uq_rule_version_rule_id_version"),
    )
    op.create_index("ix_rule_version_rule_id", "rule_version", ["rule_id"])
    op.create_table(
        "match_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("rule_hash", sa.String(16), nullable=False),
        sa.Column("result", sa.String(12), nullable=False),
        sa.Column("conditions", sa.BigInteger(), nullable=False),
        sa.Column("missing", sa.Text(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("input_hash", sa.String(32), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_match_result"),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name="fk_match_result_enterprise_id_enterprise",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "enterprise_id", "rule_id", name="uq_match_result_enterprise_id_rule_id"
        ),
    )
    op.create_index("ix_match_result_rule_id_result", "match_result", ["rule_id", "result"])
    op.create_index("ix_match_result_credit_code", "match_result", ["credit_code"])


def downgrade() -> None:
    """Drop the matching tables."""
    op.drop_table("match_result")
    op.drop_table("rule_version")
