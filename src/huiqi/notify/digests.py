"""Rows held over the daily cap bundled into one digest per enterprise and channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.notify.models import PUSH_CHANNELS, OutboxMessage, OutboxStatus
from huiqi.notify.outbox import new_idempotency_key
from huiqi.notify.subscriptions import channel_consented, get_subscription, quiet_until


def build_digests(session: Session, now: datetime | None = None) -> list[OutboxMessage]:
    """Bundle rows held over the daily cap on earlier days into one digest per enterprise and channel."""
    now = now or utcnow()
    today = clock.beijing_day(now)
    held = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.channel.in_(PUSH_CHANNELS),  # walks the channel's due index
            OutboxMessage.status == OutboxStatus.held,
            OutboxMessage.digest_id.is_(None),
            OutboxMessage.local_day < today,
            OutboxMessage.credit_code.is_not(None),
        )
        .order_by(OutboxMessage.credit_code, OutboxMessage.channel, OutboxMessage.id)
    ).all()
    groups: dict[tuple[str, str, str], list[OutboxMessage]] = {}
    for row in held:
        groups.setdefault((str(row.credit_code), row.channel, row.recipient), []).append(row)
    digests: list[OutboxMessage] = []
    for (credit_code, channel, recipient), rows in groups.items():
        sub = get_subscription(session, credit_code)
        if not channel_consented(sub, channel):
            for row in rows:
                row.status = OutboxStatus.cancelled
                row.last_error = "consent withdrawn"
            continue
        digest = OutboxMessage(
            notification_id=None,
            credit_code=credit_code,
            channel=channel,
            kind="digest",
            recipient=recipient,
            status=OutboxStatus.pending,
            idempotency_key=new_idempotency_key(),
            local_day=today,
            next_attempt_at=quiet_until(sub, now) or now,
            created_at=now,
        )
        session.add(digest)
        session.flush()
        for row in rows:
            row.digest_id = digest.id
        digests.append(digest)
    session.flush()
    return digests
