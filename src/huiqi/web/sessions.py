"""The user behind a session cookie, kept in the process for a few seconds.

Every logged-in page view needs the user behind its cookie; reading it (the session joined to
its user) costs a query, and on a busy server a trip to a worker thread. Each process keeps
what it read for HUIQI_SESSION_CACHE_SECONDS (2 s; 0 switches the cache off). Refusals come
first:

- a flush in this process that writes or deletes a user or a browser session (log-out, a
  disabled user, a new role, scope or password, sessions ended) forgets every kept user at
  once, and again when it commits (a reader may have read the old row in between); a bulk
  UPDATE or DELETE on those tables does the same;
- a read that started before such a change is not kept (a generation count guards it);
- an entry never outlives its session's own expiry.

Other processes (the other workers, the command line) are not told: a user logged out or
disabled there is refused here once the kept entry ages out and is read again — within the
interval and the time that read takes (`lookup`: a kept page answers while one background read
renews the entry, for at most STALE_GRACE_SECONDS more, never past the session's own end).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User, WebSession
from huiqi.policy.cache import STALE_GRACE_SECONDS

_CHANGED = "huiqi_sessions_changed"
_TABLES = frozenset({User.__tablename__, WebSession.__tablename__})
_COLUMNS = tuple(c.key for c in User.__mapper__.column_attrs)
MAX_ENTRIES = 20_000


class SessionUsers:
    """Users by session cookie, each trusted for `ttl` seconds at most."""

    def __init__(self, ttl: float) -> None:
        """Keep users for `ttl` seconds (0: never)."""
        self.ttl = ttl
        # cookie → [monotonic deadline, detached copy of the user owned by this cache,
        #           last moment an aged copy may answer, re-read asked at]
        self._data: dict[str, list[Any]] = {}
        self.generation = 0

    def user(self, session: Session, token: str) -> User | None:
        """The active user of the cookie, attached to `session`; None when unknown or expired."""
        if self.ttl <= 0:
            return accounts.user_for_session(session, token)
        entry = self._data.get(token)
        if entry is not None and time.monotonic() < entry[0]:
            # no query: the kept copy's loaded state is copied into this session
            return session.merge(entry[1], load=False)
        generation = self.generation
        row = accounts.live_session(session, token)
        if row is None:
            self._data.pop(token, None)  # an aged copy must not answer for it any more
            return None
        if generation == self.generation:
            self._keep(token, row)
        return row.user

    def peek(self, token: str) -> User | None:
        """The kept user of the cookie while fresh, else None; a shared copy, only to be read."""
        entry = self._data.get(token)
        if entry is not None and time.monotonic() < entry[0]:
            user: User = entry[1]
            return user
        return None

    def lookup(self, token: str) -> tuple[User | None, bool]:
        """(user, renew): the kept user to answer with, and whether this caller should read it again.

        As `Stamps.lookup`: fresh, (user, False); aged, the old copy to every caller with
        renew=True to one of them per interval, while the session lasts and for at most
        STALE_GRACE_SECONDS past the interval; after that (None, False). A shared copy, only
        to be read.
        """
        entry = self._data.get(token)
        if entry is None:
            return None, False
        now = time.monotonic()
        if now < entry[0]:
            return entry[1], False
        if now >= entry[2]:
            return None, False
        if entry[3] is None or now - entry[3] >= self.ttl:
            entry[3] = now  # this caller reads it again; the rest use the kept copy meanwhile
            return entry[1], True
        return entry[1], False

    def _keep(self, token: str, row: WebSession) -> None:
        """Remember a copy of the session's user, no longer than the session lasts."""
        ends = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        lasts = (ends - datetime.now(UTC)).total_seconds()
        left = min(self.ttl, lasts)
        if left <= 0:
            return
        copy = User(**{key: getattr(row.user, key) for key in _COLUMNS})
        make_transient_to_detached(copy)  # as if loaded: clean, with its identity
        if len(self._data) >= MAX_ENTRIES:
            self._data = {}
        now = time.monotonic()
        self._data[token] = [now + left, copy, now + min(lasts, left + STALE_GRACE_SECONDS), None]

    def clear(self) -> None:
        """Forget every kept user (a user or a session changed)."""
        self.generation += 1
        self._data = {}


users = SessionUsers(2.0)


def _forget_on_change(session: Session, _context: Any, _instances: Any) -> None:
    """A flush that writes users or browser sessions makes every kept user old."""
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, User | WebSession):
            users.clear()
            session.info[_CHANGED] = True
            return


def _forget_on_bulk(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE of users or sessions makes every kept user old."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TABLES:
        users.clear()
        state.session.info[_CHANGED] = True


def _forget_after_commit(session: Session) -> None:
    """Forget again once the change is committed: a reader may have kept the old row since."""
    if session.info.pop(_CHANGED, False):
        users.clear()


def _drop_mark(session: Session, *_args: Any) -> None:
    session.info.pop(_CHANGED, None)


# before_flush: the objects are still listed as new/dirty/deleted there
event.listen(Session, "before_flush", _forget_on_change)
event.listen(Session, "do_orm_execute", _forget_on_bulk)
event.listen(Session, "after_commit", _forget_after_commit)
event.listen(Session, "after_soft_rollback", _drop_mark)
