"""Admission control: a bounded number at work; the rest wait a bounded time, then get 503."""

from __future__ import annotations

import asyncio
from typing import Any

from huiqi.web.admission import Admission


async def _call(app: Any, path: str = "/policy/1") -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET"}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"])


def test_requests_beyond_the_limit_wait_then_get_503() -> None:
    release = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = Admission(slow, limit=1, timeout=0.2, max_waiting=10, retry_after=2)

    async def scenario() -> None:
        first = asyncio.create_task(_call(gate))
        await asyncio.sleep(0.05)
        status, headers = await _call(gate)  # waits 0.2 s for the busy slot, then gives up
        assert status == 503 and headers[b"retry-after"] == b"2"
        release.set()
        assert (await first)[0] == 200
        # the slot is free again: the next request is served
        assert (await _call(gate))[0] == 200

    asyncio.run(scenario())


def test_beyond_the_queue_bound_the_answer_is_503_at_once() -> None:
    """Two wait for the one slot; the third is told "busy" without waiting, then all are served."""
    release = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = Admission(slow, limit=1, timeout=60, max_waiting=2, retry_after=3)

    async def scenario() -> None:
        working = asyncio.create_task(_call(gate))
        await asyncio.sleep(0.01)
        queued = [asyncio.create_task(_call(gate)) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert gate.waiting == 2
        # the queue is full: answered at once, long before the 60 s wait would end
        status, headers = await asyncio.wait_for(_call(gate), 1)
        assert status == 503 and headers[b"retry-after"] == b"3"
        release.set()
        assert [(await task)[0] for task in (working, *queued)] == [200, 200, 200]
        assert gate.waiting == 0

    asyncio.run(scenario())


def test_a_waiting_request_whose_client_went_away_leaves_the_queue() -> None:
    """A cancelled waiter (the connection closed) frees its place in the queue."""
    release = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = Admission(slow, limit=1, timeout=60, max_waiting=1)

    async def scenario() -> None:
        working = asyncio.create_task(_call(gate))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(_call(gate))
        await asyncio.sleep(0.01)
        assert gate.waiting == 1
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert gate.waiting == 0
        late = asyncio.create_task(_call(gate))  # has the place the cancelled one left
        await asyncio.sleep(0.01)
        release.set()
        assert (await working)[0] == 200 and (await late)[0] == 200

    asyncio.run(scenario())
