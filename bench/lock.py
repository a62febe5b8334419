"""The benchmarks' lock: timed steps hold an flock so that runs on a shared machine take turns."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held(lock: str | None) -> Iterator[None]:
    """An exclusive flock on `lock` for the block (nothing when None)."""
    if lock is None:
        yield
        return
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
