"""Tables of the policy library: documents, versions, sections, articles and departmental tasks."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

import huiqi.accounts.models  # noqa: F401  (registers user_account, which versions and aliases reference)
from huiqi.core.db import Base, utcnow


class PolicyStatus(StrEnum):
    """Life cycle of a policy in the library."""

    draft = "draft"
    published = "published"
    repealed = "repealed"


STATUS_LABELS = {
    PolicyStatus.draft: ("草稿", "Draft"),
    PolicyStatus.published: ("已发布", "Published"),
    PolicyStatus.repealed: ("已废止", "Repealed"),
}


class Policy(Base):
    """A policy document; its articles are those of the current version."""

    __tablename__ = "policy_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    doc_number: Mapped[str | None] = mapped_column(String(100), index=True)
    issuer: Mapped[str | None] = mapped_column(String(200))
    addressees: Mapped[list[str]] = mapped_column(JSON, default=list)
    issued_on: Mapped[date | None] = mapped_column(Date)
    published_on: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(32))
    style: Mapped[str] = mapped_column(String(16), default="plain")
    preamble: Mapped[str] = mapped_column(Text, default="")
    cited_documents: Mapped[list[str]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=PolicyStatus.draft, index=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    search_tokens: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy", order_by="PolicyVersion.number", cascade="all, delete-orphan"
    )
    sections: Mapped[list[PolicySection]] = relationship(
        back_populates="policy", order_by="PolicySection.position", cascade="all, delete-orphan"
    )
    articles: Mapped[list[PolicyArticle]] = relationship(
        back_populates="policy", order_by="PolicyArticle.position", cascade="all, delete-orphan"
    )
    interpretations: Mapped[list[PolicyInterpretation]] = relationship(
        back_populates="policy", order_by="PolicyInterpretation.id", cascade="all, delete-orphan"
    )

    def interpretations_of(self, article_number: int | None) -> list[PolicyInterpretation]:
        """The 解读 attached to one article (None: to the whole policy)."""
        return [i for i in self.interpretations if i.article_number == article_number]

    @property
    def current_version(self) -> PolicyVersion | None:
        """The newest version."""
        return self.versions[-1] if self.versions else None

    def is_valid_on(self, day: date) -> bool:
        """Whether the policy is in force on ``day`` (open validity bounds count as in force)."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class PolicyVersion(Base):
    """One imported text of a policy, with the diff against the version before it."""

    __tablename__ = "policy_version"
    __table_args__ = (
        UniqueConstraint("policy_id", "number", name="uq_policy_version_policy_id_number"),
        UniqueConstraint(
            "policy_id", "content_hash", name="uq_policy_version_policy_id_content_hash"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("policy_document.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    source_filename: Mapped[str] = mapped_column(String(255), default="")
    source_kind: Mapped[str] = mapped_column(String(8), default="text")
    source_encoding: Mapped[str | None] = mapped_column(String(32))
    source_text: Mapped[str] = mapped_column(Text)
    parsed: Mapped[dict[str, Any]] = mapped_column(JSON)
    diff: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    policy: Mapped[Policy] = relationship(back_populates="versions")


class PolicySection(Base):
    """A section (一、…) or chapter (第一章…); number 0 when the document has none."""

    __tablename__ = "policy_section"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("policy_document.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text, default="")

    policy: Mapped[Policy] = relationship(back_populates="sections")
    articles: Mapped[list[PolicyArticle]] = relationship(
        back_populates="section", order_by="PolicyArticle.position"
    )


class PolicyArticle(Base):
    """An article of the current version, with what the parser (or an officer) found in it."""

    __tablename__ = "policy_article"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("policy_document.id", ondelete="CASCADE"), index=True
    )
    section_id: Mapped[int] = mapped_column(
        ForeignKey("policy_section.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer, index=True)
    label: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    responsibility_note: Mapped[str | None] = mapped_column(Text)
    implementers: Mapped[list[str]] = mapped_column(JSON, default=list)
    quantities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    topics: Mapped[str] = mapped_column(
        String(300), default=""
    )  # " finance tax_fees " for LIKE filters
    search_tokens: Mapped[str] = mapped_column(Text, default="")
    corrected: Mapped[bool] = mapped_column(Boolean, default=False)

    policy: Mapped[Policy] = relationship(back_populates="articles")
    section: Mapped[PolicySection] = relationship(back_populates="articles")
    tasks: Mapped[list[PolicyTask]] = relationship(
        back_populates="article", order_by="PolicyTask.position", cascade="all, delete-orphan"
    )

    @property
    def topic_list(self) -> list[str]:
        """Topic codes as a list."""
        return self.topics.split()

    @property
    def departments(self) -> list[str]:
        """Responsible departments in order; the first leads."""
        return [t.department for t in self.tasks]


class PolicyTask(Base):
    """A department's share of an article (任务分工): lead, responsible or cooperating."""

    __tablename__ = "policy_task"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("policy_article.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(200), index=True)
    department_code: Mapped[str | None] = mapped_column(String(32), index=True)
    as_written: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    known: Mapped[bool] = mapped_column(Boolean, default=False)

    article: Mapped[PolicyArticle] = relationship(back_populates="tasks")


class PolicyInterpretation(Base):
    """An officer's 解读 of a policy or one of its articles: a text, a link, or both, and how to claim.

    It is attached by article number, not article row: the rows are rebuilt with each new version
    of the document, the numbering is what readers and legal-basis links cite.
    """

    __tablename__ = "policy_interpretation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("policy_document.id", ondelete="CASCADE"), index=True
    )
    article_number: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(500))
    how_to_claim: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    policy: Mapped[Policy] = relationship(back_populates="interpretations")


class DepartmentAlias(Base):
    """A department name an officer mapped onto the registry (for names the registry lacked)."""

    __tablename__ = "policy_department_alias"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias: Mapped[str] = mapped_column(String(200), unique=True)
    department_code: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def touch_changed_policies(session: Session, _context: Any, _instances: Any) -> None:
    """Move ``updated_at`` of every policy whose sections, articles, tasks, versions or 解读 change."""
    ids: set[int] = set()
    article_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, PolicyArticle | PolicySection | PolicyVersion | PolicyInterpretation):
            if obj.policy_id is not None:
                ids.add(obj.policy_id)
            elif obj.policy is not None and obj.policy.id is not None:
                ids.add(obj.policy.id)
        elif isinstance(obj, PolicyTask):
            if obj.article is not None and obj.article.policy_id is not None:
                ids.add(obj.article.policy_id)
            elif obj.article_id is not None:
                article_ids.add(obj.article_id)
    if article_ids:
        with session.no_autoflush:
            ids.update(
                session.scalars(
                    select(PolicyArticle.policy_id).where(PolicyArticle.id.in_(article_ids))
                )
            )
    if not ids:
        return
    now = utcnow()
    with session.no_autoflush:
        for policy_id in ids:
            policy = session.get(Policy, policy_id)
            if policy is not None and policy not in session.deleted:
                policy.updated_at = now


event.listen(Session, "before_flush", touch_changed_policies)
