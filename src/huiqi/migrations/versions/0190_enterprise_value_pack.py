"""A bulk import records a new enterprise's values as one pack instead of one row per value.

Revision ID: 0190_enterprise_value_pack
Revises: 0060_graduate_contributions
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0190_enterprise_value_pack"
down_revision: str | Sequence[str] | None = "0060_graduate_contributions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create enterprise_value_pack (existing value rows stay as they are)."""
    op.create_table(
        "enterprise_value_pack",
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=True),
        sa.Column("entries", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprise.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enterprise_id"),
    )


def downgrade() -> None:
    """Turn every pack into value rows (same provenance, still current), then drop the packs."""
    meta = sa.MetaData()
    pack = sa.Table("enterprise_value_pack", meta, autoload_with=op.get_bind())
    value = sa.Table("enterprise_value", meta, autoload_with=op.get_bind())
    conn = op.get_bind()
    rows: list[dict[str, object]] = []
    for eid, source, as_of, recorded_at, recorded_by, entries in conn.execute(
        sa.select(
            pack.c.enterprise_id, pack.c.source, pack.c.as_of, pack.c.recorded_at,
            pack.c.recorded_by, pack.c.entries,
        ).order_by(pack.c.enterprise_id)
    ):  # fmt: skip
        for entry in json.loads(entries):
            own = len(entry) == 5
            rows.append(
                {
                    "enterprise_id": eid,
                    "field": entry[0],
                    "year": int(entry[1]),
                    "value": entry[2],
                    "source": entry[3] if own else source,
                    "as_of": date.fromisoformat(entry[4]) if own else as_of,
                    "recorded_at": recorded_at,
                    "superseded_at": None,
                    "recorded_by": recorded_by,
                }
            )
        if len(rows) >= 10_000:
            conn.execute(value.insert(), rows)
            rows = []
    if rows:
        conn.execute(value.insert(), rows)
    op.drop_table("enterprise_value_pack")
