"""Financing products are versioned: an edit publishes the next version of the same family.

Revision ID: 0010_finance_versions
Revises: 0006_finance
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_finance_versions"
down_revision: str | Sequence[str] | None = "0006_finance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the family and version of each product; existing products are version 1."""
    with op.batch_alter_table("finance_product") as batch:
        batch.add_column(sa.Column("family_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.create_index(op.f("ix_finance_product_family_id"), ["family_id"])
    op.execute(sa.text("UPDATE finance_product SET family_id = id WHERE family_id IS NULL"))
    with op.batch_alter_table("finance_product") as batch:
        batch.alter_column("version", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    """Drop product versions."""
    with op.batch_alter_table("finance_product") as batch:
        batch.drop_index(op.f("ix_finance_product_family_id"))
        batch.drop_column("version")
        batch.drop_column("family_id")
