"""The outbox's due index leads with the channel, as every claim asks for one channel.

Revision ID: 0220_notify_outbox_channel_due
Revises: 0150_notification_english
Create Date: 2026-12-07

Each channel's dispatcher claims its own rows in due order. On ``(status, next_attempt_at)`` a
claim walked past every other channel's due rows to find its own; ``(channel, status,
next_attempt_at, id)`` hands it its rows in claim order (``id`` too, because a mass push queues
hundreds of thousands of rows with the same due time and PostgreSQL would otherwise sort them all
on every claim). The digest query, the only other user of the old index, names the channels.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0220_notify_outbox_channel_due"
down_revision: str | Sequence[str] | None = "0150_notification_english"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Replace ix_notify_outbox_due by ix_notify_outbox_channel_due."""
    op.create_index(
        "ix_notify_outbox_channel_due",
        "notify_outbox",
        ["channel", "status", "next_attempt_at", "id"],
    )
    op.drop_index("ix_notify_outbox_due", table_name="notify_outbox")


def downgrade() -> None:
    """Bring back ix_notify_outbox_due."""
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["status", "next_attempt_at"])
    op.drop_index("ix_notify_outbox_channel_due", table_name="notify_outbox")
