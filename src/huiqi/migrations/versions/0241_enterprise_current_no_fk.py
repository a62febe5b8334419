"""enterprise_current's id is no longer checked against enterprise by a foreign key.

Revision ID: 0241_enterprise_current_no_fk
Revises: 0240_enterprise_current_indexes
Create Date: 2026-12-07

enterprise_current is derived data: one row per enterprise, written only in the transaction that
creates or changes the enterprise (and rebuilt from the values by ``service.refresh_current``),
and no code deletes enterprises. The foreign key checked every row of a bulk import against
enterprise (on PostgreSQL a locking look-up per row, a third of the server's work on the rows
of new enterprises) without guarding anything the writers do not already guarantee.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0241_enterprise_current_no_fk"
down_revision: str | Sequence[str] | None = "0240_enterprise_current_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "fk_enterprise_current_id_enterprise"


def upgrade() -> None:
    """Drop the foreign key of enterprise_current.id."""
    with op.batch_alter_table("enterprise_current") as batch:
        batch.drop_constraint(NAME, type_="foreignkey")


def downgrade() -> None:
    """Add it again (rows whose enterprise is gone must be deleted first)."""
    with op.batch_alter_table("enterprise_current") as batch:
        batch.create_foreign_key(NAME, "enterprise", ["id"], ["id"], ondelete="CASCADE")
