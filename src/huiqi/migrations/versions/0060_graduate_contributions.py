"""Per-graduate employer contributions, and the registry columns rules read for them and others.

Revision ID: 0060_graduate_contributions
Revises: 0008_enterprise_import
Create Date: 2026-11-29

``enterprise_graduate_hire`` gains the months of employer contributions from the hire and the
employer's basic pension, medical and unemployment amounts (财社〔2017〕164号 第七条).
``enterprise_current`` gains the catalogue fields added with them: the yearly contributions total
(``graduate_insurance_paid``), the SRDI evaluation score, last year's revenue and whether the
enterprise is an individual business. The derived columns fill in on the next refresh of each
enterprise's current row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0060_graduate_contributions"
down_revision: str | Sequence[str] | None = "0008_enterprise_import"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HIRE_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ("insured_months", sa.Integer()),
    ("pension_fen", sa.BigInteger()),
    ("medical_fen", sa.BigInteger()),
    ("unemployment_fen", sa.BigInteger()),
]
CURRENT_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    ("graduate_insurance_paid", sa.BigInteger()),
    ("srdi_score", sa.Integer()),
    ("revenue_prior_year", sa.BigInteger()),
    ("individual_business", sa.Boolean()),
]


def upgrade() -> None:
    """Add the contribution columns and the new current-frame columns."""
    with op.batch_alter_table("enterprise_graduate_hire") as batch:
        for name, kind in HIRE_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("enterprise_current") as batch:
        for name, kind in CURRENT_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("enterprise_current") as batch:
        for name, _kind in reversed(CURRENT_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("enterprise_graduate_hire") as batch:
        for name, _kind in reversed(HIRE_COLUMNS):
            batch.drop_column(name)
