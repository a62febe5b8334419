"""Reads that renew kept answers, run in the threadpool after the answer has gone out.

A kept answer (a policy page, a search, 我的政策, the inbox, /healthz) is trusted for a short
interval; once that ages out, one request is picked to read the stamp again. That request used
to wait for the read: a thread trip and a few round trips to the database, which on a busy
machine took 0.3–2.5 s (the database's own process and the worker thread both waiting for a
core, the event loop holding the GIL) — the one request in a few hundred thousand that missed a
client's 2 s limit. Now it is answered from the kept answer like every other request, and the
read runs here in the background, at most one per key at a time; the answer it renews is no
older than before (the other requests never waited for it either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

import anyio.to_thread

log = logging.getLogger(__name__)

# renewals under way, by key; holding the task keeps it alive (the loop keeps weak references)
_running: dict[Hashable, asyncio.Task[None]] = {}


def later(key: Hashable, read: Callable[..., Any], *args: Any) -> bool:
    """Run `read(*args)` in the threadpool unless a renewal of `key` is under way.

    Returns whether it was started. Call from the event loop; a failure is logged, never raised.
    """
    loop = asyncio.get_running_loop()
    under_way = _running.get(key)
    if under_way is not None and not under_way.done() and under_way.get_loop() is loop:
        return False
    task = loop.create_task(_run(key, read, args))
    _running[key] = task
    task.add_done_callback(partial(_finished, key))
    return True


def _finished(key: Hashable, task: asyncio.Task[None]) -> None:
    if _running.get(key) is task:
        del _running[key]


async def _run(key: Hashable, read: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        await anyio.to_thread.run_sync(read, *args)
    except Exception:  # the next request that finds the answer aged tries again
        log.warning("renewing %r failed", key, exc_info=True)


def running() -> int:
    """How many renewals are under way."""
    return len(_running)


async def drain(timeout: float) -> None:
    """Wait up to `timeout` seconds for the renewals under way on this loop (at shutdown)."""
    loop = asyncio.get_running_loop()
    # a task of another loop (an app served before on a loop now gone) cannot be awaited here
    tasks = [task for task in _running.values() if task.get_loop() is loop]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
