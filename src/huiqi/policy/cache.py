"""Rendered policy pages, task breakdowns and search answers, cached by what they were made from.

A published version does not change; what can change later is attached to it (an officer's
correction of an article, a department mapped onto the registry, the status). Every such change
moves the policy's ``updated_at`` (see ``huiqi.policy.models.touch_changed_policies``), so a cache entry is keyed by a
stamp that one small query reads: the policy's status and ``updated_at`` and the newest
department mapping. Entries of an old stamp are never served again and age out of the LRU.
The stamp is read from the database on every request, so several worker processes stay correct
without telling each other anything.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from huiqi.policy.models import DepartmentAlias, Policy

V = TypeVar("V")


class Lru(Generic[V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        """Keep at most `size` entries."""
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or a new one made (outside the lock) and remembered."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


pages: Lru[Any] = Lru(512)
tasks: Lru[Any] = Lru(256)
searches: Lru[Any] = Lru(2048)


_ALIAS_MARK = select(func.coalesce(func.max(DepartmentAlias.id), 0)).scalar_subquery()
# built once: the stamp is read on every page view
_POLICY_STAMP = select(Policy.status, Policy.updated_at, _ALIAS_MARK).where(
    Policy.id == bindparam("policy_id")
)
_LIBRARY_STAMP = select(func.count(Policy.id), func.max(Policy.updated_at), _ALIAS_MARK)


def policy_stamp(session: Session, policy_id: int) -> tuple[str, str, int] | None:
    """(status, last change, newest department mapping) of a policy; None when it does not exist."""
    row = session.execute(_POLICY_STAMP, {"policy_id": policy_id}).one_or_none()
    if row is None:
        return None
    return str(row[0]), _iso(row[1]), int(row[2])


def library_stamp(session: Session) -> tuple[int, str, int]:
    """(policies, newest change, newest department mapping) of the whole library."""
    row = session.execute(_LIBRARY_STAMP).one()
    return int(row[0]), _iso(row[1]), int(row[2])


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def etag(*parts: object) -> str:
    """A weak validator over the parts a response was made from."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()
    return f'W/"{digest}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether a client's If-None-Match names this validator (weak comparison)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = tag.removeprefix("W/")
    return any(c.strip().removeprefix("W/") == bare for c in if_none_match.split(","))
