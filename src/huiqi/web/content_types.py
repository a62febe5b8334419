"""Content types checked at the API edge: a body an operation cannot read is refused with 415."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match

from huiqi.web.headers import ASGIApp, Receive, Scope, Send

JSON = frozenset({"application/json"})
FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
WITH_BODY = {"POST", "PUT", "PATCH"}


def accepted_types(route: APIRoute) -> frozenset[str] | None:
    """The media types an API operation reads its body from (None: it reads no body)."""
    field = route.body_field
    if field is None:
        return None
    return FORMS if isinstance(field.field_info, params.Form) else JSON


class ApiContentTypes:
    """Refuse API requests whose Content-Type the operation does not read (415).

    Without this a text or form body sent to a JSON operation reached request validation as raw
    bytes; now the client hears which type to send.
    """

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        """Wrap the app; the operations' media types are read from `routes` on first use."""
        self.app = app
        self.routes = routes
        self._table: list[tuple[APIRoute, frozenset[str]]] | None = None

    def table(self) -> list[tuple[APIRoute, frozenset[str]]]:
        """Each API operation that reads a body, with the media types it accepts."""
        if self._table is None:
            self._table = [
                (route, kinds)
                for route in self.routes
                if isinstance(route, APIRoute)
                and route.path.startswith("/api/")
                and (kinds := accepted_types(route)) is not None
            ]
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the media type of API requests with a body, then pass them on."""
        if (
            scope["type"] == "http"
            and scope["method"] in WITH_BODY
            and scope["path"].startswith("/api/")
        ):
            media = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
            for route, kinds in self.table():
                match, _ = route.matches(scope)
                if match == Match.FULL:
                    if media not in kinds:
                        await self._refuse(send, sorted(kinds), media)
                        return
                    break
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Send, kinds: list[str], media: str) -> None:
        wanted = " 或 ".join(kinds)
        body: dict[str, Any] = {
            "detail": f"send the body as {' or '.join(kinds)} (got {media or 'no Content-Type'})",
            "detail_zh": f"请求体须为 {wanted}(收到 {media or '未声明类型'})",
        }
        payload = json.dumps(body, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 415,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
