"""The registry's first grants of a subscription can be kept on it until it first changes.

Revision ID: 0250_notify_registry_grants
Revises: 0220_notify_outbox_channel_due
Create Date: 2026-12-07

``notify_subscription.registry_grants_by``: a subscription the registry sync creates for a new
enterprise records the consent the registry gave as this one value (the actor) instead of one
``notify_consent_event`` row per channel: a grant for each channel holding an address and
consent, dated by that consent. The events are written the first time the subscription
changes, before the change's own; ``notify.subscriptions.consent_history`` reads both. Existing
subscriptions keep all their events as rows (NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0250_notify_registry_grants"
down_revision: str | Sequence[str] | None = "0220_notify_outbox_channel_due"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add notify_subscription.registry_grants_by."""
    op.add_column(
        "notify_subscription",
        sa.Column("registry_grants_by", sa.String(length=64), nullable=True),
    )


def downgrade() -> None:
    """Write the kept grants as events, then drop the column."""
    op.execute(
        sa.text(
            "INSERT INTO notify_consent_event (credit_code, channel, granted, at, via, actor, address) "
            "SELECT credit_code, channel, :granted, at, 'registry', registry_grants_by, address FROM ("
            " SELECT credit_code, 1 AS n, 'email' AS channel, email_consent_at AS at, email AS address,"
            " registry_grants_by FROM notify_subscription"
            " UNION ALL SELECT credit_code, 2, 'sms', sms_consent_at, phone, registry_grants_by"
            " FROM notify_subscription"
            " UNION ALL SELECT credit_code, 3, 'webhook', webhook_consent_at, webhook_url,"
            " registry_grants_by FROM notify_subscription"
            ") AS kept WHERE registry_grants_by IS NOT NULL AND at IS NOT NULL"
            " AND address IS NOT NULL AND address <> '' ORDER BY credit_code, n"
        ).bindparams(granted=True)
    )
    with op.batch_alter_table("notify_subscription") as batch:
        batch.drop_column("registry_grants_by")
