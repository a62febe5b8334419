"""Import jobs record a heartbeat, so a job whose process died shows as interrupted.

Revision ID: 0008_enterprise_import
Revises: 0003_enterprise
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_enterprise_import"
down_revision: str | Sequence[str] | None = "0003_enterprise"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add enterprise_import.heartbeat_at."""
    with op.batch_alter_table("enterprise_import") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop enterprise_import.heartbeat_at."""
    with op.batch_alter_table("enterprise_import") as batch:
        batch.drop_column("heartbeat_at")
