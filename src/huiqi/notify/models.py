"""Notification tables.

- ``notify_subscription``: per enterprise, where and what it wants pushed (addresses, consent per
  channel with the moment it was given, muted topics, quiet hours, daily cap).
- ``notify_consent_event``: append-only history of every consent given or withdrawn (the
  registry's first grants of a subscription it created may be kept on the subscription until
  it first changes: ``Subscription.registry_grants_by``).
- ``notify_notification``: one message to one enterprise, or to one user (a bank's or an
  officer's staff member); the inbox shows it. ``dedupe_key`` is unique, so the same fact is
  never announced twice.
- ``notify_outbox``: one row per push channel and notification (or one digest row bundling
  several held rows); the dispatcher claims rows with a lease and records each attempt's outcome.
- ``notify_read_receipt``: when and how a notification was read.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huiqi.core.db import Base, utcnow


class Channel(StrEnum):
    """Where a notification goes; the in-app inbox always receives it."""

    inapp = "inapp"
    email = "email"
    webhook = "webhook"
    sms = "sms"


PUSH_CHANNELS: tuple[Channel, ...] = (Channel.email, Channel.webhook, Channel.sms)

CHANNEL_LABELS: dict[str, tuple[str, str]] = {
    Channel.inapp: ("站内消息", "Inbox"),
    Channel.email: ("电子邮件", "E-mail"),
    Channel.webhook: ("Webhook", "Webhook"),
    Channel.sms: ("短信", "SMS"),
}


class Topic(StrEnum):
    """What a notification is about; enterprises may mute topics for push channels."""

    policy_match = "policy_match"
    data_request = "data_request"
    grant = "grant"
    financing = "financing"
    funds = "funds"


TOPIC_LABELS: dict[str, tuple[str, str]] = {
    Topic.policy_match: ("政策匹配推送", "Matching policies"),
    Topic.data_request: ("补充数据提醒", "Missing data reminders"),
    Topic.grant: ("免申即享兑现", "No-application benefits"),
    Topic.financing: ("融资申请进度", "Financing applications"),
    Topic.funds: ("专项资金申报", "Special fund calls and applications"),
}


class OutboxStatus(StrEnum):
    """Life of an outbox row."""

    pending = "pending"  # waiting for its next attempt (first or retry)
    held = "held"  # over the daily cap: waits for the enterprise's digest
    sending = "sending"  # claimed by a dispatcher; its lease is claimed_until
    sent = "sent"  # accepted by the channel (SMTP relay, webhook 2xx, SMS gateway)
    digested = "digested"  # delivered inside a digest (see digest_id)
    dead = "dead"  # gave up after the last attempt or a permanent refusal
    cancelled = "cancelled"  # consent withdrawn before it went out


OUTBOX_LABELS: dict[str, tuple[str, str]] = {
    OutboxStatus.pending: ("待发送", "Pending"),
    OutboxStatus.held: ("待汇总", "Held for digest"),
    OutboxStatus.sending: ("发送中", "Sending"),
    OutboxStatus.sent: ("已送达", "Delivered"),
    OutboxStatus.digested: ("已汇总送达", "Delivered in digest"),
    OutboxStatus.dead: ("发送失败", "Dead letter"),
    OutboxStatus.cancelled: ("已取消", "Cancelled"),
}


class Subscription(Base):
    """An enterprise's push settings; a channel is active only with an address and consent."""

    __tablename__ = "notify_subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    # HMAC key for webhook signatures; it must be kept in clear to sign, and is shown to the
    # enterprise on its settings page so its receiver can verify.
    webhook_secret: Mapped[str | None] = mapped_column(String(64))
    email_consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sms_consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    muted_topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    quiet_start: Mapped[int | None] = mapped_column(Integer)  # minute of the day, Beijing time
    quiet_end: Mapped[int | None] = mapped_column(Integer)
    daily_cap: Mapped[int] = mapped_column(Integer, default=5)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    # The consent the registry gave when it created the subscription (a bulk import: hundreds of
    # thousands at once), kept as its actor instead of one ConsentEvent per channel: a grant,
    # via "registry", for each channel holding an address and consent, dated by that consent.
    # Written as events before the subscription's first change (subscriptions.write_kept_grants);
    # subscriptions.consent_history reads both.
    registry_grants_by: Mapped[str | None] = mapped_column(String(64))


class ConsentEvent(Base):
    """A consent given or withdrawn, with when and how (append-only)."""

    __tablename__ = "notify_consent_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    via: Mapped[str] = mapped_column(String(32))  # settings page, unsubscribe link, API
    actor: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))


class Notification(Base):
    """One message to one enterprise or one user; exactly one per dedupe key."""

    __tablename__ = "notify_notification"
    __table_args__ = (
        # addressed to an enterprise (all its users see it) or to one user, never both
        CheckConstraint(
            "(credit_code IS NULL) <> (recipient_user_id IS NULL)", name="one_recipient"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    topic: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # the same message in English, composed from the same data; empty on rows from before
    subject_en: Mapped[str | None] = mapped_column(String(200))
    body_en: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(500))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    rule_id: Mapped[str | None] = mapped_column(String(100), index=True)
    rule_version: Mapped[str | None] = mapped_column(String(64))
    deadline: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # a notification announcing many matching results at once: the rules it tells the
    # enterprise it fits (rule_id is then empty), so the push funnel counts each
    covers: Mapped[list[str] | None] = mapped_column(JSON)

    outbox: Mapped[list[OutboxMessage]] = relationship(
        back_populates="notification", foreign_keys="OutboxMessage.notification_id"
    )

    def subject_in(self, lang: str) -> str:
        """The subject in a display language (English falls back to Chinese on older rows)."""
        return (self.subject_en or self.subject) if lang == "en" else self.subject

    def body_in(self, lang: str) -> str:
        """The body in a display language (English falls back to Chinese on older rows)."""
        return (self.body_en or self.body) if lang == "en" else self.body


class OutboxMessage(Base):
    """One delivery of a notification (or of a digest) over one push channel."""

    __tablename__ = "notify_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_notification.id", ondelete="CASCADE"), index=True
    )
    # the enterprise whose subscription the row rests on, or the user it is addressed to
    credit_code: Mapped[str | None] = mapped_column(String(18), index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8), default="single")  # single | digest
    recipient: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.pending)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    local_day: Mapped[date] = mapped_column(Date)  # Beijing date it was queued (daily cap)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    digest_id: Mapped[int | None] = mapped_column(
        ForeignKey("notify_outbox.id", ondelete="SET NULL"), index=True
    )
    # what each attempt did: [{"at": iso, "ok": bool, "error": str|None}]
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    notification: Mapped[Notification | None] = relationship(
        back_populates="outbox", foreign_keys=[notification_id]
    )

    __table_args__ = (
        # a channel's claims walk its due rows in order (migration 0220)
        Index("ix_notify_outbox_channel_due", "channel", "status", "next_attempt_at", "id"),
        Index("ix_notify_outbox_cap", "credit_code", "channel", "local_day"),
    )


class ReadReceipt(Base):
    """A notification was opened: in the inbox or through the link in a pushed message."""

    __tablename__ = "notify_read_receipt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notify_notification.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    via: Mapped[str] = mapped_column(String(16))  # inbox | link
    user_id: Mapped[int | None] = mapped_column(Integer)
