"""Pages of logged-in users kept whole, by the user and a stamp of what the page shows.

A handler reads a small stamp that changes whenever what its page shows changes (the inbox:
its newest message and read state; 我的政策: the published rules, the enterprise's figures, the
day, the policy library and the open calls). The page is rendered once per (template, user as
shown, language, path and options, stamp) with a stand-in for the CSRF token, and each answer
puts the browser's own token in. The user is part of the key, so one user's page is never
served to another; a page whose stamp moved is never served again and ages out of the LRU.
Answers carry an ETag over the key and the browser's CSRF nonce, and a matching If-None-Match
gets 304.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from huiqi.core import security
from huiqi.core.lru import Lru
from huiqi.policy.cache import etag, matches
from huiqi.web.deps import CSRF_STAND_IN, render_kept
from huiqi.web.i18n import request_lang

pages: Lru[str] = Lru(4096)


def kept_page(
    request: Request,
    name: str,
    stamp: Hashable,
    context: Callable[[], dict[str, Any]],
    *,
    options: Hashable = (),
) -> Response:
    """The user's page `name` as kept for `stamp`, rendered from `context()` when not kept yet.

    `request.state.viewer` must hold the logged-in user (see `web.deps.page_user`); `options`
    are the request's parameters that change the page (say, unread only).
    """
    key = (name, request.state.viewer, request_lang(request), request.url.path, options, stamp)
    nonce = request.state.csrf_nonce
    tag = etag(key, nonce)
    headers = {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Cookie"}
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    html = pages.get_or_make(key, lambda: render_kept(request, name, **context()))
    token = security.csrf_token_for(request.app.state.settings.secret_key, nonce)
    return HTMLResponse(html.replace(CSRF_STAND_IN, token), headers=headers)
