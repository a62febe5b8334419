"""Admission control: a bounded number of requests at work, a bounded wait for the rest.

Every request that does work needs a worker thread and a database connection; there are
HUIQI_DB_POOL_SIZE + HUIQI_DB_MAX_OVERFLOW of each. Requests beyond that wait here, in arrival
order, for at most HUIQI_QUEUE_TIMEOUT_SECONDS, and are then answered 503 with Retry-After. A
burst therefore gets slower answers, never a hang, and a server that fell behind does not keep
working for clients that have long given up. Static files skip the queue.
"""

from __future__ import annotations

import asyncio

from huiqi.web.csrf import ASGIApp, Receive, Scope, Send

BUSY_BODY = "系统繁忙,请稍后重试。 / Busy, please try again shortly.".encode()


class Admission:
    """Let at most `limit` requests work at once; others wait up to `timeout` seconds."""

    def __init__(self, app: ASGIApp, *, limit: int, timeout: float, retry_after: int = 2) -> None:
        """Wrap the app."""
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.retry_after = retry_after
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wait for a slot (bounded), then run the request."""
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made on first use, inside the server's event loop
            self._slots = asyncio.Semaphore(self.limit)
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except TimeoutError:
            await self._busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _busy(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(BUSY_BODY)).encode()),
                    (b"retry-after", str(self.retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": BUSY_BODY})
