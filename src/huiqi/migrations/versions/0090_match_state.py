"""Matching results stored packed, one row per enterprise (match_state, match_layout).

Revision ID: 0090_match_state
Revises: 0061_rule_review
Create Date: 2026-12-07

Stored results are derived data: the rows of match_result are dropped and the next matching run
(`huiqi match run`) stores every enterprise's state again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0090_match_state"
down_revision: str | Sequence[str] | None = "0061_rule_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create match_layout and match_state; drop match_result."""
    op.create_table(
        "match_layout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_layout")),
        sa.UniqueConstraint("key", name=op.f("uq_match_layout_key")),
    )
    op.create_table(
        "match_state",
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("layout_id", sa.Integer(), nullable=False),
        sa.Column("input_hash", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_on", sa.Date(), nullable=False),
        sa.Column("results", sa.LargeBinary(), nullable=False),
        sa.Column("conditions", sa.LargeBinary(), nullable=False),
        sa.Column("amounts", sa.JSON(), nullable=False),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprise.id"],
            name=op.f("fk_match_state_enterprise_id_enterprise"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["layout_id"], ["match_layout.id"], name=op.f("fk_match_state_layout_id_match_layout")
        ),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_match_state")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_match_state_credit_code")),
    )
    op.create_index(op.f("ix_match_state_layout_id"), "match_state", ["layout_id"])
    op.drop_table("match_result")


def downgrade() -> None:
    """Restore an empty match_result; drop the packed tables."""
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
    op.drop_index(op.f("ix_match_state_layout_id"), table_name="match_state")
    op.drop_table("match_state")
    op.drop_table("match_layout")
