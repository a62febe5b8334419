"""enterprise_current loses its indexes on region and industry code, which no query can use.

Revision ID: 0240_enterprise_current_indexes
Revises: 0190_enterprise_value_pack
Create Date: 2026-12-07

Every reader of these columns asks for a prefix (``LIKE '62%'``, ``substr(…)``): SQLite's LIKE is
case-insensitive and PostgreSQL's plain B-tree serves LIKE only under the C collation, so both
plan a scan of the table either way, while a bulk import kept both indexes up to date for every
enterprise (about a quarter of the server's work on enterprise_current rows). The index on
size_class (equality) stays.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0240_enterprise_current_indexes"
down_revision: str | Sequence[str] | None = "0190_enterprise_value_pack"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("region_code", "industry_code")


def upgrade() -> None:
    """Drop the region and industry code indexes of enterprise_current."""
    for col in COLUMNS:
        op.drop_index(f"ix_enterprise_current_{col}", table_name="enterprise_current")


def downgrade() -> None:
    """Create them again."""
    for col in COLUMNS:
        op.create_index(f"ix_enterprise_current_{col}", "enterprise_current", [col])
