"""The daily cap's count of what is already queued: one index probe per code on PostgreSQL
(core.bulk.rows_of_codes), the same answer as counting every row, on both backends."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.bulk import insert_many
from huiqi.core.codes import make_credit_code
from huiqi.notify import outbox
from huiqi.notify.models import OutboxMessage, OutboxStatus

DAY = date(2026, 12, 8)
CODES = [make_credit_code("9", "1", "620102", f"MA{i:06d}") for i in range(60)]
CHANNELS = ("email", "sms", "webhook")
KINDS = ("single", "single", "digest")
STATUSES = (
    OutboxStatus.pending,
    OutboxStatus.sent,
    OutboxStatus.held,
    OutboxStatus.cancelled,
    OutboxStatus.dead,
)


def _rows() -> list[dict[str, Any]]:
    """Outbox rows over three days, every kind and status, some codes with none."""
    now = datetime(2026, 12, 8, 2, tzinfo=UTC)
    rows = []
    for i in range(900):
        rows.append(
            {
                "credit_code": CODES[(i * 7) % 50],  # the last ten codes have no rows
                "channel": CHANNELS[i % 3],
                "kind": KINDS[(i // 3) % 3],
                "recipient": "x@example.com",
                "status": str(STATUSES[(i // 9) % len(STATUSES)]),
                "idempotency_key": f"cap-{i}",
                "local_day": DAY - timedelta(days=(i // 45) % 3),
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "history": [],
            }
        )
    return rows


def test_the_days_counts_equal_counting_every_row(db_session: Session) -> None:
    insert_many(db_session, OutboxMessage.__table__, _rows())  # type: ignore[arg-type]
    db_session.flush()
    every = db_session.execute(
        select(
            OutboxMessage.credit_code,
            OutboxMessage.channel,
            OutboxMessage.kind,
            OutboxMessage.status,
            OutboxMessage.local_day,
        )
    ).all()
    asked = CODES[::2] + CODES[55:]  # half the codes with rows, and codes without any
    expected = Counter(
        (code, channel)
        for code, channel, kind, status, day in every
        if code in asked
        and day == DAY
        and kind == "single"
        and status not in (OutboxStatus.held, OutboxStatus.cancelled)
    )
    assert expected  # the data exercises the count
    assert outbox._sent_today_counts(db_session, asked, DAY) == dict(expected)
    assert outbox._sent_today_counts(db_session, CODES[55:], DAY) == {}
    assert outbox._sent_today_counts(db_session, [], DAY) == {}
