"""Pages of logged-in users kept whole, by the user and a stamp of what the page shows.

A handler reads a small stamp that changes whenever what its page shows changes (the inbox:
its newest message and read state; 我的政策: the published rules, the enterprise's figures, the
day, the policy library and the open calls). The page is rendered once per (template, user as
shown, language, path and options, stamp) with a stand-in for the CSRF token, and each answer
puts the browser's own token in. The user is part of the key, so one user's page is never
served to another; a page whose stamp moved is never served again and ages out of the LRU.
Answers carry an ETag over the key and the browser's CSRF nonce, and a matching If-None-Match
gets 304.

A worker trusts a stamp it read for HUIQI_PAGE_STAMP_SECONDS, like the policy pages: while both
the user behind the cookie (huiqi.web.sessions) and the stamp are remembered, a reload is
answered on the event loop with no query, thread or template. When either has aged, the kept
page still answers and one read in the background renews both (huiqi.web.renew), so no reload
waits for the database while its page is kept. Any write this process sends to
the database (an INSERT, UPDATE or DELETE through its engine) forgets the remembered stamps at
once and again at its commit, so a user sees their own changes immediately; writes by other
processes (the other workers, the command line, the dispatcher) show within the interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from huiqi.accounts.models import User
from huiqi.core.lru import Lru
from huiqi.policy.cache import Stamps, etag, matches
from huiqi.web import renew
from huiqi.web.deps import (
    SESSION_COOKIE,
    KeptHtml,
    Viewer,
    kept_response,
    reading_session,
    render_kept,
)
from huiqi.web.i18n import request_lang
from huiqi.web.sessions import users

pages: Lru[KeptHtml] = Lru(4096)
stamps = Stamps(2.0)
_WROTE = "huiqi_kept_wrote"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC", "MERGE ")


def remembered_user(request: Request) -> User | None:
    """The user behind the request's session cookie while it is kept (read only), else None."""
    if "authorization" in request.headers:
        return None
    token = request.cookies.get(SESSION_COOKIE)
    return users.peek(token) if token else None


def remembered_page(
    request: Request,
    name: str,
    *,
    admits: Callable[[User], bool],
    stamp_key: Callable[[User], Hashable],
    read_stamp: Callable[[Session, User], Hashable | None],
    options: Hashable = (),
) -> Response | None:
    """The kept page of the user behind the cookie, else None (the caller takes its thread path).

    Needs the user (one that `admits` accepts) and the page's stamp (`stamp_key(user)`)
    remembered and the page kept for them. When the user or the stamp has aged, the page still
    answers and `read_stamp` runs in the background with the user read again (huiqi.web.renew).
    No query and no thread: safe to call on the event loop.
    """
    if "authorization" in request.headers:
        return None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user, renew_user = users.lookup(token)
    if user is None or not admits(user):
        return None
    key = stamp_key(user)
    stamp, renew_stamp = stamps.lookup(key)
    if stamp is None:
        return None
    viewer = Viewer.of(user)
    page_key = (name, viewer, request_lang(request), request.url.path, options, stamp)
    html = pages.peek(page_key)
    if html is None:
        return None
    if renew_user or renew_stamp:
        renew.later(("kept", token, key), _renew, token, key, stamp_key, read_stamp)
    request.state.viewer = viewer
    return _answer(request, page_key, html)


def _renew(
    token: str,
    key: Hashable,
    stamp_key: Callable[[User], Hashable],
    read_stamp: Callable[[Session, User], Hashable | None],
) -> None:
    """Read the user behind `token` and the stamp `key` again (in a worker thread)."""
    with reading_session() as session:
        user = users.user(session, token)  # keeps the user again, or forgets a logged-out one
        if user is None or stamp_key(user) != key:
            return  # logged out, or the page is another one now: the thread path decides
        stamp = read_stamp(session, user)
        if stamp is None:
            stamps.forget(key)
        else:
            stamps.put(key, stamp)


def kept_page(
    request: Request,
    name: str,
    stamp_key: Hashable,
    stamp: Hashable,
    context: Callable[[], dict[str, Any]],
    *,
    options: Hashable = (),
) -> Response:
    """The user's page `name` as kept for `stamp` (just read), rendered from `context()` if new.

    `request.state.viewer` must hold the logged-in user (see `web.deps.page_user`); `options`
    are the request's parameters that change the page (say, unread only); `stamp_key` names
    the stamp for `remembered_page`.
    """
    stamps.put(stamp_key, stamp)
    key = (name, request.state.viewer, request_lang(request), request.url.path, options, stamp)
    tag = etag(_key_digest(key), request.state.csrf_nonce)
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=_headers(tag))

    def make() -> KeptHtml:
        html = render_kept(request, name, **context())
        html.key_digest = _key_digest(key)
        return html

    # made once however many ask at the same moment (see Lru.get_or_make)
    return _answer(request, key, pages.get_or_make(key, make))


def _key_digest(key: Hashable) -> str:
    """A digest of a kept page's key (its stamp can be long: every published rule version)."""
    return hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()


def _answer(request: Request, key: Hashable, html: KeptHtml) -> Response:
    """The kept page with this browser's CSRF token, or 304 when its copy is current."""
    if html.key_digest is None:
        html.key_digest = _key_digest(key)
    # the key's digest is kept with the page: only the nonce is new per answer
    tag = etag(html.key_digest, request.state.csrf_nonce)
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=_headers(tag))
    return kept_response(request, html, _headers(tag))


def _headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Cookie"}


def _note_write(
    conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    """A write through this process's engine makes every remembered stamp old."""
    if statement.lstrip()[:6].upper() in _WRITES:
        stamps.clear()
        conn.info[_WROTE] = True


def _forget_after_commit(conn: Connection) -> None:
    """Forget again once the write is committed: a reader may have re-read the old stamp since."""
    if conn.info.pop(_WROTE, False):
        stamps.clear()


def _drop_mark(conn: Connection) -> None:
    conn.info.pop(_WROTE, None)


event.listen(Engine, "before_cursor_execute", _note_write)
event.listen(Engine, "commit", _forget_after_commit)
event.listen(Engine, "rollback", _drop_mark)
