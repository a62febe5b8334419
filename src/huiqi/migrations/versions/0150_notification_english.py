"""Notifications carry an English subject and body beside the Chinese ones.

Revision ID: 0150_notification_english
Revises: 0021_notify_digest
Create Date: 2026-12-07

``notify_notification.subject_en`` and ``body_en`` are written when a notification is created,
from the same data as the Chinese text; rows from before stay empty and show the Chinese text.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0150_notification_english"
down_revision: str | Sequence[str] | None = "0021_notify_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add notify_notification.subject_en and body_en."""
    with op.batch_alter_table("notify_notification") as batch:
        batch.add_column(sa.Column("subject_en", sa.String(200), nullable=True))
        batch.add_column(sa.Column("body_en", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop notify_notification.subject_en and body_en."""
    with op.batch_alter_table("notify_notification") as batch:
        batch.drop_column("body_en")
        batch.drop_column("subject_en")
