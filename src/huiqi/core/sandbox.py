"""Run a function on untrusted input in a separate, bounded process.

Parsing an uploaded file (a Word document, a web page, a spreadsheet) must neither freeze the
server nor take its memory. The function runs in a child process forked from a small fork server,
under a memory ceiling (``RLIMIT_AS``) and a CPU-time ceiling; the caller waits for it with a
wall-clock limit (off the event loop when the caller is async) and kills it past that. A child
that runs out of memory dies alone. At most ``workers`` children run at once per limit set.

The function and its arguments must be picklable (a module-level function); its return value is
sent back. Domain code maps :class:`Overrun` to its own clear message.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(frozen=True)
class Bounds:
    """Wall-clock time, memory and concurrency bounds of one kind of bounded work."""

    timeout_seconds: float = 30.0
    memory_mb: int = 1024
    workers: int = 2


class Overrun(Exception):
    """The child was stopped: ``kind`` is ``timeout``, ``memory`` or ``failed`` (with detail)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


_lock = threading.Lock()
_context: Any = None
_preload: set[str] = set()
_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def _mp_context(preload: Sequence[str]) -> Any:
    """The fork-server context; modules named before its server first starts are preloaded."""
    global _context
    with _lock:
        if _context is None:
            _context = multiprocessing.get_context("forkserver")
        if not set(preload) <= _preload:
            # takes effect only if the fork server has not started yet; later children import
            # what they need themselves
            _preload.update(preload)
            _context.set_forkserver_preload(sorted(_preload))
        return _context


def _slot(name: str, workers: int) -> threading.BoundedSemaphore:
    with _lock:
        return _slots.setdefault((name, workers), threading.BoundedSemaphore(workers))


def _child(
    conn: Connection,
    target: Callable[..., Any],
    args: tuple[Any, ...],
    memory_mb: int,
    cpu_seconds: int,
) -> None:
    """Child body: apply the ceilings, run the target, send back its result or what stopped it."""
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    try:
        conn.send(("ok", target(*args)))
    except MemoryError:
        conn.send(("memory", ""))
    except Exception as exc:  # any other failure on untrusted input is reported, never raised
        conn.send(("failed", type(exc).__name__))
    finally:
        conn.close()


def run_bounded(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    bounds: Bounds,
    *,
    name: str = "default",
    preload: Sequence[str] = (),
) -> Any:
    """Run ``target(*args)`` in a bounded child process and return its result (blocks).

    Raises :class:`Overrun` when the child runs past the time limit (it is killed), runs out of
    memory or dies, or raises. ``name`` groups the concurrency slots of one kind of work.
    """
    context = _mp_context(preload)
    cpu = int(bounds.timeout_seconds) + 2
    with _slot(name, bounds.workers):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child, args=(sender, target, args, bounds.memory_mb, cpu), daemon=True
        )
        process.start()
        sender.close()
        try:
            if not receiver.poll(bounds.timeout_seconds):
                raise Overrun("timeout")
            try:
                status, payload = receiver.recv()
            except EOFError:
                status, payload = "memory", ""
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(5)
    if status == "ok":
        return payload
    raise Overrun(status, payload)
