"""Enterprises' push settings: addresses, consent (recorded with its time), quiet hours,
muted topics and the daily cap; unsubscribing."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.bulk import rows_of_codes
from huiqi.core.db import utcnow
from huiqi.notify.links import ALL_CHANNELS
from huiqi.notify.models import (
    PUSH_CHANNELS,
    Channel,
    ConsentEvent,
    OutboxMessage,
    OutboxStatus,
    Subscription,
)
from huiqi.notify.schemas import (
    NotifyError,
    SettingsInput,
)

_SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]


class PushSettings(Protocol):
    """What deciding a push reads of an enterprise's settings: a Subscription, or its columns
    as read for a batch (SettingsRow)."""

    @property
    def credit_code(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def webhook_url(self) -> str | None: ...
    @property
    def email_consent_at(self) -> datetime | None: ...
    @property
    def sms_consent_at(self) -> datetime | None: ...
    @property
    def webhook_consent_at(self) -> datetime | None: ...
    @property
    def muted_topics(self) -> list[str]: ...
    @property
    def quiet_start(self) -> int | None: ...
    @property
    def quiet_end(self) -> int | None: ...
    @property
    def daily_cap(self) -> int: ...


class SettingsRow(NamedTuple):
    """An enterprise's push settings read as a row (no ORM object per enterprise)."""

    credit_code: str
    email: str | None
    phone: str | None
    webhook_url: str | None
    email_consent_at: datetime | None
    sms_consent_at: datetime | None
    webhook_consent_at: datetime | None
    muted_topics: list[str]
    quiet_start: int | None
    quiet_end: int | None
    daily_cap: int


def quiet_until(sub: PushSettings | None, moment: datetime) -> datetime | None:
    """When the enterprise's quiet hours end, if `moment` falls inside them (else None)."""
    if sub is None or sub.quiet_start is None or sub.quiet_end is None:
        return None
    local = clock.in_beijing(moment)
    minute = local.hour * 60 + local.minute
    start, end = sub.quiet_start, sub.quiet_end
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_today = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if end_today <= local:
        end_today += timedelta(days=1)
    return end_today.astimezone(UTC)


def active_channels(sub: PushSettings | None) -> list[tuple[Channel, str]]:
    """The push channels with an address and a recorded consent, with their recipient."""
    if sub is None:
        return []
    out: list[tuple[Channel, str]] = []
    if sub.email and sub.email_consent_at is not None:
        out.append((Channel.email, sub.email))
    if sub.webhook_url and sub.webhook_consent_at is not None:
        out.append((Channel.webhook, sub.webhook_url))
    if sub.phone and sub.sms_consent_at is not None:
        out.append((Channel.sms, sub.phone))
    return out


def channel_consented(sub: PushSettings | None, channel: str) -> bool:
    """Whether the enterprise still consents to pushes over a channel."""
    return any(ch == channel for ch, _ in active_channels(sub))


def get_subscription(session: Session, credit_code: str) -> Subscription | None:
    """The enterprise's push settings, if it has any."""
    return session.scalar(select(Subscription).where(Subscription.credit_code == credit_code))


def subscriptions_for(session: Session, codes: Sequence[str]) -> dict[str, SettingsRow]:
    """The push settings of these enterprises, by credit code (one query, read as rows)."""
    if not codes:
        return {}
    columns = [_SUBSCRIPTIONS.c[name] for name in SettingsRow._fields]
    rows = session.execute(rows_of_codes(session, _SUBSCRIPTIONS, columns, codes))
    return {row[0]: SettingsRow(*row) for row in rows}


# where each push channel's address is kept on a subscription
_ADDRESS_OF = {Channel.email: "email", Channel.sms: "phone", Channel.webhook: "webhook_url"}
REGISTRY_VIA = "registry"


def kept_grants(sub: Subscription) -> list[ConsentEvent]:
    """The registry's grants kept on the subscription (see Subscription.registry_grants_by) as
    unsaved events, in the order the registry sync records them: a grant for each channel
    holding an address and consent, dated by that consent."""
    if sub.registry_grants_by is None:
        return []
    kept: list[ConsentEvent] = []
    for channel in (Channel.email, Channel.sms, Channel.webhook):
        address = getattr(sub, _ADDRESS_OF[channel])
        at = getattr(sub, f"{channel.value}_consent_at")
        if address and at is not None:
            kept.append(
                ConsentEvent(
                    credit_code=sub.credit_code, channel=channel.value, granted=True, at=at,
                    via=REGISTRY_VIA, actor=sub.registry_grants_by, address=address,
                )
            )  # fmt: skip
    return kept


def write_kept_grants(session: Session, sub: Subscription) -> None:
    """Record the registry's grants kept on the subscription as events, before it changes (the
    events describe it as it was created)."""
    for event in kept_grants(sub):
        session.add(event)
    sub.registry_grants_by = None


def consent_history(
    session: Session, credit_code: str, *, limit: int | None = None
) -> list[ConsentEvent]:
    """The enterprise's consent events, newest first (`limit`: at most so many), the grants
    kept on its subscription included (they are its oldest)."""
    q = (
        select(ConsentEvent)
        .where(ConsentEvent.credit_code == credit_code)
        .order_by(ConsentEvent.id.desc())
    )
    rows = list(session.scalars(q if limit is None else q.limit(limit)))
    if limit is not None and len(rows) >= limit:
        return rows
    sub = get_subscription(session, credit_code)
    kept = kept_grants(sub)[::-1] if sub is not None else []
    both = rows + kept
    return both if limit is None else both[:limit]


def consent_change(
    session: Session,
    sub: Subscription,
    channel: Channel,
    granted: bool,
    address: str | None,
    *,
    via: str,
    actor: str | None,
    now: datetime,
) -> None:
    """Record consent given or withdrawn and cancel what would now go out against it."""
    attr = f"{channel.value}_consent_at"
    had = getattr(sub, attr) is not None
    if granted == had:
        return
    write_kept_grants(session, sub)
    if granted:
        setattr(sub, attr, now)
    else:
        setattr(sub, attr, None)
        cancel_queued(session, sub.credit_code, channel)
    session.add(
        ConsentEvent(
            credit_code=sub.credit_code,
            channel=channel.value,
            granted=granted,
            at=now,
            via=via,
            actor=actor,
            address=address,
        )
    )


def cancel_queued(session: Session, credit_code: str, channel: str) -> int:
    """Cancel the rows of a channel that have not gone out yet; returns how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.credit_code == credit_code,
            OutboxMessage.channel == channel,
            OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.held]),
        )
        .values(status=OutboxStatus.cancelled, last_error="consent withdrawn")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def save_settings(
    session: Session,
    credit_code: str,
    data: SettingsInput,
    *,
    actor: str | None,
    via: str = "settings",
    now: datetime | None = None,
) -> Subscription:
    """Store an enterprise's push settings; consent changes are recorded with their time."""
    now = now or utcnow()
    sub = get_subscription(session, credit_code)
    if sub is None:
        sub = Subscription(credit_code=credit_code, muted_topics=[], daily_cap=5)
        session.add(sub)
    write_kept_grants(session, sub)
    for channel, consent, field_name, value in (
        (Channel.email, data.consent_email, "email", data.email),
        (Channel.sms, data.consent_sms, "phone", data.phone),
        (Channel.webhook, data.consent_webhook, "webhook_url", data.webhook_url),
    ):
        if getattr(sub, field_name) != value:
            # a new address needs fresh consent: the old consent was for the old address
            consent_change(session, sub, channel, False, None, via=via, actor=actor, now=now)
            setattr(sub, field_name, value)
        consent_change(session, sub, channel, consent, value, via=via, actor=actor, now=now)
    if sub.webhook_url and not sub.webhook_secret:
        sub.webhook_secret = secrets.token_hex(32)
    sub.muted_topics = list(data.muted_topics)
    sub.quiet_start, sub.quiet_end = data.quiet_start, data.quiet_end
    sub.daily_cap = data.daily_cap
    sub.updated_at = now
    sub.updated_by = actor
    session.flush()
    return sub


def rotate_webhook_secret(session: Session, credit_code: str) -> str:
    """Issue a new webhook signing secret; the old one stops verifying at once."""
    sub = get_subscription(session, credit_code)
    if sub is None or not sub.webhook_url:
        raise NotifyError("no webhook configured")
    sub.webhook_secret = secrets.token_hex(32)
    return sub.webhook_secret


def unsubscribe(
    session: Session, credit_code: str, channel: str, *, via: str = "unsubscribe_link"
) -> list[str]:
    """Withdraw consent for one push channel or all; returns the channels withdrawn."""
    sub = get_subscription(session, credit_code)
    if sub is None:
        return []
    now = utcnow()
    withdrawn = []
    for ch in PUSH_CHANNELS:
        if channel in (ALL_CHANNELS, ch.value) and channel_consented(sub, ch):
            consent_change(session, sub, ch, False, None, via=via, actor=None, now=now)
            withdrawn.append(ch.value)
    session.flush()
    return withdrawn
