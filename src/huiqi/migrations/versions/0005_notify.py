"""Notifications: subscriptions, consent history, notifications, outbox, read receipts.

Revision ID: 0005_notify
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_notify"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0003_enterprise", "0004_matching")

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the notification tables."""
    op.create_table(
        "notify_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("webhook_url", sa.String(500), nullable=True),
        sa.Column("webhook_secret", sa.String(64), nullable=True),
        sa.Column("email_consent_at", TZ, nullable=True),
        sa.Column("sms_consent_at", TZ, nullable=True),
        sa.Column("webhook_consent_at", TZ, nullable=True),
        sa.Column("muted_topics", sa.JSON(), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_subscription")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_notify_subscription_credit_code")),
    )
    op.create_table(
        "notify_consent_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("via", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_consent_event")),
    )
    op.create_index(
        op.f("ix_notify_consent_event_credit_code"), "notify_consent_event", ["credit_code"]
    )
    op.create_table(
        "notify_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(500), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=True),
        sa.Column("rule_version", sa.String(64), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_notification")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notify_notification_dedupe_key")),
    )
    op.create_index(
        op.f("ix_notify_notification_credit_code"), "notify_notification", ["credit_code"]
    )
    op.create_index(op.f("ix_notify_notification_rule_id"), "notify_notification", ["rule_id"])
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notify_notification.id"],
            name=op.f("fk_notify_outbox_notification_id_notify_notification"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"],
            ["notify_outbox.id"],
            name=op.f("fk_notify_outbox_digest_id_notify_outbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notify_outbox_idempotency_key")),
    )
    op.create_index(op.f("ix_notify_outbox_notification_id"), "notify_outbox", ["notification_id"])
    op.create_index(op.f("ix_notify_outbox_credit_code"), "notify_outbox", ["credit_code"])
    op.create_index(op.f("ix_notify_outbox_digest_id"), "notify_outbox", ["digest_id"])
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["status", "next_attempt_at"])
    op.create_index(
        "ix_notify_outbox_cap", "notify_outbox", ["credit_code", "channel", "local_day"]
    )
    op.create_table(
        "notify_read_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notify_notification.id"],
            name=op.f("fk_notify_read_receipt_notification_id_notify_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_read_receipt")),
    )
    op.create_index(
        op.f("ix_notify_read_receipt_notification_id"), "notify_read_receipt", ["notification_id"]
    )


def downgrade() -> None:
    """Drop the notification tables."""
    op.drop_table("notify_read_receipt")
    op.drop_table("notify_outbox")
    op.drop_table("notify_notification")
    op.drop_table("notify_consent_event")
    op.drop_table("notify_subscription")
