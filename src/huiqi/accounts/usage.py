"""API-token last-used times, kept in memory and written in batches off the request path.

Writing the time on every authenticated request would turn each read into a write (on SQLite,
a wait for the one write lock). The time is therefore remembered here and flushed every
HUIQI_TOKEN_USAGE_FLUSH_SECONDS by the web server, and when it stops; at most one interval of
last-used times is lost if the process is killed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from huiqi.accounts.models import ApiToken
from huiqi.core.db import utcnow

log = logging.getLogger("huiqi.accounts")


class TokenUsage:
    """The newest use of each token since the last flush."""

    def __init__(self) -> None:
        """Start empty."""
        self._pending: dict[int, datetime] = {}
        self._lock = threading.Lock()

    def record(self, token_id: int, when: datetime | None = None) -> None:
        """Remember that a token was used (cheap: no database work)."""
        with self._lock:
            self._pending[token_id] = when or utcnow()

    def pending(self) -> dict[int, datetime]:
        """A copy of the uses not yet written."""
        with self._lock:
            return dict(self._pending)

    def flush(self, session: Session) -> int:
        """Write the remembered times in one statement per token; the caller commits."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        # A Core executemany, not the ORM's bulk update by primary key: a token revoked since
        # its use simply matches no row, where the ORM would fail the whole flush for good.
        table = cast(Table, ApiToken.__table__)
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("token_id"))
            .values(last_used_at=bindparam("when")),
            [{"token_id": token_id, "when": when} for token_id, when in batch.items()],
        )
        return len(batch)

    def put_back(self, batch: dict[int, datetime]) -> None:
        """Keep uses whose flush failed for the next attempt (newer uses win)."""
        with self._lock:
            for token_id, when in batch.items():
                self._pending.setdefault(token_id, when)


token_usage = TokenUsage()


def flush_now() -> int:
    """Write the pending last-used times in a transaction of their own."""
    from huiqi.core.db import session_scope

    batch = token_usage.pending()
    try:
        with session_scope() as session:
            return token_usage.flush(session)
    except Exception:
        token_usage.put_back(batch)
        log.exception("could not record API-token use; kept for the next flush")
        return 0


def start_flusher(interval: float) -> tuple[threading.Thread, threading.Event]:
    """Flush every `interval` seconds in a daemon thread until the event is set (then once more)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            flush_now()
        flush_now()

    thread = threading.Thread(target=loop, name="huiqi-token-usage", daemon=True)
    thread.start()
    return thread, stop
