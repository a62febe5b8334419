"""Policy library: documents, versions, sections, articles, departmental tasks, department aliases.

Revision ID: 0002_policy
Revises: 0001_base
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_policy"
down_revision: str | Sequence[str] | None = "0001_base"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the policy tables."""
    op.create_table(
        "policy_document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("doc_number", sa.String(100), nullable=True),
        sa.Column("issuer", sa.String(200), nullable=True),
        sa.Column("addressees", sa.JSON(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("province", sa.String(32), nullable=True),
        sa.Column("style", sa.String(16), nullable=False),
        sa.Column("preamble", sa.Text(), nullable=False),
        sa.Column("cited_documents", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("search_tokens", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_document")),
    )
    op.create_index(op.f("ix_policy_document_doc_number"), "policy_document", ["doc_number"])
    op.create_index(op.f("ix_policy_document_status"), "policy_document", ["status"])
    op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source_filename", sa.String(255), nullable=False),
        sa.Column("source_kind", sa.String(8), nullable=False),
        sa.Column("source_encoding", sa.String(32), nullable=True),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policy_document.id"],
            name=op.f("fk_policy_version_policy_id_policy_document"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_policy_version_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_version")),
        sa.UniqueConstraint("policy_id", "number", name="uq_policy_version_policy_id_number"),
        sa.UniqueConstraint(
            "policy_id", "content_hash", name="uq_policy_version_policy_id_content_hash"
        ),
    )
    op.create_index(op.f("ix_policy_version_policy_id"), "policy_version", ["policy_id"])
    op.create_index(op.f("ix_policy_version_content_hash"), "policy_version", ["content_hash"])
    op.create_table(
        "policy_section",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policy_document.id"],
            name=op.f("fk_policy_section_policy_id_policy_document"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_section")),
    )
    op.create_index(op.f("ix_policy_section_policy_id"), "policy_section", ["policy_id"])
    op.create_table(
        "policy_article",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("responsibility_note", sa.Text(), nullable=True),
        sa.Column("implementers", sa.JSON(), nullable=False),
        sa.Column("quantities", sa.JSON(), nullable=False),
        sa.Column("topics", sa.String(300), nullable=False),
        sa.Column("search_tokens", sa.Text(), nullable=False),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policy_document.id"],
            name=op.f("fk_policy_article_policy_id_policy_document"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["policy_section.id"],
            name=op.f("fk_policy_article_section_id_policy_section"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_article")),
    )
    op.create_index(op.f("ix_policy_article_policy_id"), "policy_article", ["policy_id"])
    op.create_index(op.f("ix_policy_article_section_id"), "policy_article", ["section_id"])
    op.create_index(op.f("ix_policy_article_number"), "policy_article", ["number"])
    op.create_table(
        "policy_task",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=True),
        sa.Column("as_written", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["policy_article.id"],
            name=op.f("fk_policy_task_article_id_policy_article"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_task")),
    )
    op.create_index(op.f("ix_policy_task_article_id"), "policy_task", ["article_id"])
    op.create_index(op.f("ix_policy_task_department"), "policy_task", ["department"])
    op.create_index(op.f("ix_policy_task_department_code"), "policy_task", ["department_code"])
    op.create_table(
        "policy_department_alias",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("department_code", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_policy_department_alias_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_department_alias")),
        sa.UniqueConstraint("alias", name=op.f("uq_policy_department_alias_alias")),
    )


def downgrade() -> None:
    """Drop the policy tables."""
    op.drop_table("policy_department_alias")
    op.drop_table("policy_task")
    op.drop_table("policy_article")
    op.drop_table("policy_section")
    op.drop_table("policy_version")
    op.drop_table("policy_document")
