"""Admission control: a bounded number of requests at work, a bounded queue for the rest.

Every request that does work needs a worker thread and a database connection; there are
HUIQI_DB_POOL_SIZE + HUIQI_DB_MAX_OVERFLOW of each. Requests beyond that wait here, in arrival
order, for at most HUIQI_QUEUE_TIMEOUT_SECONDS, and are then answered 503 with Retry-After.
At most HUIQI_QUEUE_MAX_WAITING requests wait at once; the next one is answered 503 at once
instead of joining a queue it would only time out in. A burst therefore gets slower answers,
never a hang, and a client that opens a thousand connections fills the queue only up to its
bound: it is answered "busy" in microseconds while the requests already queued are served.
Static files skip the queue.
"""

from __future__ import annotations

import asyncio

from huiqi.web.csrf import ASGIApp, Receive, Scope, Send

BUSY_BODY = "系统繁忙,请稍后重试。 / Busy, please try again shortly.".encode()


class Admission:
    """Let at most `limit` requests work at once; at most `max_waiting` others wait `timeout` s."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        timeout: float,
        max_waiting: int,
        retry_after: int = 2,
    ) -> None:
        """Wrap the app."""
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.max_waiting = max_waiting
        self.retry_after = retry_after
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take a free slot, or wait for one (bounded in time and in number), then run."""
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if self._slots is None:  # made on first use, inside the server's event loop
            self._slots = asyncio.Semaphore(self.limit)
        if self._slots.locked():
            if self.waiting >= self.max_waiting:
                await self._busy(send)
                return
            self.waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self.timeout)
            except TimeoutError:
                await self._busy(send)
                return
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()  # free: returns at once
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
