"""CSRF protection and the request-body size limit, as one pure ASGI middleware."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request

from huiqi.core import security

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_COOKIE = "huiqi_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class CsrfAndSizeMiddleware:
    """Reject oversized bodies (413) and unsafe requests without a valid CSRF token (403).

    Requests that a cross-site page cannot forge are exempt (see _exempt).
    """

    def __init__(self, app: ASGIApp, *, secret_key: str, max_body: int) -> None:
        """Wrap the app with the secret used to sign tokens and the body limit in bytes."""
        self.app = app
        self.secret_key = secret_key
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer and check unsafe requests, then replay the body to the app."""
        if scope["type"] != "http" or scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(scope, send, 413, "上传内容过大", "Request body too large")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, send, 413, "上传内容过大", "Request body too large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

        if not self._exempt(scope, headers):
            token = headers.get(CSRF_HEADER)
            if token is None:
                token = await self._form_token(scope, body)
            nonce = Request(scope).cookies.get(CSRF_COOKIE)
            if not security.csrf_token_valid(self.secret_key, nonce, token):
                await self._refuse(
                    scope,
                    send,
                    403,
                    "表单已过期或来源不可信(CSRF 校验失败),请刷新页面后重试",
                    "CSRF check failed: reload the page and try again",
                )
                return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _exempt(scope: Scope, headers: Headers) -> bool:
        """Bearer-token calls, and JSON bodies sent to the API, cannot be forged cross-site.

        A browser adds no Authorization header by itself, and it cannot send an
        application/json body to another origin without a CORS preflight, which huiqi
        never grants.
        """
        if headers.get("authorization", "").lower().startswith("bearer "):
            return True
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return scope["path"].startswith("/api/") and content_type == "application/json"

    @staticmethod
    async def _form_token(scope: Scope, body: bytes) -> str | None:
        """Read the CSRF field from a urlencoded or multipart form body."""
        content_type = Headers(scope=scope).get("content-type", "")
        if not content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            return None
        delivered = False

        async def once() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request(scope, once)
        try:
            form = await request.form()
        except Exception:  # a malformed form is refused by the CSRF check below
            return None
        value = form.get(CSRF_FIELD)
        await form.close()
        return value if isinstance(value, str) else None

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, zh: str, en: str) -> None:
        """Answer with JSON for API paths and a short Chinese page for the rest."""
        if scope["path"].startswith("/api/"):
            body = json.dumps({"detail": en, "detail_zh": zh}, ensure_ascii=False).encode()
            ctype = b"application/json"
        else:
            body = (
                "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>"
                f"{status}</title><main><h1>{status}</h1><p>{zh}</p><p>{en}</p>"
                "<p><a href='/'>返回首页</a></p></main></html>"
            ).encode()
            ctype = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
