"""The request boundary commits: pending work is committed just before the response starts."""

from __future__ import annotations

import json
import logging

from starlette.concurrency import run_in_threadpool

from huiqi.core.db import has_writes
from huiqi.web.csrf import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("huiqi.web")

STATE_KEY = "db_session"


class CommitBeforeResponse:
    """Commit the request's session when a successful response starts, roll back otherwise.

    Committing here (not after the dependency's yield, which runs once the response has
    been sent) means a failed commit becomes a 500 instead of a success the client
    believes in. The commit runs in the threadpool: a commit waits on the disk (and on
    SQLite's write lock), which must not stall every other request on the event loop. A
    session that only read has nothing to commit; the dependency's close ends its
    transaction after the response, and the request skips a trip to the threadpool.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap the app."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Intercept the start of the response to finish the unit of work."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def finishing_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                session = scope.get("state", {}).get(STATE_KEY)
                if session is not None and has_writes(session):
                    try:
                        if message["status"] < 400:
                            await run_in_threadpool(session.commit)
                        else:
                            await run_in_threadpool(session.rollback)
                    except Exception:
                        log.exception("commit failed on %s", scope.get("path"))
                        replaced = True
                        try:
                            await run_in_threadpool(session.rollback)
                        except Exception:  # a broken connection: nothing was committed either way
                            log.exception("rollback after the failed commit failed too")
                        await _send_500(send, str(scope.get("path", "")).startswith("/api/"))
                        return
            await send(message)

        await self.app(scope, receive, finishing_send)


NOT_SAVED = (
    "服务器内部错误:数据未能保存,请重试。 / Internal error: nothing was saved, please retry."
)


async def _send_500(send: Send, api: bool) -> None:
    """The answer when the commit itself fails: nothing of the request was saved."""
    if api:
        body = json.dumps({"detail": NOT_SAVED}, ensure_ascii=False).encode()
        media = b"application/json"
    else:
        body = NOT_SAVED.encode()
        media = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
