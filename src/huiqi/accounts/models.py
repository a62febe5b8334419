"""Tables for users, browser sessions, API tokens and audit events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huiqi.core.db import Base, utcnow


class Role(StrEnum):
    """What a user may do; officers, enterprises and banks are bound to what they act for."""

    admin = "admin"
    officer = "officer"
    enterprise = "enterprise"
    bank = "bank"


ROLE_LABELS: dict[str, tuple[str, str]] = {
    Role.admin: ("系统管理员", "Administrator"),
    Role.officer: ("部门工作人员", "Department officer"),
    Role.enterprise: ("企业用户", "Enterprise user"),
    Role.bank: ("金融机构用户", "Bank / guarantee user"),
}


class User(Base):
    """A person who logs in; role binding fields say whom they act for."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), index=True)
    department: Mapped[str | None] = mapped_column(String(128))
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    institution: Mapped[str | None] = mapped_column(String(128))
    # An officer of a city or county sees only enterprises whose region code starts with this
    # (GB/T 2260: "6201" 兰州市, "620102" 城关区); none means the whole province.
    region_prefix: Mapped[str | None] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    @property
    def binding(self) -> str | None:
        """The department, enterprise or institution this user acts for."""
        return {
            Role.officer: self.department,
            Role.enterprise: self.credit_code,
            Role.bank: self.institution,
        }.get(Role(self.role))


class WebSession(Base):
    """A logged-in browser; only the digest of the cookie value is stored."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for programmatic access; only its digest is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    # The token is an HMAC of this seed under the secret key, so a token log-in can hand the
    # same token out again while the database alone reveals none.
    seed: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="tokens")


class AuditEvent(Base):
    """An append-only record of a security-relevant event."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(48), index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(64))
    # Who tried, for log-in throttling: a known browser's device id, else the address.
    client: Mapped[str | None] = mapped_column(String(80), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UserAssignment(Base):
    """One item a user is explicitly assigned to (a reviewer's grant, an expert's rule…).

    `kind` names the domain's object type and `ref` its key, so a new domain adds assignments
    without a new table; `huiqi.accounts.scopes` reads them into the user's Scope.
    """

    __tablename__ = "user_assignment"
    __table_args__ = (UniqueConstraint("user_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
