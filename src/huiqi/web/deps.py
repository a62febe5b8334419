"""Request dependencies: database session, current user, role checks and page rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from huiqi.accounts import service as accounts
from huiqi.accounts.models import ROLE_LABELS, Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.core import security
from huiqi.core.db import read_session, session_factory
from huiqi.enterprise import repository as ent_repo
from huiqi.web import display
from huiqi.web.csrf import CSRF_FIELD
from huiqi.web.i18n import pick, request_lang
from huiqi.web.nav import GROUPS, breadcrumbs, menus_for, nav_for
from huiqi.web.sessions import users as session_users
from huiqi.web.transaction import STATE_KEY

SESSION_COOKIE = "huiqi_session"
TEMPLATE_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
# Templates compare roles with the enum too: {% if user.role == Role.enterprise %}.
templates.env.globals["Role"] = Role
# Templates change only with the code, which restarts the server (`--reload` watches them too):
# checking every template file's mtime on every render costs a busy server a stat() per page.
templates.env.auto_reload = False
display.install(templates.env)
# Stands in for the visitor's CSRF token in pages rendered once for every anonymous visitor.
CSRF_STAND_IN = "csrf-" + secrets.token_hex(16)


class KeptHtml:
    """A page rendered with the CSRF stand-in, kept encoded and split around it.

    Each answer joins the parts with the visitor's token: no re-encoding of a page of a
    hundred kilobytes, and no search for the stand-in, per request.
    """

    __slots__ = ("_parts", "key_digest")

    def __init__(self, html: str) -> None:
        """Split and encode `html` once."""
        self._parts = [part.encode() for part in html.split(CSRF_STAND_IN)]
        # set by the cache that keeps the page: a digest of what it was made from (for ETags)
        self.key_digest: str | None = None

    def with_token(self, token: str) -> bytes:
        """The page's bytes with `token` where the stand-in was."""
        return token.encode().join(self._parts)

    def __len__(self) -> int:
        """The size in bytes without tokens (for the caches' bookkeeping and tests)."""
        return sum(len(part) for part in self._parts)


@dataclass(frozen=True)
class Viewer:
    """What pages show of the logged-in user; a plain copy that outlives the request's session."""

    id: int
    username: str
    display_name: str
    role: str
    department: str | None
    credit_code: str | None
    institution: str | None
    binding: str | None

    @classmethod
    def of(cls, user: User) -> Viewer:
        """Copy the shown fields of a user."""
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            department=user.department,
            credit_code=user.credit_code,
            institution=user.institution,
            binding=user.binding,
        )


def _remember(request: Request, user: User | None) -> None:
    """Keep the user for this request, and a detached copy for rendering pages."""
    request.state.user = user
    request.state.viewer = Viewer.of(user) if user is not None else None


class LoginRequired(Exception):
    """Raised when a page or API call needs a logged-in user."""


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; CommitBeforeResponse commits it when the response succeeds.

    Requests that read (GET, HEAD) take no write lock on SQLite; those that write start
    their transaction IMMEDIATE (see huiqi.core.db).
    """
    session = read_session() if request.method in READ_METHODS else session_factory()()
    setattr(request.state, STATE_KEY, session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def reading_session() -> Iterator[Session]:
    """A session for a route that runs its reads off the event loop by itself; it never commits."""
    session = read_session()
    try:
        yield session
    finally:
        session.close()


def optional_user(request: Request, session: Session = Depends(get_session)) -> User | None:
    """The user behind a bearer token or session cookie, if any."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    user: User | None = None
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = accounts.user_for_token(session, auth[7:].strip())
        if user is None:
            raise HTTPException(status_code=401, detail="invalid or revoked API token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            user = session_users.user(session, cookie)
    _remember(request, user)
    return user


def _resolve_user_for_page(request: Request) -> None:
    """Find the visitor of a page that did not ask for a user, so navigation shows their role.

    The request's own session is reused when the page has one: a second session would wait
    on the first one's SQLite write lock until the busy timeout.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        _remember(request, None)
        return
    session: Session | None = getattr(request.state, STATE_KEY, None)
    if session is not None:
        _remember(request, session_users.user(session, cookie))
        return
    with read_session() as own:
        _remember(request, session_users.user(own, cookie))


# The two checks below only look at the user already found: as coroutines they run on the event
# loop, where a plain function would cost each request a trip to a worker thread.
async def current_user(user: User | None = Depends(optional_user)) -> User:
    """The logged-in user; anonymous visitors are sent to the log-in page (401 for the API)."""
    return _logged_in(user)


def require_roles(*roles: Role) -> Callable[..., Any]:
    """A dependency that admits only users with one of the given roles."""
    allowed = {Role(r).value for r in roles}

    async def check(user: User = Depends(current_user)) -> User:
        return _admitted(user, allowed)

    return check


def _admitted(user: User, allowed: set[str]) -> User:
    """The user when their role is allowed; 403 otherwise."""
    if user.role not in allowed:
        raise HTTPException(status_code=403, detail="your role may not open this")
    return user


def page_user(request: Request, session: Session, *roles: Role) -> User:
    """The logged-in user of a route that does its work in one trip to a worker thread.

    The same checks as `CurrentUser` / `require_roles`, for handlers that are coroutines and
    run their reads with `reading_session()`: a plain route pays a thread trip per dependency.
    """
    user = _logged_in(optional_user(request, session))
    return _admitted(user, {Role(r).value for r in roles}) if roles else user


def _logged_in(user: User | None) -> User:
    """The user, or LoginRequired for an anonymous visitor."""
    if user is None:
        raise LoginRequired()
    return user


def ensure_enterprise_access(session: Session, user: User, credit_code: str) -> None:
    """Object-level check: an enterprise user may only touch its own enterprise's data, a city
    or county officer only enterprises of its region (others are "not found")."""
    if user.role == Role.bank:
        raise HTTPException(status_code=403, detail="your role may not open this")
    if user.role == Role.enterprise and not can_access(scope_of(user), credit_code=credit_code):
        raise HTTPException(status_code=404, detail="not found")
    if user.role == Role.officer and user.region_prefix:
        region = ent_repo.region_of(session, credit_code) or ""
        if not can_access(scope_of(user), region=region):
            raise HTTPException(status_code=404, detail="not found")


# The session and the users of each role, for route signatures:
# ``def page(session: SessionDep, user: OfficerUser) -> Response``.
SessionDep = Annotated[Session, Depends(get_session)]
CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
# Officers' pages are open to administrators too.
OfficerUser = Annotated[User, Depends(require_roles(Role.officer, Role.admin))]
EnterpriseUser = Annotated[User, Depends(require_roles(Role.enterprise))]
BankUser = Annotated[User, Depends(require_roles(Role.bank))]


def csrf_input(request: Request) -> Markup:
    """The hidden form field carrying this browser's CSRF token."""
    token = security.csrf_token_for(request.app.state.settings.secret_key, request.state.csrf_nonce)
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')


def _group_of(crumbs: list[tuple[str, str, str]]) -> str:
    """The menu the current page belongs to (its breadcrumb's group)."""
    names = {zh: key for key, (zh, _en) in GROUPS.items()}
    for zh, _en, _href in reversed(crumbs[1:]):
        if zh in names:
            return names[zh]
    return ""


def is_anonymous(request: Request) -> bool:
    """Whether the request carries no log-in at all (no session cookie, no bearer token)."""
    return SESSION_COOKIE not in request.cookies and "authorization" not in request.headers


def render_public(request: Request, name: str, **context: Any) -> KeptHtml:
    """A page as every anonymous visitor sees it, with a stand-in for the CSRF token.

    Such a page can be kept and served to the next anonymous visitor of the same path and
    language through `public_response`, which puts that visitor's own token in.
    """
    request.state.viewer = None
    base = _page_context(request, None, CSRF_STAND_IN, context)
    base["csrf_input"] = lambda: Markup(
        f'<input type="hidden" name="{CSRF_FIELD}" value="{CSRF_STAND_IN}">'
    )
    return KeptHtml(templates.get_template(name).render(base))


def render_kept(request: Request, name: str, **context: Any) -> KeptHtml:
    """A logged-in user's page with a stand-in for the CSRF token, to be kept (`web.kept`)."""
    base = _page_context(request, request.state.viewer, CSRF_STAND_IN, context)
    base["csrf_input"] = lambda: Markup(
        f'<input type="hidden" name="{CSRF_FIELD}" value="{CSRF_STAND_IN}">'
    )
    return KeptHtml(templates.get_template(name).render(base))


def kept_response(request: Request, page: KeptHtml, headers: dict[str, str]) -> Response:
    """A kept page (see `render_public`, `render_kept`) with this visitor's CSRF token."""
    token = security.csrf_token_for(request.app.state.settings.secret_key, request.state.csrf_nonce)
    return HTMLResponse(page.with_token(token), headers=headers)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """Render a page with the user, language, navigation and CSRF helpers in its context."""
    if not hasattr(request.state, "viewer"):
        _resolve_user_for_page(request)
    user: Viewer | None = request.state.viewer
    token = security.csrf_token_for(request.app.state.settings.secret_key, request.state.csrf_nonce)
    base = _page_context(request, user, token, context)
    return templates.TemplateResponse(request, name, base, status_code=status_code)


def _page_context(
    request: Request, user: Viewer | None, token: str, context: dict[str, Any]
) -> dict[str, Any]:
    """What every page template sees: user, language, navigation, CSRF helpers, then `context`."""
    lang = request_lang(request)

    def t(zh: str, en: str) -> str:
        return pick(lang, zh, en)

    crumbs = breadcrumbs(user.role if user else None, request.url.path)
    base = {
        "request": request,
        "user": user,
        "lang": lang,
        "t": t,
        "nav": nav_for(user.role if user else None),
        "menus": menus_for(user.role if user else None),
        "crumbs": crumbs,
        "current_group": _group_of(crumbs),
        "role_label": (pick(lang, *ROLE_LABELS[user.role]) if user is not None else ""),
        "csrf_input": lambda: csrf_input(request),
        "csrf_token": token,
    }
    base.update(context)
    return base
