"""Log-in, log-out, account and administration pages, and the accounts API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from huiqi.accounts import service
from huiqi.accounts.models import ApiToken, AuditEvent, Role, User
from huiqi.accounts.schemas import AuditOut, TokenOut, TokenRequest, UserIn, UserOut
from huiqi.core.db import session_factory
from huiqi.web.deps import (
    SESSION_COOKIE,
    current_user,
    get_session,
    render,
    require_roles,
)
from huiqi.web.i18n import pick, request_lang

router = APIRouter()


def _throttle(request: Request) -> service.Throttle:
    """The log-in throttle configured for this app."""
    settings = request.app.state.settings
    return service.Throttle(
        max_failures=settings.login_max_failures,
        window=timedelta(minutes=settings.login_window_minutes),
    )


def _client_ip(request: Request) -> str | None:
    """The peer address, for the audit log."""
    return request.client.host if request.client else None


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
                throttle=_throttle(request),
            )
        except service.ThrottledError:
            session.commit()
            request.state.user = None
            request.state.viewer = None
            message = pick(
                lang,
                f"登录失败次数过多,请 {settings.login_window_minutes} 分钟后再试。",
                f"Too many failed attempts. Try again in {settings.login_window_minutes} minutes.",
            )
            return render(
                request,
                "accounts/login.html",
                status_code=429,
                next=_safe_next(next),
                error=message,
            )
        except service.AccountError:
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
def logout(request: Request, session: Session = Depends(get_session)) -> Response:
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
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """The user's own account: binding and API tokens."""
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ).all()
    return render(request, "accounts/account.html", tokens=tokens, new_token=None)


@router.post("/account/tokens", include_in_schema=False)
def account_new_token(
    request: Request,
    name: Annotated[str, Form()],
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """Create an API token and show it once."""
    token = service.create_token(session, user, name)
    session.flush()
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ).all()
    return render(request, "accounts/account.html", tokens=tokens, new_token=token)


@router.post("/account/tokens/{token_id}/revoke", include_in_schema=False)
def account_revoke_token(
    token_id: int,
    user: User = Depends(current_user),
    session: Session = Depends(get_session),
) -> Response:
    """Revoke one of the user's own tokens."""
    service.revoke_token(session, user, token_id)
    return RedirectResponse("/account", status_code=303)


@router.get("/admin/users", include_in_schema=False)
def admin_users(
    request: Request,
    _: User = Depends(require_roles(Role.admin)),
    session: Session = Depends(get_session),
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
    binding: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    actor: User = Depends(require_roles(Role.admin)),
    session: Session = Depends(get_session),
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
            error=str(exc),
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/role", include_in_schema=False)
def admin_set_role(
    user_id: int,
    role: Annotated[str, Form()],
    binding: Annotated[str, Form()] = "",
    actor: User = Depends(require_roles(Role.admin)),
    session: Session = Depends(get_session),
) -> Response:
    """Change a user's role and binding."""
    target = session.get(User, user_id)
    if target is None:
        raise HTTPException(status_code=404, detail="no such user")
    bound = binding.strip() or None
    try:
        service.set_role(
            session,
            target,
            role,
            department=bound if role == Role.officer else None,
            credit_code=bound if role == Role.enterprise else None,
            institution=bound if role == Role.bank else None,
            actor=actor,
        )
    except (service.AccountError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/audit", include_in_schema=False)
def admin_audit(
    request: Request,
    _: User = Depends(require_roles(Role.admin)),
    session: Session = Depends(get_session),
) -> Response:
    """The latest security events."""
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all()
    return render(request, "accounts/audit.html", events=events)


@router.post("/api/v1/auth/token", response_model=TokenOut, tags=["auth"])
def api_token(request: Request, body: TokenRequest) -> TokenOut:
    """Exchange a username and password for a bearer token (throttled like the log-in form)."""
    with session_factory()() as session:
        try:
            user = service.authenticate(
                session,
                body.username,
                body.password,
                ip=_client_ip(request),
                throttle=_throttle(request),
            )
        except service.ThrottledError:
            session.commit()
            raise HTTPException(status_code=429, detail="too many failed attempts") from None
        except service.AccountError:
            session.commit()
            raise HTTPException(status_code=401, detail="wrong username or password") from None
        token = service.create_token(session, user, body.name)
        session.commit()
    return TokenOut(token=token)


@router.get("/api/v1/me", response_model=UserOut, tags=["auth"])
def api_me(user: User = Depends(current_user)) -> User:
    """The authenticated user."""
    return user


@router.get("/api/v1/users", response_model=list[UserOut], tags=["admin"])
def api_users(
    _: User = Depends(require_roles(Role.admin)), session: Session = Depends(get_session)
) -> list[User]:
    """All users (administrators only)."""
    return list(session.scalars(select(User).order_by(User.id)).all())


@router.post("/api/v1/users", response_model=UserOut, status_code=201, tags=["admin"])
def api_create_user(
    body: UserIn,
    actor: User = Depends(require_roles(Role.admin)),
    session: Session = Depends(get_session),
) -> User:
    """Create a user (administrators only)."""
    return service.create_user(session, actor=actor, **body.model_dump())


@router.get("/api/v1/audit", response_model=list[AuditOut], tags=["admin"])
def api_audit(
    _: User = Depends(require_roles(Role.admin)), session: Session = Depends(get_session)
) -> list[AuditEvent]:
    """The latest security events (administrators only)."""
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(200)).all())
