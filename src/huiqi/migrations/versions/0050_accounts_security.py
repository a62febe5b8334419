"""Log-in throttling by client, expiring and reusable API tokens.

Revision ID: 0050_accounts_security
Revises: 0011_user_scopes
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050_accounts_security"
down_revision: str | Sequence[str] | None = "0011_user_scopes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the client of an audit event and the seed and expiry of an API token."""
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("client", sa.String(80), nullable=True))
        batch.create_index(op.f("ix_audit_event_client"), ["client"])
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("seed", sa.String(64), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the throttling client and the token seed and expiry."""
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("seed")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_index(op.f("ix_audit_event_client"))
        batch.drop_column("client")
