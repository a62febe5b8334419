"""Keyed grant ledger: the hash algorithm of each entry and an anchored head per grant.

Entries written before this revision keep their unkeyed SHA-256 hashes (``alg = 'sha256'``);
`huiqi grants rekey` checks those chains and seals each under the ledger key with a head row.

Revision ID: 0040_grant_ledger_keys
Revises: 0007_grants
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040_grant_ledger_keys"
down_revision: str | Sequence[str] | None = "0007_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add grant_ledger.alg and create grant_ledger_head."""
    # a plain ADD COLUMN (no table copy) keeps the append-only triggers in place
    op.add_column(
        "grant_ledger",
        sa.Column("alg", sa.String(16), server_default="sha256", nullable=False),
    )
    op.create_table(
        "grant_ledger_head",
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("legacy_entries", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grant_record.id"],
            name=op.f("fk_grant_ledger_head_grant_id_grant_record"),
        ),
        sa.PrimaryKeyConstraint("grant_id", name=op.f("pk_grant_ledger_head")),
    )


def downgrade() -> None:
    """Drop grant_ledger_head and grant_ledger.alg."""
    op.drop_table("grant_ledger_head")
    # in place (SQLite 3.35+ too, no table copy), so the append-only triggers survive
    op.drop_column("grant_ledger", "alg")
