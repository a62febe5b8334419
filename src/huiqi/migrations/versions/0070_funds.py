"""Special funds (专项资金, 快申快享): funds, budget lines, calls, applications, review, performance.

Revision ID: 0070_funds
Revises: 0001_base
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0070_funds"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("0002_policy", "0007_grants")

TZ = sa.DateTime(timezone=True)

TABLES = (
    "funds_performance_report",
    "funds_review",
    "funds_performance_target",
    "funds_material",
    "funds_loan",
    "funds_conflict_declaration",
    "funds_clawback",
    "funds_application_event",
    "funds_application",
    "funds_call",
    "funds_budget_line",
    "funds_fund",
)


def upgrade() -> None:
    """Create the special-fund tables."""
    op.create_table(
        "funds_fund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("annual_budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_funds_fund_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_fund")),
        sa.UniqueConstraint("name", "year", name=op.f("uq_funds_fund_name")),
    )
    with op.batch_alter_table("funds_fund", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funds_fund_department"), ["department"], unique=False)

    op.create_table(
        "funds_budget_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("consumed_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "consumed_fen >= 0 AND consumed_fen <= budget_fen",
            name=op.f("ck_funds_budget_line_within_budget"),
        ),
        sa.ForeignKeyConstraint(
            ["fund_id"],
            ["funds_fund.id"],
            name=op.f("fk_funds_budget_line_fund_id_funds_fund"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_budget_line")),
        sa.UniqueConstraint("fund_id", "name", name=op.f("uq_funds_budget_line_fund_id")),
    )
    op.create_table(
        "funds_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fund_id", sa.Integer(), nullable=False),
        sa.Column("budget_line_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("doc_number", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("article_ref", sa.String(length=100), nullable=True),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("published_policy_id", sa.Integer(), nullable=True),
        sa.Column("opens_at", TZ, nullable=False),
        sa.Column("closes_at", TZ, nullable=False),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("award_cap_fen", sa.BigInteger(), nullable=True),
        sa.Column("award_kind", sa.String(length=16), nullable=False),
        sa.Column("materials", sa.JSON(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("objection_days", sa.Integer(), nullable=False),
        sa.Column("return_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subsidy_rate_basis", sa.String(length=16), nullable=True),
        sa.Column("subsidy_day_count", sa.Integer(), nullable=True),
        sa.Column("subsidy_share", sa.String(length=16), nullable=True),
        sa.Column("subsidy_cap_fen", sa.BigInteger(), nullable=True),
        sa.Column("published_at", TZ, nullable=True),
        sa.Column("publicity_from", sa.Date(), nullable=True),
        sa.Column("publicity_to", sa.Date(), nullable=True),
        sa.Column("awarded_at", TZ, nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_line_id"],
            ["funds_budget_line.id"],
            name=op.f("fk_funds_call_budget_line_id_funds_budget_line"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_funds_call_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["fund_id"],
            ["funds_fund.id"],
            name=op.f("fk_funds_call_fund_id_funds_fund"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policy_document.id"],
            name=op.f("fk_funds_call_policy_id_policy_document"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["published_policy_id"],
            ["policy_document.id"],
            name=op.f("fk_funds_call_published_policy_id_policy_document"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_call")),
    )
    with op.batch_alter_table("funds_call", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_call_budget_line_id"), ["budget_line_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_funds_call_closes_at"), ["closes_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_funds_call_fund_id"), ["fund_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_funds_call_rule_id"), ["rule_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_funds_call_status"), ["status"], unique=False)

    op.create_table(
        "funds_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("credit_code", sa.String(length=18), nullable=False),
        sa.Column("enterprise_name", sa.String(length=255), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column("industry_code", sa.String(length=4), nullable=True),
        sa.Column("size_class", sa.String(length=16), nullable=True),
        sa.Column("project_name", sa.String(length=300), nullable=False),
        sa.Column("project_code", sa.String(length=100), nullable=True),
        sa.Column("contract_no", sa.String(length=100), nullable=True),
        sa.Column("requested_fen", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("stage_entered_at", TZ, nullable=True),
        sa.Column("prefill", sa.JSON(), nullable=False),
        sa.Column("corrections", sa.JSON(), nullable=False),
        sa.Column("eligibility", sa.String(length=16), nullable=True),
        sa.Column("eligibility_reasons", sa.JSON(), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=True),
        sa.Column("declared_at", TZ, nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("return_deadline", sa.Date(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("score_x100", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("award_fen", sa.BigInteger(), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["funds_call.id"],
            name=op.f("fk_funds_application_call_id_funds_call"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_funds_application_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grant_record.id"],
            name=op.f("fk_funds_application_grant_id_grant_record"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_application")),
        sa.UniqueConstraint(
            "credit_code", "idempotency_key", name=op.f("uq_funds_application_credit_code")
        ),
    )
    with op.batch_alter_table("funds_application", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_funds_application_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_funds_application_contract_no"), ["contract_no"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funds_application_credit_code"), ["credit_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funds_application_project_code"), ["project_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funds_application_region_code"), ["region_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_funds_application_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_funds_application_submitted_at"), ["submitted_at"], unique=False
        )

    op.create_table(
        "funds_application_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status_from", sa.String(length=16), nullable=True),
        sa.Column("status_to", sa.String(length=16), nullable=True),
        sa.Column("stage_index", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_application_event_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_application_event")),
    )
    with op.batch_alter_table("funds_application_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_application_event_application_id"),
            ["application_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_funds_application_event_at"), ["at"], unique=False)

    op.create_table(
        "funds_clawback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.Column("ledger_entry_id", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_clawback_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grant_record.id"],
            name=op.f("fk_funds_clawback_grant_id_grant_record"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ledger_entry_id"],
            ["grant_ledger.id"],
            name=op.f("fk_funds_clawback_ledger_entry_id_grant_ledger"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_clawback")),
    )
    with op.batch_alter_table("funds_clawback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_clawback_application_id"), ["application_id"], unique=False
        )

    op.create_table(
        "funds_conflict_declaration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("has_conflict", sa.Boolean(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("declared_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_conflict_declaration_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_funds_conflict_declaration_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_conflict_declaration")),
        sa.UniqueConstraint(
            "application_id", "user_id", name=op.f("uq_funds_conflict_declaration_application_id")
        ),
    )
    with op.batch_alter_table("funds_conflict_declaration", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_conflict_declaration_application_id"),
            ["application_id"],
            unique=False,
        )

    op.create_table(
        "funds_loan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("lender", sa.String(length=128), nullable=False),
        sa.Column("contract_no", sa.String(length=100), nullable=False),
        sa.Column("principal_fen", sa.BigInteger(), nullable=False),
        sa.Column("annual_rate", sa.String(length=16), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("subsidy_fen", sa.BigInteger(), nullable=True),
        sa.Column("entered_by", sa.String(length=64), nullable=True),
        sa.Column("entered_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_loan_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_loan")),
    )
    with op.batch_alter_table("funds_loan", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_loan_application_id"), ["application_id"], unique=False
        )

    op.create_table(
        "funds_material",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=True),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_material_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_material")),
    )
    with op.batch_alter_table("funds_material", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_material_application_id"), ["application_id"], unique=False
        )

    op.create_table(
        "funds_performance_target",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assessed_by", sa.String(length=64), nullable=True),
        sa.Column("assessed_at", TZ, nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_performance_target_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_performance_target")),
    )
    with op.batch_alter_table("funds_performance_target", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_performance_target_application_id"),
            ["application_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_funds_performance_target_due_on"), ["due_on"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funds_performance_target_status"), ["status"], unique=False
        )

    op.create_table(
        "funds_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("stage_index", sa.Integer(), nullable=False),
        sa.Column("stage_key", sa.String(length=32), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_name", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("score_x100", sa.Integer(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("return_deadline", sa.Date(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["funds_application.id"],
            name=op.f("fk_funds_review_application_id_funds_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"],
            ["user_account.id"],
            name=op.f("fk_funds_review_reviewer_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_review")),
    )
    with op.batch_alter_table("funds_review", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_review_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_funds_review_reviewer_id"), ["reviewer_id"], unique=False
        )

    op.create_table(
        "funds_performance_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=True),
        sa.Column("reported_at", TZ, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["funds_performance_target.id"],
            name=op.f("fk_funds_performance_report_target_id_funds_performance_target"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funds_performance_report")),
    )
    with op.batch_alter_table("funds_performance_report", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_funds_performance_report_target_id"), ["target_id"], unique=False
        )


def downgrade() -> None:
    """Drop the special-fund tables (their indexes go with them)."""
    for name in TABLES:
        op.drop_table(name)
