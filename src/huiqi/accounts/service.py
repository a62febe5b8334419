"""Account operations; every function takes the session first and never commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from huiqi.accounts.models import ApiToken, AuditEvent, Role, User, WebSession
from huiqi.accounts.passwords import WeakPassword, check_password
from huiqi.core import security
from huiqi.core.db import utcnow
from huiqi.core.errors import Conflict, DomainError, Invalid, NotFound, Throttled, Unauthorized

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")


class AccountError(DomainError):
    """A request about accounts was refused; the message says why."""


class AccountInvalid(Invalid, AccountError):
    """The input breaks a rule about accounts (422)."""


class ThrottledError(Throttled, AccountError):
    """Too many failed log-ins from this client; retry_after says for how many seconds."""

    def __init__(self, message_zh: str, message_en: str, retry_after: int) -> None:
        """Keep how long the client must wait."""
        super().__init__(message_zh, message_en)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        """Tell the client when it may try again."""
        return {"Retry-After": str(self.retry_after)}


class LoginFailed(Unauthorized, AccountError):
    """Wrong credentials; burst is set when this failure completed a burst on the username."""

    def __init__(self, message_zh: str, message_en: str, *, burst: bool = False) -> None:
        """Remember whether the administrators must be alerted."""
        super().__init__(message_zh, message_en)
        self.burst = burst


class TokenLimit(Conflict, AccountError):
    """The user holds as many active API tokens as the policy allows (409)."""


class TokenNotFound(NotFound, AccountError):
    """The API token does not exist or belongs to someone else (404 either way)."""


@dataclass(frozen=True)
class Throttle:
    """The log-in throttling policy.

    A client (a known browser's device id, else its address) that failed max_failures times in
    a row on a username waits `window`, doubling with each further failure up to max_backoff.
    When burst failures from all clients hit one username within the window, the
    administrators are alerted and only known browsers may still try it.
    """

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    burst: int = 20
    max_backoff: timedelta = timedelta(hours=24)


def audit(
    session: Session,
    event: str,
    *,
    user: User | None = None,
    username: str | None = None,
    actor: User | None = None,
    ip: str | None = None,
    client: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append a security event to the audit log."""
    row = AuditEvent(
        event=event,
        client=client,
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
    check_policy: bool = True,
) -> User:
    """Create a user after checking the name, password policy and role binding.

    Only the demo loader passes check_policy=False: its log-ins are published in the README.
    """
    if not USERNAME_RE.match(username):
        raise AccountError("username: 3–64 letters, digits, '.', '_' or '-'")
    try:
        role_enum = Role(role)
    except ValueError:
        raise AccountError(
            "角色须为管理员、工作人员、企业或金融机构之一",
            f"role must be one of {', '.join(r.value for r in Role)}",
            field="role",
        ) from None
    if check_policy:
        _check_password(password, username)
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


def _check_password(password: str, username: str) -> None:
    """The password policy, as an AccountError with the Chinese message first."""
    try:
        check_password(password, username)
    except WeakPassword as exc:
        raise AccountError(exc.zh, exc.en, field="password") from None


def change_password(
    session: Session, user: User, new_password: str, *, actor: User | None = None
) -> None:
    """Set a new password under the policy; the user's other browser sessions end."""
    _check_password(new_password, user.username)
    user.password_hash = security.hash_password(new_password)
    for row in session.scalars(select(WebSession).where(WebSession.user_id == user.id)):
        session.delete(row)
    audit(session, "user.password_changed", user=user, actor=actor or user)


def recent_failures(session: Session, username: str, since: datetime) -> int:
    """Failed log-ins for a username since a moment, from every client."""
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


def client_key(ip: str | None, device: str | None) -> str:
    """Whom throttling counts: a known browser by its device id, anyone else by address."""
    return f"device:{device}"[:80] if device else f"ip:{ip or 'unknown'}"[:80]


def _backoff_until(
    session: Session, username: str, client: str, throttle: Throttle, now: datetime
) -> datetime | None:
    """When this client may try the username again, if it is backed off now."""
    since = now - throttle.max_backoff
    last_ok = session.scalar(
        select(func.max(AuditEvent.at)).where(
            AuditEvent.event == "login.succeeded",
            AuditEvent.username == username,
            AuditEvent.client == client,
            AuditEvent.at >= since,
        )
    )
    start = max(since, _aware(last_ok)) if last_ok is not None else since
    rows = session.execute(
        select(func.count(), func.max(AuditEvent.at)).where(
            AuditEvent.event == "login.failed",
            AuditEvent.username == username,
            AuditEvent.client == client,
            AuditEvent.at > start,
        )
    ).one()
    failures, last = int(rows[0] or 0), rows[1]
    if failures < throttle.max_failures or last is None:
        return None
    doublings = min(failures - throttle.max_failures, 16)
    wait = min(throttle.window * (2**doublings), throttle.max_backoff)
    until = _aware(last) + wait
    return until if until > now else None


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    device: str | None = None,
    throttle: Throttle = Throttle(),
) -> User:
    """Check credentials with throttling by (username, client); refuse with one generic message.

    `device` is the id of a known browser (a signed cookie from an earlier successful log-in
    of this username): it is throttled on its own failures only, so nobody else's failures
    lock the owner out.
    """
    now = utcnow()
    client = client_key(ip, device)
    until = _backoff_until(session, username, client, throttle, now)
    if until is None and device is None:
        since = now - throttle.window
        if recent_failures(session, username, since) >= throttle.burst:
            until = now + throttle.window
    if until is not None:
        audit(session, "login.throttled", username=username, ip=ip, client=client)
        wait = max(1, int((until - now).total_seconds()))
        raise ThrottledError(
            f"登录失败次数过多,请 {(wait + 59) // 60} 分钟后再试",
            f"too many failed attempts; try again in {(wait + 59) // 60} minutes",
            wait,
        )
    user = session.scalar(select(User).where(User.username == username))
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        audit(session, "login.failed", user=user, username=username, ip=ip, client=client)
        session.flush()
        burst = recent_failures(session, username, now - throttle.window) == throttle.burst
        if burst:
            audit(
                session,
                "login.burst",
                user=user,
                username=username,
                ip=ip,
                failures=throttle.burst,
                window_minutes=int(throttle.window.total_seconds() // 60),
            )
        raise LoginFailed("用户名或密码错误", "wrong username or password", burst=burst)
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
    audit(session, "login.succeeded", user=user, ip=ip, client=client)
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
    row = live_session(session, token)
    return None if row is None else row.user


def live_session(session: Session, token: str) -> WebSession | None:
    """The unexpired browser session of a cookie, its active user loaded; None otherwise."""
    row = session.scalar(
        select(WebSession)
        .options(joinedload(WebSession.user))  # one query per page view, not two
        .where(WebSession.token_digest == security.token_digest(token))
    )
    if row is None or _aware(row.expires_at) < utcnow() or not row.user.is_active:
        return None
    return row


def end_session(session: Session, token: str) -> None:
    """Forget a browser session."""
    row = session.scalar(
        select(WebSession).where(WebSession.token_digest == security.token_digest(token))
    )
    if row is not None:
        audit(session, "logout", user=row.user)
        session.delete(row)


@dataclass(frozen=True)
class TokenPolicy:
    """How long API tokens live and how many one user may hold."""

    days: int = 90
    per_user: int = 10


def _derive_token(secret_key: str, seed: str) -> str:
    """The token value of a seed; only who holds the secret key can compute it."""
    mac = hmac.new(secret_key.encode(), b"api-token:" + seed.encode(), hashlib.sha256)
    return "hq_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def active_tokens(session: Session, user: User, now: datetime | None = None) -> list[ApiToken]:
    """The user's tokens neither revoked nor expired, newest first."""
    now = now or utcnow()
    rows = session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id.desc())
    )
    return [r for r in rows if r.expires_at is None or _aware(r.expires_at) > now]


def create_token(
    session: Session,
    user: User,
    name: str,
    actor: User | None = None,
    *,
    secret_key: str,
    policy: TokenPolicy = TokenPolicy(),
) -> str:
    """Create an API token that expires; the plain value is returned and never stored."""
    name = name.strip()
    if not name or len(name) > 128:
        raise AccountInvalid("令牌名称须为 1–128 个字符", "token name: 1–128 characters")
    if len(active_tokens(session, user)) >= policy.per_user:
        raise TokenLimit(
            f"每个用户最多持有 {policy.per_user} 个有效令牌,请先撤销不用的令牌",
            f"at most {policy.per_user} active tokens per user: revoke one first",
        )
    seed = secrets.token_hex(32)
    token = _derive_token(secret_key, seed)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_digest=security.token_digest(token),
            prefix=token[:10],
            seed=seed,
            expires_at=utcnow() + timedelta(days=policy.days),
        )
    )
    audit(session, "token.created", user=user, actor=actor or user, name=name)
    return token


def token_for_login(
    session: Session, user: User, name: str, *, secret_key: str, policy: TokenPolicy = TokenPolicy()
) -> str:
    """The token of a token log-in: the user's valid token of that name, or a new one."""
    for row in active_tokens(session, user):
        if row.name != name.strip() or row.seed is None:
            continue
        token = _derive_token(secret_key, row.seed)
        # A token minted under an earlier secret key no longer derives from its seed.
        if hmac.compare_digest(security.token_digest(token), row.token_digest):
            audit(session, "token.reused", user=user, name=row.name)
            return token
    return create_token(session, user, name, secret_key=secret_key, policy=policy)


def revoke_token(session: Session, user: User, token_id: int) -> None:
    """Revoke one of the user's own tokens."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise TokenNotFound("令牌不存在", "no such token")
    row.revoked_at = utcnow()
    audit(session, "token.revoked", user=user, name=row.name)


def user_for_token(session: Session, token: str) -> User | None:
    """The active user of a bearer token neither revoked nor expired, or None."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_digest == security.token_digest(token))
    )
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
        return None
    from huiqi.accounts.usage import token_usage

    # remembered, not written: a read request stays a read (see huiqi.accounts.usage)
    token_usage.record(row.id)
    return row.user
