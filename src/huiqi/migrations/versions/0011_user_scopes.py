"""Scopes of users: a region-code prefix and explicit assignments.

Revision ID: 0011_user_scopes
Revises: 0001_base
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_user_scopes"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the region prefix of a user and the table of a user's assigned items."""
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("region_prefix", sa.String(12), nullable=True))
    op.create_table(
        "user_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_user_assignment_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_assignment")),
        sa.UniqueConstraint("user_id", "kind", "ref", name=op.f("uq_user_assignment_user_id")),
    )
    op.create_index(op.f("ix_user_assignment_user_id"), "user_assignment", ["user_id"])


def downgrade() -> None:
    """Drop the assignments and the region prefix."""
    op.drop_index(op.f("ix_user_assignment_user_id"), table_name="user_assignment")
    op.drop_table("user_assignment")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("region_prefix")
