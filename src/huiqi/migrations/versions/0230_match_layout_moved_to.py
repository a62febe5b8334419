"""A stored layout can be moved to a newer layout of the same rules and widths.

Revision ID: 0230_match_layout_moved_to
Revises: 0090_match_state
Create Date: 2026-12-07

``match_layout.moved_to`` names the layout whose rule versions a layout's stored rows now count
as: a full run that finds every row of a layout unchanged under a new rule version moves the
layout instead of rewriting each enterprise's row. Existing layouts move nowhere (NULL), so
stored rows keep meaning what they meant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0230_match_layout_moved_to"
down_revision: str | Sequence[str] | None = "0090_match_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add match_layout.moved_to."""
    op.add_column("match_layout", sa.Column("moved_to", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop match_layout.moved_to (rows of a moved layout are then re-evaluated once)."""
    with op.batch_alter_table("match_layout") as batch:
        batch.drop_column("moved_to")
