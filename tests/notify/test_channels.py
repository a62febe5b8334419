"""Channels and the dispatcher against real local receivers: SMTP (aiosmtpd) and HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.clock import aware
from huiqi.core.config import Settings
from huiqi.notify import service
from huiqi.notify.channels import (
    DeliveryError,
    LogSmsGateway,
    Outbound,
    SmsSender,
    WebhookSender,
    verify_signature,
)
from huiqi.notify.dispatcher import Dispatcher, default_senders
from huiqi.notify.models import OutboxMessage, Subscription
from tests.notify.conftest import ENT_A
from tests.notify.servers import (
    SmtpServer,
    WebhookReceiver,
    free_port,
    start_smtp,
    start_webhook,
)
from tests.notify.smtp_relay import ScriptedRelay


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    server = ScriptedRelay().start()
    yield server
    server.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    rec = start_webhook()
    yield rec
    rec.stop()


class Clock:
    """A settable clock for the dispatcher (retries and leases without sleeping); it starts a
    minute after the messages are queued."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _settings(settings: Settings, smtp_port: int, **extra: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout_seconds": 5,
        "webhook_allow_private": True,
        "notify_max_attempts": 3,
        "notify_backoff_seconds": 60,
        "base_url": "https://huiqi.example.gov.cn",
    }
    values.update(extra)
    return settings.model_copy(update=values)


def _dispatcher(
    cfg: Settings, factory: sessionmaker[Session], clock: Clock, sms: LogSmsGateway | None = None
) -> Dispatcher:
    senders = default_senders(cfg)
    senders["sms"] = SmsSender(sms or LogSmsGateway())
    return Dispatcher(cfg, senders=senders, factory=factory, parallel=False, clock=clock)


def _note(session: Session, key: str, **kw: object) -> None:
    args: dict[str, object] = {
        "credit_code": ENT_A,
        "topic": "policy_match",
        "subject": "您可能符合「小微企业招用高校毕业生社会保险补贴」",
        "body": "经比对,贵企业可能符合政策「小微企业招用高校毕业生社会保险补贴」的条件。\n符合理由:\n  · 企业规模:小型",
        "link": "/notify/inbox",
        "dedupe_key": key,
    }
    args.update(kw)
    assert service.enqueue(session, **args) is not None  # type: ignore[arg-type]
    session.commit()


def _rows(session: Session) -> dict[str, OutboxMessage]:
    session.expire_all()
    return {r.channel: r for r in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))}


def test_email_webhook_and_sms_are_delivered(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
    hook: WebhookReceiver,
    clock: Clock,
) -> None:
    sub = subscribe(ENT_A, webhook_url=hook.url + "/in")
    from datetime import date

    _note(db_session, "k-all", deadline=date(2026, 12, 31))
    cfg = _settings(settings, smtp.port)
    gateway = LogSmsGateway()
    stats = _dispatcher(cfg, session_maker, clock, gateway).run_once()
    assert stats.sent == {"email": 1, "webhook": 1, "sms": 1}
    rows = _rows(db_session)
    assert {r.status for r in rows.values()} == {"sent"}

    (mail,) = smtp.messages
    assert mail["Message-ID"] == f"<{rows['email'].idempotency_key}@huiqi>"
    assert str(make_header(decode_header(mail["Subject"]))).startswith("【惠企】您可能符合")
    text = mail.get_payload(decode=True).decode("utf-8")
    assert "符合理由" in text and "截止日期:2026年12月31日" in text
    assert "https://huiqi.example.gov.cn/notify/unsubscribe/" in text
    assert "https://huiqi.example.gov.cn/notify/open/" in text
    assert mail["List-Unsubscribe"].startswith("<https://huiqi.example.gov.cn/notify/unsubscribe/")

    (req,) = hook.received()
    assert req.path == "/in"
    ts, sig = req.headers["X-Huiqi-Timestamp"], req.headers["X-Huiqi-Signature"]
    assert sub.webhook_secret and verify_signature(sub.webhook_secret, ts, req.body, sig)
    assert not verify_signature("another-secret", ts, req.body, sig)
    assert req.headers["X-Huiqi-Idempotency-Key"] == rows["webhook"].idempotency_key
    body = json.loads(req.body)
    assert body["subject"].startswith("您可能符合") and body["credit_code"] == ENT_A
    assert body["deadline"] == "2026-12-31"

    ((phone, sms_text, ref),) = gateway.sent
    assert phone == "13912345678" and ref == rows["sms"].idempotency_key
    assert "退订" in sms_text

    # nothing more to do: a second pass sends nothing again
    assert _dispatcher(cfg, session_maker, clock).run_once().total == 0
    assert len(smtp.messages) == 1 and len(hook.received()) == 1


def test_refused_mail_is_retried_then_dead_lettered_without_blocking_webhook(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    hook: WebhookReceiver,
    relay: ScriptedRelay,
    clock: Clock,
) -> None:
    # the relay answers 451 for this mailbox every time (a relay that is down altogether does
    # not use up attempts: test_smtp_pipeline.py)
    subscribe(ENT_A, email="later@example.com", webhook_url=hook.url, consent_sms=False)
    _note(db_session, "k-down")
    cfg = _settings(settings, relay.port)
    stats = _dispatcher(cfg, session_maker, clock).run_once()
    assert stats.sent == {"webhook": 1} and stats.retried == {"email": 1}
    email_row = _rows(db_session)["email"]
    assert email_row.status == "pending" and email_row.attempts == 1
    assert email_row.last_error and "SMTP RCPT 451" in email_row.last_error
    first_retry = aware(email_row.next_attempt_at)
    assert first_retry == clock.now + timedelta(seconds=60)

    # not due yet: nothing happens
    assert _dispatcher(cfg, session_maker, clock).run_once().total == 0
    clock.now = first_retry
    assert _dispatcher(cfg, session_maker, clock).run_once().retried == {"email": 1}
    email_row = _rows(db_session)["email"]
    assert aware(email_row.next_attempt_at) == clock.now + timedelta(seconds=120)
    clock.now += timedelta(seconds=120)
    assert _dispatcher(cfg, session_maker, clock).run_once().dead == {"email": 1}
    email_row = _rows(db_session)["email"]
    assert email_row.status == "dead" and email_row.attempts == 3
    assert [h["status"] for h in email_row.history] == ["pending", "pending", "dead"]
    assert len(hook.received()) == 1

    # an officer can give it another round; the idempotency key stays
    key = email_row.idempotency_key
    service.requeue_dead(db_session, email_row.id)
    db_session.commit()
    assert _rows(db_session)["email"].status == "pending"
    assert _rows(db_session)["email"].idempotency_key == key


def test_webhook_5xx_retried_and_4xx_dead(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    hook: WebhookReceiver,
    clock: Clock,
) -> None:
    subscribe(ENT_A, webhook_url=hook.url, consent_sms=False, consent_email=False)
    _note(db_session, "k-5xx")
    cfg = _settings(settings, free_port())
    hook.statuses = [503]
    assert _dispatcher(cfg, session_maker, clock).run_once().retried == {"webhook": 1}
    clock.now += timedelta(minutes=5)
    assert _dispatcher(cfg, session_maker, clock).run_once().sent == {"webhook": 1}
    (req,) = hook.received()
    assert req.headers["X-Huiqi-Idempotency-Key"] == _rows(db_session)["webhook"].idempotency_key

    _note(db_session, "k-4xx")
    hook.statuses = [400]
    assert _dispatcher(cfg, session_maker, clock).run_once().dead == {"webhook": 1}


def test_webhook_to_private_address_refused_at_send_time() -> None:
    message = Outbound(
        idempotency_key="hq-x",
        channel="webhook",
        recipient="http://127.0.0.1:9/hook",
        credit_code=ENT_A,
        subject="s",
        text="t",
        link="l",
        unsubscribe_url="u",
        payload={},
        webhook_secret="k",
    )
    with pytest.raises(DeliveryError) as info:
        WebhookSender(allow_private=False).send(message)
    assert info.value.permanent and "non-public" in str(info.value)


def test_consent_withdrawn_after_queueing_cancels(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
    clock: Clock,
) -> None:
    sub = subscribe(ENT_A, consent_sms=False, consent_webhook=False)
    _note(db_session, "k-cancel")
    # withdraw behind the service's back, as a concurrent request would before the send
    sub.email_consent_at = None
    db_session.commit()
    stats = _dispatcher(_settings(settings, smtp.port), session_maker, clock).run_once()
    assert stats.cancelled == {"email": 1} and smtp.messages == []


def test_digest_goes_out_as_one_message(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
    clock: Clock,
) -> None:
    subscribe(ENT_A, consent_sms=False, consent_webhook=False, daily_cap="1")
    for i in range(4):
        _note(db_session, f"k-d{i}", subject=f"政策消息 {i}", now=clock.now)
    cfg = _settings(settings, smtp.port)
    assert _dispatcher(cfg, session_maker, clock).run_once().sent == {"email": 1}
    clock.now += timedelta(days=1)
    stats = _dispatcher(cfg, session_maker, clock).run_once()
    assert stats.digests == 1 and stats.sent == {"email": 1}
    assert len(smtp.messages) == 2
    digest = smtp.messages[1].get_payload(decode=True).decode("utf-8")
    assert all(f"政策消息 {i}" in digest for i in (1, 2, 3)) and "政策消息 0" not in digest
    db_session.expire_all()
    statuses = sorted(r.status for r in db_session.scalars(select(OutboxMessage)))
    assert statuses == ["digested", "digested", "digested", "sent", "sent"]


def test_smtp_down_then_back_resumes_without_loss_or_duplicates(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
    clock: Clock,
) -> None:
    """A relay that is down holds the mail back with backoff; once it is back, each goes once."""
    from aiosmtpd.controller import Controller

    subscribe(ENT_A, consent_sms=False, consent_webhook=False)
    _note(db_session, "k-back-1")
    _note(db_session, "k-back-2")
    cfg = _settings(settings, smtp.port)
    smtp.controller.stop()  # the relay goes down
    assert _dispatcher(cfg, session_maker, clock).run_once().retried == {"email": 2}
    rows = [r for r in _all_rows(db_session) if r.channel == "email"]
    assert {r.status for r in rows} == {"pending"} and smtp.messages == []

    smtp.controller = Controller(smtp.handler, hostname="127.0.0.1", port=smtp.port)
    smtp.controller.start()  # and comes back before the retry is due
    assert _dispatcher(cfg, session_maker, clock).run_once().total == 0  # backoff is kept
    clock.now += timedelta(seconds=60)
    assert _dispatcher(cfg, session_maker, clock).run_once().sent == {"email": 2}
    rows = [r for r in _all_rows(db_session) if r.channel == "email"]
    assert {r.status for r in rows} == {"sent"}
    received = sorted(str(m["X-Huiqi-Idempotency-Key"]) for m in smtp.messages)
    assert received == sorted(r.idempotency_key for r in rows)
    assert _dispatcher(cfg, session_maker, clock).run_once().total == 0
    assert len(smtp.messages) == 2


def _all_rows(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
