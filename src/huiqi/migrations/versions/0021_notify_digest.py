"""A notification announcing many results at once lists the rules it covers (notify_notification.covers).

Revision ID: 0021_notify_digest
Revises: 0009_notify_users
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_notify_digest"
down_revision: str | Sequence[str] | None = "0009_notify_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add notify_notification.covers."""
    with op.batch_alter_table("notify_notification") as batch:
        batch.add_column(sa.Column("covers", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop notify_notification.covers."""
    with op.batch_alter_table("notify_notification") as batch:
        batch.drop_column("covers")
