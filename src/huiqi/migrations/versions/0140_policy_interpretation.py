"""Policy interpretations (解读): an officer's text or link on a policy or one of its articles.

Revision ID: 0140_policy_interpretation
Revises: 0002_policy
Create Date: 2026-12-07

``policy_interpretation`` holds a title, a text, an optional link to a published 解读 and how to
claim, attached to a policy and, when ``article_number`` is set, to that article of it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0140_policy_interpretation"
down_revision: str | Sequence[str] | None = "0002_policy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the interpretation table."""
    op.create_table(
        "policy_interpretation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("article_number", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("how_to_claim", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policy_document.id"],
            name=op.f("fk_policy_interpretation_policy_id_policy_document"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_policy_interpretation_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_interpretation")),
    )
    op.create_index(
        op.f("ix_policy_interpretation_policy_id"), "policy_interpretation", ["policy_id"]
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_table("policy_interpretation")
