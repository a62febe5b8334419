"""Grants (免申即享): grant records, bank accounts, the append-only ledger, disbursements.

Revision ID: 0007_grants
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_grants"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0003_enterprise", "0004_matching", "0005_notify")

TZ = sa.DateTime(timezone=True)

PG_GUARD = """
CREATE FUNCTION grant_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'grant_ledger is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Create the grant tables and the triggers that keep the ledger append-only."""
    op.create_table(
        "grant_disbursement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("csv_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_disbursement")),
    )
    op.create_table(
        "grant_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("enterprise_name", sa.String(255), nullable=False),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("rule_hash", sa.String(16), nullable=False),
        sa.Column("rule_title", sa.String(300), nullable=False),
        sa.Column("legal_basis", sa.String(200), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("risk_flags", sa.JSON(), nullable=False),
        sa.Column("inputs_changed_at", TZ, nullable=True),
        sa.Column("bank_name", sa.String(100), nullable=True),
        sa.Column("account_name", sa.String(255), nullable=True),
        sa.Column("account_no", sa.String(40), nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("disbursement_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["disbursement_id"],
            ["grant_disbursement.id"],
            name=op.f("fk_grant_record_disbursement_id_grant_disbursement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_record")),
        sa.UniqueConstraint(
            "rule_id", "credit_code", "period", name="uq_grant_record_rule_id_credit_code_period"
        ),
    )
    op.create_index(op.f("ix_grant_record_credit_code"), "grant_record", ["credit_code"])
    op.create_index(op.f("ix_grant_record_rule_id"), "grant_record", ["rule_id"])
    op.create_index(op.f("ix_grant_record_status"), "grant_record", ["status"])
    op.create_index(op.f("ix_grant_record_disbursement_id"), "grant_record", ["disbursement_id"])
    op.create_table(
        "grant_bank_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("bank_name", sa.String(100), nullable=False),
        sa.Column("account_name", sa.String(255), nullable=False),
        sa.Column("account_no", sa.String(40), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_bank_account")),
        sa.UniqueConstraint("credit_code", name=op.f("uq_grant_bank_account_credit_code")),
    )
    op.create_index(op.f("ix_grant_bank_account_account_no"), "grant_bank_account", ["account_no"])
    op.create_table(
        "grant_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("status_from", sa.String(16), nullable=True),
        sa.Column("status_to", sa.String(16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grant_record.id"], name=op.f("fk_grant_ledger_grant_id_grant_record")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grant_ledger")),
        sa.UniqueConstraint("hash", name=op.f("uq_grant_ledger_hash")),
    )
    op.create_index(op.f("ix_grant_ledger_grant_id"), "grant_ledger", ["grant_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD)
        op.execute(
            "CREATE TRIGGER grant_ledger_no_change BEFORE UPDATE OR DELETE ON grant_ledger "
            "FOR EACH ROW EXECUTE FUNCTION grant_ledger_append_only()"
        )
        op.execute(
            "CREATE TRIGGER grant_ledger_no_truncate BEFORE TRUNCATE ON grant_ledger "
            "FOR EACH STATEMENT EXECUTE FUNCTION grant_ledger_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER grant_ledger_no_{action.lower()} BEFORE {action} ON grant_ledger "
                "BEGIN SELECT RAISE(ABORT, 'grant_ledger is append-only'); END"
            )


def downgrade() -> None:
    """Drop the grant tables (the ledger goes with them)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS grant_ledger_no_truncate ON grant_ledger")
        op.execute("DROP TRIGGER IF EXISTS grant_ledger_no_change ON grant_ledger")
        op.execute("DROP FUNCTION IF EXISTS grant_ledger_append_only()")
    op.drop_table("grant_ledger")
    op.drop_table("grant_bank_account")
    op.drop_table("grant_record")
    op.drop_table("grant_disbursement")
