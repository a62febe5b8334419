"""Per-request shell as one pure ASGI middleware: CSRF nonce cookie, language cookie, safe headers.

A pure ASGI middleware adds next to nothing to a request; Starlette's `@app.middleware("http")`
runs every request through a task group and memory streams, which costs a busy server a large
share of its throughput.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.requests import cookie_parser

from huiqi.web.csrf import CSRF_COOKIE, ASGIApp, Message, Receive, Scope, Send
from huiqi.web.i18n import LANG_COOKIE, LANGUAGES

SAFE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def _cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies (only the first Cookie header counts, as in Starlette).

    Starlette's lenient parser, as `request.cookies` uses: the standard library's SimpleCookie
    is a regular-expression state machine that costs a busy server noticeably per request.
    """
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1"))
    return {}


class RequestShell:
    """Give every browser a CSRF nonce, remember a language switch, set safe headers."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool) -> None:
        """Wrap the app; `cookie_secure` marks the nonce cookie Secure."""
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set request.state.csrf_nonce and decorate the response's headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = _cookies(scope).get(CSRF_COOKIE)
        fresh = nonce is None
        state = scope.setdefault("state", {})
        state["csrf_nonce"] = nonce or secrets.token_urlsafe(24)
        lang: str | None = None
        query = scope.get("query_string", b"")
        if b"lang=" in query:
            values = parse_qs(query.decode("latin-1")).get("lang")
            if values:
                lang = values[0] if values[0] in LANGUAGES else "zh"

        async def decorated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if fresh:
                    secure = "; secure" if self.cookie_secure else ""
                    headers.append(
                        "set-cookie",
                        f"{CSRF_COOKIE}={state['csrf_nonce']}; httponly; path=/; "
                        f"samesite=lax{secure}",
                    )
                if lang is not None:
                    headers.append(
                        "set-cookie",
                        f"{LANG_COOKIE}={lang}; Max-Age={365 * 86400}; path=/; samesite=lax",
                    )
                for name, value in SAFE_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, decorated)
