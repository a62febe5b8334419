"""A financing need carries the idempotency key of its submission.

Revision ID: 0051_finance_need_idempotency
Revises: 0010_finance_versions
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0051_finance_need_idempotency"
down_revision: str | Sequence[str] | None = "0010_finance_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the key, unique per enterprise (NULL for needs posted without one)."""
    with op.batch_alter_table("finance_need") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(64), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_finance_need_credit_code"), ["credit_code", "idempotency_key"]
        )


def downgrade() -> None:
    """Drop the idempotency key."""
    with op.batch_alter_table("finance_need") as batch:
        batch.drop_constraint(op.f("uq_finance_need_credit_code"), type_="unique")
        batch.drop_column("idempotency_key")
