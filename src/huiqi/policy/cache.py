"""Rendered policy pages, task breakdowns and search answers, cached by what they were made from.

A published version does not change; what can change later is attached to it (an officer's
correction of an article, a department mapped onto the registry, the status). Every such change
moves the policy's ``updated_at`` (see ``huiqi.policy.models.touch_changed_policies``), so a cache entry is keyed by a
stamp that one small query reads: the policy's status and ``updated_at`` and the newest
department mapping. Entries of an old stamp are never served again and age out of the LRU.
A worker remembers each stamp it read for HUIQI_PAGE_STAMP_SECONDS, so an anonymous page view or
search that hits the cache costs neither a query nor a template; any flush in the same process
that writes a policy or a department mapping forgets the remembered stamps at once, and the other
worker processes read the new stamp when theirs age out, without telling each other anything.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Hashable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from huiqi.core.lru import Lru
from huiqi.policy.models import (
    DepartmentAlias,
    Policy,
    PolicyArticle,
    PolicyInterpretation,
    PolicySection,
    PolicyTask,
    PolicyVersion,
)

if TYPE_CHECKING:
    from huiqi.web.deps import KeptHtml

_WATCHED = (
    Policy,
    PolicyArticle,
    PolicySection,
    PolicyVersion,
    PolicyTask,
    PolicyInterpretation,
    DepartmentAlias,
)
_CHANGED = "huiqi_policy_changed"


# How long past its interval an aged stamp may still answer while a read of it is under way
# (huiqi.web.renew); a worker whose reads have not come back by then reads before answering.
STALE_GRACE_SECONDS = 5.0


class Stamps:
    """Change stamps read from the database, trusted for `ttl` seconds (0: never).

    When a stamp ages out, the first caller is told to read it again and the others keep
    using the old one meanwhile (for at most another `ttl`), so a busy page does not send
    every waiting request to the database at the same moment.
    """

    def __init__(self, ttl: float) -> None:
        """Remember stamps for `ttl` seconds."""
        self.ttl = ttl
        # key → [read at, stamp, re-read asked at]
        self._data: dict[Hashable, list[Any]] = {}

    def get(self, key: Hashable) -> Any | None:
        """The remembered stamp, or None when the caller should read it from the database."""
        stamp, renew = self.lookup(key)
        return None if renew else stamp

    def lookup(self, key: Hashable) -> tuple[Any | None, bool]:
        """(stamp, renew): the stamp to answer with, and whether this caller should read it again.

        Fresh: (stamp, False). Aged: the old stamp to every caller, and renew=True to one of
        them per `ttl` — a caller that answers at once and reads the stamp in the background
        (huiqi.web.renew) keeps the database out of every answer's time. Aged by more than
        STALE_GRACE_SECONDS past the interval: (None, False), and the caller reads it itself.
        """
        entry = self._data.get(key)
        if entry is None:
            return None, False
        now = time.monotonic()
        age = now - entry[0]
        if age < self.ttl:
            return entry[1], False
        if age >= self.ttl + STALE_GRACE_SECONDS:
            return None, False
        if entry[2] is None or now - entry[2] >= self.ttl:
            entry[2] = now  # this caller reads it again; the rest use the old one meanwhile
            return entry[1], True
        return entry[1], False

    def forget(self, key: Hashable) -> None:
        """Forget one stamp (what it stamps is gone)."""
        self._data.pop(key, None)

    def put(self, key: Hashable, stamp: Any) -> None:
        """Remember a stamp just read (a dict assignment: safe across threads)."""
        if self.ttl > 0:
            if len(self._data) > 4096:
                self._data = {}
            self._data[key] = [time.monotonic(), stamp, None]

    def clear(self) -> None:
        """Forget every stamp (something they cover changed)."""
        self._data = {}


stamps = Stamps(2.0)
# rendered pages for visitors who are not logged in, by (kind, key, stamp, language)
public_pages: Lru[KeptHtml] = Lru(512)
pages: Lru[Any] = Lru(512)
tasks: Lru[Any] = Lru(256)
searches: Lru[Any] = Lru(2048)
# legal-basis links (document number, article) → URL, by library stamp
links: Lru[Any] = Lru(1024)


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
    stamp = str(row[0]), _iso(row[1]), int(row[2])
    stamps.put(("policy", policy_id), stamp)
    return stamp


def library_stamp(session: Session) -> tuple[int, str, int]:
    """(policies, newest change, newest department mapping) of the whole library."""
    row = session.execute(_LIBRARY_STAMP).one()
    stamp = int(row[0]), _iso(row[1]), int(row[2])
    stamps.put("library", stamp)
    return stamp


def fresh_library_stamp(session: Session) -> tuple[int, str, int]:
    """The library's stamp as remembered, or read again when it is not fresh."""
    remembered: tuple[int, str, int] | None = stamps.get("library")
    return remembered if remembered is not None else library_stamp(session)


def _forget_on_change(session: Session, _context: Any, _instances: Any) -> None:
    """A flush that writes the library or department mappings makes every remembered stamp old."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _WATCHED):
            stamps.clear()
            session.info[_CHANGED] = True
            return


def _forget_after_commit(session: Session) -> None:
    """Forget again once the change is committed: a reader may have re-read the old stamp since."""
    if session.info.pop(_CHANGED, False):
        stamps.clear()


# before_flush: the objects are still listed as new/dirty/deleted there
event.listen(Session, "before_flush", _forget_on_change)
event.listen(Session, "after_commit", _forget_after_commit)


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
