"""A call carries its performance template; an application the targets it commits to.

Revision ID: 0071_funds_performance_terms
Revises: 0070_funds
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0071_funds_performance_terms"
down_revision: str | Sequence[str] | None = "0070_funds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the JSON columns, empty for existing rows."""
    with op.batch_alter_table("funds_call") as batch:
        batch.add_column(sa.Column("performance", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("funds_application") as batch:
        batch.add_column(sa.Column("targets", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("funds_call") as batch:
        batch.alter_column("performance", server_default=None)
    with op.batch_alter_table("funds_application") as batch:
        batch.alter_column("targets", server_default=None)


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("funds_application") as batch:
        batch.drop_column("targets")
    with op.batch_alter_table("funds_call") as batch:
        batch.drop_column("performance")
