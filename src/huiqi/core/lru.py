"""A small thread-safe least-recently-used map for answers kept in a server process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

# how long a caller waits for another thread making the same value before making it itself
MAKE_WAIT_SECONDS = 10.0


class Lru(Generic[V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        """Keep at most `size` entries."""
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        # values being made, so that concurrent callers for the same key wait instead
        self._making: dict[Hashable, threading.Event] = {}

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or one made (outside the lock) by the first caller that asks.

        Callers asking for the same key meanwhile wait for that value instead of making it
        too: without this, every request arriving while a page is new (a cold worker, a stamp
        that moved) would render it at the same time, and a busy page would stall every worker
        thread at once. If the first maker fails, the next caller makes it.
        """
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            made = self._making.get(key)
            first = made is None
            if made is None:
                made = self._making[key] = threading.Event()
        if not first:
            made.wait(MAKE_WAIT_SECONDS)
            with self._lock:
                if key in self._data:
                    return self._data[key]
        try:
            value = make()
            self.put(key, value)
            return value
        finally:
            if first:
                with self._lock:
                    self._making.pop(key, None)
                made.set()

    def peek(self, key: Hashable) -> V | None:
        """The cached value or None, without taking the lock (readers on the event loop)."""
        return self._data.get(key)

    def put(self, key: Hashable, value: V) -> None:
        """Remember a value."""
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
