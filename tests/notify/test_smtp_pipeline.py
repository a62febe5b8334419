"""E-mail over one SMTP session a batch, pipelined (RFC 2920) when the relay offers it."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.config import Settings
from huiqi.notify.channels import EmailSender, Outbound
from huiqi.notify.dispatcher import Dispatcher
from huiqi.notify.models import OutboxMessage, Subscription
from huiqi.notify.smtp_pipeline import data_block
from tests.notify.conftest import ENT_A
from tests.notify.smtp_relay import ScriptedRelay
from tests.notify.test_channels import Clock, _note, _settings


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    server = ScriptedRelay().start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _mail(recipient: str, key: str) -> Outbound:
    return Outbound(
        idempotency_key=key,
        channel="email",
        recipient=recipient,
        credit_code=ENT_A,
        subject="【惠企】政策消息",
        text=f"正文 {key}\n.以点开头的一行\n",
        link="https://huiqi.example.gov.cn/notify/open/x",
        unsubscribe_url="https://huiqi.example.gov.cn/notify/unsubscribe/y",
    )


def _sender(relay: ScriptedRelay) -> EmailSender:
    return EmailSender("127.0.0.1", relay.port, "huiqi <noreply@huiqi.local>", 2, connections=1)


def _keys(relay: ScriptedRelay) -> list[str]:
    return [str(email.message_from_bytes(c)["X-Huiqi-Idempotency-Key"]) for _, c in relay.messages]


def test_a_batch_is_pipelined_over_one_session(relay: ScriptedRelay) -> None:
    """The relay answers MAIL and RCPT only with DATA: a client waiting on them would time out."""
    batch = [_mail(f"e{i}@example.com", f"k{i}") for i in range(30)]
    assert _sender(relay).send_many(batch) == [None] * 30
    assert _keys(relay) == [f"k{i}" for i in range(30)]
    assert relay.sessions == 1
    # each content went out with the next message's commands; only the last was waited for
    assert relay.waits == 1
    body = email.message_from_bytes(relay.messages[0][1]).get_payload(decode=True)
    assert body.decode("utf-8") == "正文 k0\n.以点开头的一行\n"


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_recipient_fails_only_its_message(pipelining: bool) -> None:
    relay = ScriptedRelay(pipelining=pipelining).start()
    try:
        recipients = ["a@example.com", "refused@example.com", "b@example.com"]
        recipients += ["later@example.com", "c@example.com"]
        outcomes = _sender(relay).send_many([_mail(r, f"k{i}") for i, r in enumerate(recipients)])
    finally:
        relay.stop()
    ok, refused, ok2, later, ok3 = outcomes
    assert ok is None and ok2 is None and ok3 is None
    assert refused is not None and refused.permanent and "550" in str(refused)
    assert later is not None and not later.permanent and "451" in str(later)
    assert _keys(relay) == ["k0", "k2", "k4"]
    assert relay.sessions == 1


def test_a_session_lost_mid_batch_fails_only_the_message_in_flight() -> None:
    relay = ScriptedRelay(drop_at=3).start()
    try:
        outcomes = _sender(relay).send_many([_mail(f"e{i}@x.cn", f"k{i}") for i in range(6)])
    finally:
        relay.stop()
    lost = outcomes[2]
    assert lost is not None and not lost.permanent  # retried later with the same key
    assert outcomes[:2] + outcomes[3:] == [None] * 5
    assert _keys(relay) == ["k0", "k1", "k3", "k4", "k5"]
    assert relay.sessions == 2  # the rest went over a new session


def test_an_address_with_a_line_break_is_refused_unsent(relay: ScriptedRelay) -> None:
    outcomes = _sender(relay).send_many(
        [_mail("a@x.cn", "k0"), _mail("b@x.cn>\r\nRCPT TO:<c@x.cn", "k1"), _mail("d@x.cn", "k2")]
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert outcomes[1] is not None and outcomes[1].permanent
    assert [r for r, _ in relay.messages] == ["a@x.cn", "d@x.cn"]


def test_content_is_dot_stuffed_with_crlf_line_ends() -> None:
    assert data_block(b"a\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n.\r\n"


def test_relay_down_backs_off_and_resumes_without_loss(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    clock: Clock,
) -> None:
    """Connection refused pauses the channel and keeps the mail queued, however long the outage
    (no attempt is used up); once the relay is back, each message goes exactly once."""
    relay = ScriptedRelay().start()
    port = relay.port
    relay.stop()  # the relay goes down
    subscribe(ENT_A, consent_sms=False, consent_webhook=False, daily_cap="20")
    for i in range(5):
        _note(db_session, f"k-down-{i}", subject=f"政策消息 {i}")
    cfg = _settings(settings, port)  # at most 3 attempts a message
    dispatcher = Dispatcher(cfg, factory=session_maker, parallel=False, batch=2, clock=clock)
    for _ in range(4):  # more rounds than a message has attempts
        # a pass probes the relay with one batch and pauses the channel; the next pass probes
        # the next batch; a probed row waits out a backoff step
        assert [dispatcher.run_once().total for _ in range(4)] == [2, 2, 1, 0]
        db_session.expire_all()
        rows = list(db_session.scalars(select(OutboxMessage)))
        assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
        assert all("SMTP" in str(r.last_error) for r in rows)
        clock.now += timedelta(seconds=60)

    relay = ScriptedRelay().start(port)  # back
    try:
        assert dispatcher.run_once().sent == {"email": 5}
        assert dispatcher.run_once().total == 0
    finally:
        relay.stop()
    db_session.expire_all()
    rows = list(db_session.scalars(select(OutboxMessage)))
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    assert sorted(_keys(relay)) == sorted(r.idempotency_key for r in rows)
