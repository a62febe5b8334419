"""enqueue: exactly one notification per dedupe key, outbox rows honouring consent, topics,
quiet hours and the daily cap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.core.clock import aware
from huiqi.notify import service
from huiqi.notify.models import (
    ConsentEvent,
    Notification,
    OutboxMessage,
    OutboxStatus,
    Subscription,
)
from tests.notify.conftest import ENT_A, ENT_B

# 2026-03-02 10:00 Beijing time
MORNING = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _enqueue(session: Session, key: str, credit_code: str = ENT_A, **kw: object) -> object:
    args: dict[str, object] = {
        "credit_code": credit_code,
        "topic": "policy_match",
        "subject": "您可能符合「小微企业招用高校毕业生社会保险补贴」",
        "body": "经比对,贵企业可能符合条件。",
        "link": "/notify/inbox",
        "dedupe_key": key,
        "now": MORNING,
    }
    args.update(kw)
    return service.enqueue(session, **args)  # type: ignore[arg-type]


def _outbox(session: Session, credit_code: str = ENT_A) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.credit_code == credit_code)
            .order_by(OutboxMessage.id)
        )
    )


def test_one_row_per_consented_channel_and_dedupe(
    db_session: Session, subscribe: Callable[..., Subscription]
) -> None:
    subscribe(ENT_A, consent_sms=False)
    note = _enqueue(db_session, "k1")
    assert isinstance(note, Notification)
    rows = _outbox(db_session)
    assert sorted(r.channel for r in rows) == ["email", "webhook"]
    assert all(
        r.status == OutboxStatus.pending and aware(r.next_attempt_at) == MORNING for r in rows
    )
    assert len({r.idempotency_key for r in rows}) == 2
    assert {r.recipient for r in rows} == {"finance@example.com", "https://hooks.example.com/huiqi"}

    assert _enqueue(db_session, "k1", subject="again") is None
    count = db_session.scalar(select(func.count()).select_from(Notification))
    assert count == 1 and len(_outbox(db_session)) == 2


def test_no_subscription_means_inbox_only(db_session: Session) -> None:
    note = _enqueue(db_session, "k-inbox", credit_code=ENT_B)
    assert isinstance(note, Notification)
    assert _outbox(db_session, ENT_B) == []
    assert [n.id for n in service.inbox(db_session, ENT_B)] == [note.id]


def test_muted_topic_reaches_inbox_only(
    db_session: Session, subscribe: Callable[..., Subscription]
) -> None:
    subscribe(ENT_A, muted_topics=["policy_match"])
    assert _enqueue(db_session, "k-muted") is not None
    assert _outbox(db_session) == []
    assert _enqueue(db_session, "k-grant", topic="grant") is not None
    assert len(_outbox(db_session)) == 3


def test_quiet_hours_defer_until_they_end(
    db_session: Session, subscribe: Callable[..., Subscription]
) -> None:
    subscribe(
        ENT_A, quiet_start="22:00", quiet_end="08:00", consent_sms=False, consent_webhook=False
    )
    late = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 Beijing
    _enqueue(db_session, "k-night", now=late)
    (row,) = _outbox(db_session)
    assert aware(row.next_attempt_at) == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00
    _enqueue(db_session, "k-day", now=MORNING)
    assert aware(_outbox(db_session)[1].next_attempt_at) == MORNING


def test_daily_cap_holds_the_rest_for_a_digest(
    db_session: Session, subscribe: Callable[..., Subscription]
) -> None:
    subscribe(ENT_A, daily_cap="2", consent_sms=False, consent_webhook=False)
    for i in range(5):
        _enqueue(db_session, f"k-cap-{i}", now=MORNING + timedelta(minutes=i))
    assert [r.status for r in _outbox(db_session)] == ["pending"] * 2 + ["held"] * 3
    # the same day nothing is bundled; the next morning one digest carries the three
    assert service.build_digests(db_session, MORNING + timedelta(hours=1)) == []
    digests = service.build_digests(db_session, MORNING + timedelta(days=1))
    assert len(digests) == 1 and digests[0].kind == "digest"
    held = [r for r in _outbox(db_session) if r.status == "held"]
    assert {r.digest_id for r in held} == {digests[0].id}
    assert service.build_digests(db_session, MORNING + timedelta(days=1)) == []


def test_withdrawn_consent_cancels_queue_and_is_recorded(
    db_session: Session, subscribe: Callable[..., Subscription]
) -> None:
    subscribe(ENT_A)
    _enqueue(db_session, "k-w")
    assert service.unsubscribe(db_session, ENT_A, "email") == ["email"]
    statuses = {r.channel: r.status for r in _outbox(db_session)}
    assert statuses == {"email": "cancelled", "webhook": "pending", "sms": "pending"}
    events = db_session.scalars(
        select(ConsentEvent).where(ConsentEvent.credit_code == ENT_A).order_by(ConsentEvent.id)
    ).all()
    assert [(e.channel, e.granted) for e in events][-1] == ("email", False)
    assert all(e.at is not None for e in events)
    _enqueue(db_session, "k-w2")
    assert sorted(r.channel for r in _outbox(db_session) if r.status == "pending") == [
        "sms",
        "sms",
        "webhook",
        "webhook",
    ]


def test_bad_arguments_are_refused(db_session: Session) -> None:
    import pytest

    with pytest.raises(service.NotifyError):
        _enqueue(db_session, "")
    with pytest.raises(service.NotifyError):
        _enqueue(db_session, "k-js", link="javascript:alert(1)")
