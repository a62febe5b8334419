"""The dispatcher works in batches: a constant number of transactions and SMTP sessions per batch."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from huiqi.core.codes import make_credit_code
from huiqi.core.config import Settings
from huiqi.notify import service
from huiqi.notify.channels import LogSmsGateway, Outbound, SmsSender
from huiqi.notify.dispatcher import Dispatcher, channel_rate, default_senders, due_rows
from huiqi.notify.models import OutboxMessage, OutboxStatus, Subscription
from tests.notify.servers import SmtpServer, start_smtp
from tests.notify.test_channels import Clock

ENTERPRISES = 24


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()


def test_sms_carries_the_signature_once() -> None:
    gateway = LogSmsGateway()
    message = Outbound(
        idempotency_key="k1",
        channel="sms",
        recipient="13912345678",
        credit_code="",
        subject="【惠企】您可能符合「专精特新」奖励",
        text="",
        link="https://huiqi.example.gov.cn/notify/open/x",
        unsubscribe_url="https://huiqi.example.gov.cn/notify/unsubscribe/y",
    )
    SmsSender(gateway).send(message)
    ((_, text, _),) = gateway.sent
    assert text.startswith("【惠企】您可能符合「专精特新」奖励 详情:")
    assert text.count("【惠企】") == 1


def test_batch_uses_few_transactions_and_one_smtp_session_per_connection(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in range(ENTERPRISES):
        code = make_credit_code("9", "1", "620102", f"MB{i:06d}")
        subscribe(code, email=f"e{i}@example.com", consent_sms=False, consent_webhook=False)
        service.enqueue(
            db_session,
            credit_code=code,
            topic="policy_match",
            subject=f"政策匹配 {i}",
            body="经比对,贵企业可能符合条件。",
            link="/notify/inbox",
            dedupe_key=f"batch-{i}",
        )
    db_session.commit()
    cfg = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "notify_smtp_connections": 2,
            "base_url": "https://huiqi.example.gov.cn",
        }
    )
    connects: list[Any] = []
    real_connect = smtplib.SMTP.connect

    def counting_connect(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        connects.append(args)
        return real_connect(self, *args, **kwargs)

    monkeypatch.setattr(smtplib.SMTP, "connect", counting_connect)
    transactions: list[str] = []
    conn = session_maker.kw["bind"]

    def count(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SAVEPOINT"):
            transactions.append(statement)

    event.listen(conn, "before_cursor_execute", count)
    try:
        senders = {"email": default_senders(cfg)["email"]}
        stats = Dispatcher(
            cfg, senders=senders, factory=session_maker, parallel=False, clock=Clock()
        ).run_once()
    finally:
        event.remove(conn, "before_cursor_execute", count)
    assert stats.sent == {"email": ENTERPRISES}
    assert len(smtp.messages) == ENTERPRISES
    # digests, then claim, render, record for the one batch, and the empty claim that ends it
    assert len(transactions) <= 5, transactions
    assert len(connects) == 2
    db_session.expire_all()
    statuses = set(db_session.scalars(select(OutboxMessage.status)).all())
    assert statuses == {"sent"}


def test_rates_have_province_defaults_and_overrides(settings: Settings) -> None:
    assert channel_rate(settings, "sms") >= 6000
    custom = settings.model_copy(update={"notify_channel_rates": {"sms": 60}})
    assert channel_rate(custom, "sms") == 60
    assert channel_rate(custom, "email") == channel_rate(settings, "email")
    everywhere = settings.model_copy(update={"notify_rate_per_minute": 100})
    assert channel_rate(everywhere, "webhook") == 100


def test_built_mail_reads_back_with_chinese_headers_and_long_unsubscribe_link() -> None:
    import email
    from email import policy

    from huiqi.notify.channels import EmailSender

    unsubscribe = "https://huiqi.example.gov.cn/notify/unsubscribe/" + "x" * 200
    raw = EmailSender("127.0.0.1", 25, "惠企平台 <noreply@huiqi.example.gov.cn>").build(
        Outbound(
            idempotency_key="key-1",
            channel="email",
            recipient="finance@example.com",
            credit_code="",
            subject="【惠企】您可能符合「小微企业招用高校毕业生社会保险补贴」的申请条件,请尽快核对",
            text="经比对,贵企业可能符合条件。\n. 以点开头的一行\n查看详情:https://x/y",
            link="https://x/y",
            unsubscribe_url=unsubscribe,
        )
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    mail = email.message_from_bytes(raw, policy=policy.default)
    assert str(mail["From"]) == "惠企平台 <noreply@huiqi.example.gov.cn>"
    assert str(mail["Subject"]).endswith("请尽快核对")
    assert mail["Message-ID"] == "<key-1@huiqi>"
    assert mail["List-Unsubscribe"] == f"<{unsubscribe}>"
    body = mail.get_content()
    assert body.startswith("经比对") and "\n. 以点开头的一行\n" in body


def test_pushed_sms_and_mail_carry_the_signature_once(
    db_session: Session,
    session_maker: sessionmaker[Session],
    subscribe: Callable[..., Subscription],
    settings: Settings,
    smtp: SmtpServer,
) -> None:
    """Subjects written with the signature already (as matching's are) are not signed twice."""
    subjects = ["【惠企】您可能符合「专精特新中小企业奖励」", " 【惠企】 政策匹配", "政策匹配"]
    for i, subject in enumerate(subjects):
        code = make_credit_code("9", "1", "620102", f"MP{i:06d}")
        subscribe(code, email=f"e{i}@example.com", phone=f"1391234567{i}", consent_webhook=False)
        service.enqueue(
            db_session,
            credit_code=code,
            topic="policy_match",
            subject=subject,
            body="经比对,贵企业可能符合条件。",
            link="/notify/inbox",
            dedupe_key=f"prefix-{i}",
        )
    db_session.commit()
    cfg = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})
    gateway = LogSmsGateway()
    senders = {"sms": SmsSender(gateway), "email": default_senders(cfg)["email"]}
    dispatcher = Dispatcher(
        cfg, senders=senders, factory=session_maker, parallel=False, clock=Clock()
    )
    stats = dispatcher.run_once()
    assert stats.sent == {"sms": 3, "email": 3}
    texts = sorted(text for _, text, _ in gateway.sent)
    assert [t.count("惠企") for t in texts] == [1, 1, 1]
    assert all(t.startswith("【惠企】") and "【惠企】 " not in t for t in texts)
    mail_subjects = sorted(str(make_header(decode_header(m["Subject"]))) for m in smtp.messages)
    assert mail_subjects == sorted(
        ["【惠企】您可能符合「专精特新中小企业奖励」", "【惠企】政策匹配", "【惠企】政策匹配"]
    )


@pytest.mark.parametrize(
    ("status", "resumed"),
    [(OutboxStatus.pending, False), (OutboxStatus.pending, True), (OutboxStatus.sending, False)],
)
def test_claims_walk_the_channel_due_index_in_order(
    db_session: Session, status: str, resumed: bool
) -> None:
    """EXPLAIN of a claim: the (channel, status, next_attempt_at, id) index, and no sort step;
    a pass's later claims enter the index past the rows already picked."""
    now = datetime.now(UTC)
    after = (now - timedelta(minutes=1), 1234) if resumed else None
    compiled = due_rows("email", OutboxStatus(status), now, 500, after).compile(
        db_session.get_bind()
    )
    connection = db_session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a near-empty test table
        plan = "\n".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        )
        assert "ix_notify_outbox_channel_due" in plan and "Sort" not in plan, plan
        if resumed:  # the cursor is part of the index condition, not a filter after it
            assert "ROW(next_attempt_at, id) >" in plan.partition("Index Cond")[2], plan
    else:
        values = tuple(str(compiled.params[name]) for name in compiled.positiontup or ())
        plan = "\n".join(
            str(row[-1])
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
        )
        assert "ix_notify_outbox_channel_due" in plan and "TEMP B-TREE" not in plan, plan
        if resumed:
            assert "next_attempt_at>?" in plan, plan  # SQLite enters at the due time
