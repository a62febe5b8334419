"""Log-in, log-out, account and administration pages, and the accounts API."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts import service
from huiqi.accounts.models import ApiToken, AuditEvent, Role, User
from huiqi.accounts.schemas import AuditOut, TokenOut, TokenRequest, UserIn, UserOut
from huiqi.core import security
from huiqi.core.bounds import Int64
from huiqi.core.db import session_factory, utcnow
from huiqi.web.deps import (
    SESSION_COOKIE,
    AdminUser,
    CurrentUser,
    SessionDep,
    render,
)
from huiqi.web.i18n import pick, request_lang

router = APIRouter()


DEVICE_COOKIE = "huiqi_device"
DEVICE_DAYS = 365


def _throttle(request: Request) -> service.Throttle:
    """The log-in throttle configured for this app."""
    settings = request.app.state.settings
    return service.Throttle(
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_window_minutes),
        burst=settings.login_burst_failures,
    )


def _token_policy(request: Request) -> service.TokenPolicy:
    """API token lifetime and per-user cap configured for this app."""
    settings = request.app.state.settings
    return service.TokenPolicy(days=settings.api_token_days, per_user=settings.api_tokens_per_user)


def _client_ip(request: Request) -> str | None:
    """The peer address (behind a configured proxy: the forwarded one), for the audit log."""
    return request.client.host if request.client else None


def _device_signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.secret_key, salt="huiqi-device")


def known_device(request: Request, username: str) -> str | None:
    """The id of this browser if it carries a valid device cookie of this username."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = _device_signer(request).loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username or not data.get("d"):
        return None
    return str(data["d"])


def remember_device(request: Request, response: Response, username: str) -> None:
    """Mark this browser as known for the username, so others' failures do not lock it out."""
    device = known_device(request, username) or secrets.token_urlsafe(16)
    response.set_cookie(
        DEVICE_COOKIE,
        _device_signer(request).dumps({"u": username, "d": device}),
        httponly=True,
        secure=request.app.state.settings.cookie_secure,
        samesite="lax",
        max_age=DEVICE_DAYS * 86400,
    )


def _alert_admins(session: Session, username: str) -> None:
    """Tell every active administrator that a username is under a burst of failed log-ins."""
    from huiqi.notify.service import enqueue_user

    now = utcnow()
    admins = session.scalars(
        select(User).where(User.role == Role.admin, User.is_active.is_(True))
    ).all()
    for admin in admins:
        enqueue_user(
            session,
            user_id=admin.id,
            topic="security",
            subject=f"账户 {username} 短时间内多次登录失败",
            body=(
                f"账户 {username} 在 {now:%Y-%m-%d %H:%M} UTC 前的一段时间内登录失败次数达到告警阈值,"
                "来自未登录过该账户的浏览器的尝试已暂停;请在审计日志中核查来源地址。"
            ),
            subject_en=f"Repeated failed log-ins to account {username}",
            body_en=(
                f"Account {username} had a burst of failed log-ins before {now:%Y-%m-%d %H:%M}"
                " UTC; tries from browsers that never logged in to it are held back. See the"
                " audit log for where they came from."
            ),
            link="/admin/audit",
            dedupe_key=f"security:login-burst:{username}:{now:%Y%m%d%H%M}",
        )


def _safe_next(target: str | None) -> str:
    """Only local paths are followed after log-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/") -> Response:
    """The log-in form."""
    request.state.user = None
    request.state.viewer = None
    return render(request, "accounts/login.html", next=_safe_next(next), error=None)


@router.post("/login", include_in_schema=False)
def login_submit(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check credentials; failures and throttling are audited in their own transaction."""
    lang = request_lang(request)
    settings = request.app.state.settings
    # The audit row of a failed attempt must survive the refusal, so this handler
    # manages its own unit of work instead of the request-scoped session.
    with session_factory()() as session:
        try:
            user = service.authenticate(
                session,
                username.strip(),
                password,
                ip=_client_ip(request),
                device=known_device(request, username.strip()),
                throttle=_throttle(request),
            )
        except service.ThrottledError as exc:
            session.commit()
            request.state.user = None
            request.state.viewer = None
            minutes = (exc.retry_after + 59) // 60
            message = pick(
                lang,
                f"登录失败次数过多,请 {minutes} 分钟后再试。",
                f"Too many failed attempts. Try again in {minutes} minutes.",
            )
            response = render(
                request,
                "accounts/login.html",
                status_code=429,
                next=_safe_next(next),
                error=message,
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except service.AccountError as exc:
            if isinstance(exc, service.LoginFailed) and exc.burst:
                _alert_admins(session, username.strip())
            session.commit()
            request.state.user = None
            request.state.viewer = None
            message = pick(lang, "用户名或密码错误。", "Wrong username or password.")
            return render(
                request,
                "accounts/login.html",
                status_code=401,
                next=_safe_next(next),
                error=message,
            )
        cookie = service.start_session(session, user, settings.session_hours)
        session.commit()
    response = RedirectResponse(_safe_next(next), status_code=303)
    remember_device(request, response, user.username)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        max_age=settings.session_hours * 3600,
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, session: SessionDep) -> Response:
    """End the browser session."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service.end_session(session, cookie)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/account", include_in_schema=False)
def account_page(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """The user's own account: binding and API tokens."""
    return _account_page(request, session, user)


def _account_page(
    request: Request,
    session: Session,
    user: User,
    *,
    new_token: str | None = None,
    password_message: str | None = None,
    password_ok: bool = False,
    status_code: int = 200,
) -> Response:
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ).all()
    return render(
        request,
        "accounts/account.html",
        status_code=status_code,
        tokens=tokens,
        new_token=new_token,
        password_message=password_message,
        password_ok=password_ok,
        now=utcnow().replace(tzinfo=None),
    )


@router.post("/account/password", include_in_schema=False)
def account_change_password(
    request: Request,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """Change one's own password: the current one is checked, the new one meets the policy."""
    lang = request_lang(request)
    if not security.verify_password(user.password_hash, current_password):
        service.audit(session, "user.password_change_refused", user=user, ip=_client_ip(request))
        message = pick(lang, "当前密码不正确。", "The current password is wrong.")
        return _account_page(request, session, user, password_message=message, status_code=400)
    try:
        service.change_password(session, user, new_password)
    except service.AccountError as exc:
        message = exc.localized(lang)
        return _account_page(request, session, user, password_message=message, status_code=400)
    # The current browser stays logged in with a fresh session.
    cookie = service.start_session(session, user, request.app.state.settings.session_hours)
    response = _account_page(
        request,
        session,
        user,
        password_message=pick(lang, "密码已修改。", "Password changed."),
        password_ok=True,
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        secure=request.app.state.settings.cookie_secure,
        samesite="lax",
        max_age=request.app.state.settings.session_hours * 3600,
    )
    return response


@router.post("/account/tokens", include_in_schema=False)
def account_new_token(
    request: Request,
    name: Annotated[str, Form()],
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """Create an API token and show it once."""
    token = service.create_token(
        session,
        user,
        name,
        secret_key=request.app.state.settings.secret_key,
        policy=_token_policy(request),
    )
    session.flush()
    return _account_page(request, session, user, new_token=token)


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False)
def account_revoke_token(
    token_id: Int64,
    user: CurrentUser,
    session: SessionDep,
) -> Response:
    """Revoke one of the user's own tokens."""
    service.revoke_token(session, user, token_id)
    return RedirectResponse("/account", status_code=303)


@router.get("/admin/users", include_in_schema=False)
def admin_users(
    request: Request,
    _: AdminUser,
    session: SessionDep,
) -> Response:
    """Administrators list and create users."""
    users = session.scalars(select(User).order_by(User.id)).all()
    return render(request, "accounts/users.html", users=users, roles=list(Role), error=None)


@router.post("/admin/users", include_in_schema=False)
def admin_create_user(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    actor: AdminUser,
    session: SessionDep,
    binding: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
) -> Response:
    """Create a user from the administration page."""
    binding = binding.strip()
    try:
        service.create_user(
            session,
            username=username.strip(),
            password=password,
            role=role,
            display_name=display_name.strip(),
            department=binding if role == Role.officer else None,
            credit_code=binding if role == Role.enterprise else None,
            institution=binding if role == Role.bank else None,
            actor=actor,
        )
    except service.AccountError as exc:
        session.rollback()
        users = session.scalars(select(User).order_by(User.id)).all()
        return render(
            request,
            "accounts/users.html",
            status_code=400,
            users=users,
            roles=list(Role),
            error=exc.localized(request_lang(request)),
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/role", include_in_schema=False)
def admin_set_role(
    user_id: Int64,
    role: Annotated[Role, Form()],
    actor: AdminUser,
    session: SessionDep,
    binding: Annotated[str, Form()] = "",
) -> Response:
    """Change a user's role and binding."""
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(status_code=404, detail="no such user")
    bound = binding.strip() or None
    service.set_role(
        session,
        target,
        role,
        department=bound if role == Role.officer else None,
        credit_code=bound if role == Role.enterprise else None,
        institution=bound if role == Role.bank else None,
        actor=actor,
    )
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/audit", include_in_schema=False)
def admin_audit(
    request: Request,
    _: AdminUser,
    session: SessionDep,
) -> Response:
    """The latest security events."""
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    return render(request, "accounts/audit.html", events=events)


@router.post("/api/v1/auth/token", response_model=TokenOut, tags=["auth"])
def api_token(request: Request, body: TokenRequest) -> TokenOut:
    """Exchange a username and password for a bearer token (throttled like the log-in form).

    A valid token of the same name is handed out again instead of minting another.
    """
    with session_factory()() as session:
        try:
            user = service.authenticate(
                session,
                body.username,
                body.password,
                ip=_client_ip(request),
                device=known_device(request, body.username),
                throttle=_throttle(request),
            )
        except service.AccountError as exc:
            # the failure count and its audit are kept although the answer is a refusal
            # (401, or 429 with Retry-After, from the one error handler)
            if isinstance(exc, service.LoginFailed) and exc.burst:
                _alert_admins(session, body.username)
            session.commit()
            raise
        try:
            token = service.token_for_login(
                session,
                user,
                body.name,
                secret_key=request.app.state.settings.secret_key,
                policy=_token_policy(request),
            )
        except service.AccountError:
            session.commit()  # the log-in itself is recorded although no token is given
            raise
        session.commit()
    return TokenOut(token=token)


@router.get("/api/v1/me", response_model=UserOut, tags=["auth"])
def api_me(user: CurrentUser) -> User:
    """The authenticated user."""
    return user


@router.get("/api/v1/users", response_model=list[UserOut], tags=["admin"])
def api_users(_: AdminUser, session: SessionDep) -> list[User]:
    """All users (administrators only)."""
    return list(session.scalars(select(User).order_by(User.id)).all())


@router.post("/api/v1/users", response_model=UserOut, status_code=201, tags=["admin"])
def api_create_user(
    body: UserIn,
    actor: AdminUser,
    session: SessionDep,
) -> User:
    """Create a user (administrators only)."""
    return service.create_user(session, actor=actor, **body.model_dump())


@router.get("/api/v1/audit", response_model=list[AuditOut], tags=["admin"])
def api_audit(_: AdminUser, session: SessionDep) -> list[AuditEvent]:
    """The latest security events (administrators only)."""
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all())
