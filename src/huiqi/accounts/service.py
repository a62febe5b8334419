"""Account operations; every function takes the session first and never commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import ApiToken, AuditEvent, Role, User, WebSession
from huiqi.core import security
from huiqi.core.db import utcnow
from huiqi.core.errors import DomainError, NotFound, Throttled

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")
MIN_PASSWORD = 10


class AccountError(DomainError):
    """A request about accounts was refused; the message says why."""


class ThrottledError(Throttled, AccountError):
    """Too many failed log-ins in the window."""


class TokenNotFound(NotFound, AccountError):
    """The API token does not exist or belongs to someone else (404 either way)."""


@dataclass(frozen=True)
class Throttle:
    """The log-in throttling policy."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


def audit(
    session: Session,
    event: str,
    *,
    user: User | None = None,
    username: str | None = None,
    actor: User | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append a security event to the audit log."""
    row = AuditEvent(
        event=event,
        username=username or (user.username if user else None),
        user_id=user.id if user else None,
        actor_id=actor.id if actor else None,
        ip=ip,
        detail=detail,
    )
    session.add(row)
    return row


def _check_binding(
    role: Role, department: str | None, credit_code: str | None, institution: str | None
) -> None:
    """Refuse a role without the binding it needs."""
    if role == Role.officer and not department:
        raise AccountError("officer accounts need a department (--department)")
    if role == Role.enterprise:
        if not credit_code:
            raise AccountError("enterprise accounts need a 统一社会信用代码 (--credit-code)")
        from huiqi.core.codes import CodeError, validate_credit_code

        try:
            validate_credit_code(credit_code)
        except CodeError as exc:
            raise AccountError(f"credit code {credit_code}: {exc}") from None
    if role == Role.bank and not institution:
        raise AccountError("bank accounts need an institution (--institution)")


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    email: str | None = None,
    department: str | None = None,
    credit_code: str | None = None,
    institution: str | None = None,
    actor: User | None = None,
) -> User:
    """Create a user after checking the name, password strength and role binding."""
    if not USERNAME_RE.match(username):
        raise AccountError("username: 3–64 letters, digits, '.', '_' or '-'")
    try:
        role_enum = Role(role)
    except ValueError:
        raise AccountError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
    _check_binding(role_enum, department, credit_code, institution)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"username {username!r} is taken")
    user = User(
        username=username,
        password_hash=security.hash_password(password),
        role=role_enum.value,
        display_name=display_name or username,
        email=email,
        department=department if role_enum == Role.officer else None,
        credit_code=credit_code if role_enum == Role.enterprise else None,
        institution=institution if role_enum == Role.bank else None,
    )
    session.add(user)
    session.flush()
    audit(session, "user.created", user=user, actor=actor, role=user.role)
    return user


def set_role(
    session: Session,
    user: User,
    role: str,
    *,
    department: str | None = None,
    credit_code: str | None = None,
    institution: str | None = None,
    actor: User | None = None,
) -> User:
    """Change a user's role and binding; audited."""
    role_enum = Role(role)
    _check_binding(role_enum, department, credit_code, institution)
    old = user.role
    user.role = role_enum.value
    user.department = department if role_enum == Role.officer else None
    user.credit_code = credit_code if role_enum == Role.enterprise else None
    user.institution = institution if role_enum == Role.bank else None
    audit(session, "user.role_changed", user=user, actor=actor, old=old, new=user.role)
    return user


def recent_failures(session: Session, username: str, since: datetime) -> int:
    """Failed log-ins for a username since a moment."""
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.event == "login.failed",
                AuditEvent.username == username,
                AuditEvent.at >= since,
            )
        )
        or 0
    )


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    throttle: Throttle = Throttle(),
) -> User:
    """Check credentials with throttling; raise AccountError with one generic message on failure."""
    since = utcnow() - throttle.window
    if recent_failures(session, username, since) >= throttle.max_failures:
        audit(session, "login.throttled", username=username, ip=ip)
        raise ThrottledError(
            f"too many failed attempts; try again in {int(throttle.window.total_seconds() // 60)} minutes"
        )
    user = session.scalar(select(User).where(User.username == username))
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        audit(session, "login.failed", user=user, username=username, ip=ip)
        raise AccountError("wrong username or password")
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    audit(session, "login.succeeded", user=user, ip=ip)
    return user


def start_session(session: Session, user: User, hours: int) -> str:
    """Open a browser session and return the cookie value (stored only as a digest)."""
    token = security.new_token()
    session.add(
        WebSession(
            token_digest=security.token_digest(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    return token


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; they were stored as UTC."""
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def user_for_session(session: Session, token: str) -> User | None:
    """The active user of a browser session cookie, or None if unknown or expired."""
    row = session.scalar(
        select(WebSession).where(WebSession.token_digest == security.token_digest(token))
    )
    if row is None or _aware(row.expires_at) < utcnow() or not row.user.is_active:
        return None
    return row.user


def end_session(session: Session, token: str) -> None:
    """Forget a browser session."""
    row = session.scalar(
        select(WebSession).where(WebSession.token_digest == security.token_digest(token))
    )
    if row is not None:
        audit(session, "logout", user=row.user)
        session.delete(row)


def create_token(session: Session, user: User, name: str, actor: User | None = None) -> str:
    """Create an API token; the plain value is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 128:
        raise AccountError("token name: 1–128 characters")
    token = security.new_token("hq_")
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_digest=security.token_digest(token),
            prefix=token[:10],
        )
    )
    audit(session, "token.created", user=user, actor=actor or user, name=name)
    return token


def revoke_token(session: Session, user: User, token_id: int) -> None:
    """Revoke one of the user's own tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise TokenNotFound("令牌不存在", "no such token")
    row.revoked_at = utcnow()
    audit(session, "token.revoked", user=user, name=row.name)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user of a bearer token, or None."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_digest == security.token_digest(token))
    )
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    from huiqi.accounts.usage import token_usage

    # remembered, not written: a read request stays a read (see huiqi.accounts.usage)
    token_usage.record(row.id)
    return row.user
