"""Notifications addressed to one user (bank and officer inboxes).

Revision ID: 0009_notify_users
Revises: 0005_notify
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_notify_users"
down_revision: str | Sequence[str] | None = "0005_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Let a notification (and its outbox rows) address a user instead of an enterprise."""
    with op.batch_alter_table("notify_notification") as batch:
        batch.alter_column("credit_code", existing_type=sa.String(18), nullable=True)
        batch.add_column(sa.Column("recipient_user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_notify_notification_recipient_user_id_user_account"),
            "user_account",
            ["recipient_user_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_notify_notification_recipient_user_id"), ["recipient_user_id"])
        batch.create_check_constraint(
            op.f("ck_notify_notification_one_recipient"),
            "(credit_code IS NULL) <> (recipient_user_id IS NULL)",
        )
    with op.batch_alter_table("notify_outbox") as batch:
        batch.alter_column("credit_code", existing_type=sa.String(18), nullable=True)
        batch.add_column(sa.Column("recipient_user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_notify_outbox_recipient_user_id_user_account"),
            "user_account",
            ["recipient_user_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_notify_outbox_recipient_user_id"), ["recipient_user_id"])


def downgrade() -> None:
    """Drop user-addressed notifications (their rows go too)."""
    op.execute(sa.text("DELETE FROM notify_outbox WHERE credit_code IS NULL"))
    op.execute(sa.text("DELETE FROM notify_notification WHERE credit_code IS NULL"))
    with op.batch_alter_table("notify_outbox") as batch:
        batch.drop_index(op.f("ix_notify_outbox_recipient_user_id"))
        batch.drop_constraint(
            op.f("fk_notify_outbox_recipient_user_id_user_account"), type_="foreignkey"
        )
        batch.drop_column("recipient_user_id")
        batch.alter_column("credit_code", existing_type=sa.String(18), nullable=False)
    with op.batch_alter_table("notify_notification") as batch:
        batch.drop_constraint(op.f("ck_notify_notification_one_recipient"), type_="check")
        batch.drop_index(op.f("ix_notify_notification_recipient_user_id"))
        batch.drop_constraint(
            op.f("fk_notify_notification_recipient_user_id_user_account"), type_="foreignkey"
        )
        batch.drop_column("recipient_user_id")
        batch.alter_column("credit_code", existing_type=sa.String(18), nullable=False)
