"""Rule versions record who submitted, reviewed, published or withdrew them, and department moves.

Revision ID: 0061_rule_review
Revises: 0020_match_run
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0061_rule_review"
down_revision: str | Sequence[str] | None = "0020_match_run"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ("submitted_by", sa.String(64)),
    ("submitted_at", sa.DateTime(timezone=True)),
    ("reviewed_by", sa.String(64)),
    ("reviewed_at", sa.DateTime(timezone=True)),
    ("review_note", sa.Text()),
    ("published_by", sa.String(64)),
    ("published_at", sa.DateTime(timezone=True)),
    ("withdrawn_by", sa.String(64)),
    ("withdrawn_at", sa.DateTime(timezone=True)),
    ("moved_from", sa.String(100)),
]


def upgrade() -> None:
    """Add the review columns to rule_version."""
    with op.batch_alter_table("rule_version") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop the review columns."""
    with op.batch_alter_table("rule_version") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
