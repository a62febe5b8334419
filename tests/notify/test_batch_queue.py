"""A matching batch's notifications, queued set-based: singles and summaries, each enterprise's
channels, muted topics, quiet hours and daily cap as a single enqueue applies them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.clock import aware
from huiqi.events import NO_PREVIOUS, ChangeSet, ResultsChanged, RuleFacts
from huiqi.notify import service
from huiqi.notify.models import Notification, OutboxMessage, Subscription
from tests.notify.conftest import ENT_A, ENT_B, ENT_C

ENT_D = "91620102MA72H8K54K"  # no push settings: inbox only
LATE = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 Beijing time
MORNING = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 the next day
# rule ids out of index order, so a summary's covers must be sorted
RULES = tuple(
    RuleFacts(rid, "2", f"政策{rid}", "push", "依据")
    for rid in ("r-07", "r-03", "r-11", "r-01", "r-05", "r-09")
)


def _batch() -> ChangeSet:
    """A: five news (a summary); B: an eligible and an unknown (two singles); C: the same two,
    policy matches muted; D: four news (a summary) and no settings."""
    rows = [(0, r, 1, "") for r in range(5)]
    rows += [(1, 0, 1, ""), (1, 1, 2, "revenue")]
    rows += [(2, 2, 1, ""), (2, 3, 2, "employees")]
    rows += [(3, r, 1 if r % 2 else 2, "revenue") for r in (5, 4, 3, 2)]
    return ChangeSet(
        RULES,
        ((ENT_A, "甲公司"), (ENT_B, "乙公司"), (ENT_C, ""), (ENT_D, "丁公司")),
        np.asarray([e for e, _, _, _ in rows], dtype=np.int32),
        np.asarray([r for _, r, _, _ in rows], dtype=np.int32),
        np.asarray([x for _, _, x, _ in rows], dtype=np.int8),
        np.full(len(rows), NO_PREVIOUS, dtype=np.int8),
        np.asarray([m for _, _, _, m in rows], dtype=object),
    )


def test_a_mixed_batch_is_queued_as_single_enqueues_would_be(
    db_session: Session,
    subscribe: Callable[..., Subscription],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscribe(ENT_A, daily_cap="1", consent_sms=False, consent_webhook=False)
    subscribe(ENT_B, quiet_start="22:00", quiet_end="08:00", consent_webhook=False)
    subscribe(ENT_C, muted_topics=["policy_match"], consent_sms=False, consent_webhook=False)
    monkeypatch.setattr(clock, "now", lambda: LATE)
    # A's one message of the day has gone out already: the batch's is held for the digest
    service.enqueue(
        db_session,
        credit_code=ENT_A,
        topic="grant",
        subject="已兑现",
        body="…",
        link="/notify/inbox",
        dedupe_key="earlier",
    )
    event = ResultsChanged(_batch(), LATE.date())
    service.on_results_changed(db_session, event)

    notes = {
        n.dedupe_key: n
        for n in db_session.scalars(
            select(Notification).where(Notification.dedupe_key != "earlier")
        )
    }
    by_code: dict[str, list[Notification]] = {}
    for note in notes.values():
        by_code.setdefault(str(note.credit_code), []).append(note)
    assert {code: len(n) for code, n in by_code.items()} == {ENT_A: 1, ENT_B: 2, ENT_C: 2, ENT_D: 1}
    (summary,) = by_code[ENT_A]
    assert summary.link == "/matching/mine" and summary.dedupe_key.startswith("matchset:")
    assert summary.covers == ["r-01", "r-03", "r-05", "r-07", "r-11"]
    assert (
        by_code[ENT_D][0].covers == ["r-01", "r-09"] and by_code[ENT_D][0].topic == "policy_match"
    )
    for single in by_code[ENT_B] + by_code[ENT_C]:
        assert single.link == f"/notify/inbox/{single.id}"
        assert single.dedupe_key.startswith("match:")

    rows = list(
        db_session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.notification_id.in_([n.id for n in notes.values()])
            )
        )
    )
    seen = {(r.credit_code, r.notification_id, r.channel): r for r in rows}
    topics = {n.id: n.topic for n in notes.values()}
    assert sorted((c, topics[n], ch) for c, n, ch in seen) == sorted(
        [(ENT_A, "policy_match", "email")]
        + [(ENT_B, t, ch) for t in ("policy_match", "data_request") for ch in ("email", "sms")]
        + [(ENT_C, "data_request", "email")]
    )
    assert [r.status for r in rows if r.credit_code == ENT_A] == ["held"]
    for row in rows:
        if row.credit_code == ENT_B:
            assert row.status == "pending" and aware(row.next_attempt_at) == MORNING
        if row.credit_code == ENT_C:
            assert row.status == "pending" and aware(row.next_attempt_at) == LATE
        assert re.fullmatch(r"hq-[0-9a-f]{32}", row.idempotency_key)
    assert len({r.idempotency_key for r in rows}) == len(rows)

    # the same batch again (a run resumed after a crash) queues nothing
    service.on_results_changed(db_session, event)
    assert db_session.scalar(select(Notification.id).order_by(Notification.id.desc())) == max(
        n.id for n in notes.values()
    )
    assert len(list(db_session.scalars(select(OutboxMessage)))) == len(rows) + 1
