"""Notification services: enqueue (exactly once per dedupe key), matching hook, subscriptions,
unsubscribe and open links, read receipts, digests. Every function takes the session first and
never commits; the caller's transaction decides."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import String, cast, func, literal, select, update
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.core import clock
from huiqi.core.bulk import chunks, insert_ignoring, insert_many
from huiqi.core.db import utcnow
from huiqi.core.errors import DomainError, NotFound
from huiqi.core.money import format_fen
from huiqi.enterprise import repository as ent_repo
from huiqi.events import EnterpriseChanged, GrantDecided, ResultChange, ResultsChanged
from huiqi.notify.models import (
    PUSH_CHANNELS,
    Channel,
    ConsentEvent,
    Notification,
    OutboxMessage,
    OutboxStatus,
    ReadReceipt,
    Subscription,
    Topic,
)
from huiqi.notify.schemas import (
    SettingsError,
    SettingsInput,
    check_email,
    check_phone,
    check_webhook_url,
)

UNSUBSCRIBE_SALT = "huiqi.notify.unsubscribe.v1"
OPEN_SALT = "huiqi.notify.open.v1"
MAX_SUBJECT = 200
MAX_LINK = 500
ALL_CHANNELS = "all"
INBOX_LINK = "/notify/inbox"


class NotifyError(DomainError):
    """A notification request was refused; the message says why."""


class InvalidLink(NotFound, NotifyError):
    """A signed link (unsubscribe, open) that is forged, damaged or not ours: 404."""


def quiet_until(sub: Subscription | None, moment: datetime) -> datetime | None:
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


def active_channels(sub: Subscription | None) -> list[tuple[Channel, str]]:
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


def channel_consented(sub: Subscription | None, channel: str) -> bool:
    """Whether the enterprise still consents to pushes over a channel."""
    return any(ch == channel for ch, _ in active_channels(sub))


def get_subscription(session: Session, credit_code: str) -> Subscription | None:
    """The enterprise's push settings, if it has any."""
    return session.scalar(select(Subscription).where(Subscription.credit_code == credit_code))


def new_idempotency_key() -> str:
    """A fresh idempotency key; it stays with the outbox row across every retry."""
    return "hq-" + uuid.uuid4().hex


def _check_message(subject: str, link: str, dedupe_key: str) -> None:
    """Refuse a notification without a subject, with a bad link or dedupe key."""
    if not dedupe_key or len(dedupe_key) > 255:
        raise NotifyError("dedupe_key: 1–255 characters")
    if not subject.strip():
        raise NotifyError("subject must not be empty")
    if (
        not (link.startswith("/") or link.startswith(("http://", "https://")))
        or len(link) > MAX_LINK
    ):
        raise NotifyError("link: a site path (/…) or an http(s) URL of at most 500 characters")


@dataclass(frozen=True)
class NoteSpec:
    """One notification to queue for an enterprise (checked before anything is written)."""

    credit_code: str
    topic: str
    subject: str
    body: str
    link: str
    dedupe_key: str
    rule_id: str | None = None
    rule_version: str | None = None
    deadline: date | None = None
    covers: tuple[str, ...] | None = None


def _sent_today_counts(
    session: Session, codes: Sequence[str], day: date
) -> dict[tuple[str, str], int]:
    """Single messages already queued per (enterprise, channel) on a Beijing day (held excluded)."""
    out: dict[tuple[str, str], int] = {}
    for chunk in chunks(codes):
        rows = session.execute(
            select(OutboxMessage.credit_code, OutboxMessage.channel, func.count())
            .where(
                OutboxMessage.credit_code.in_(list(chunk)),
                OutboxMessage.local_day == day,
                OutboxMessage.kind == "single",
                OutboxMessage.status.not_in([OutboxStatus.held, OutboxStatus.cancelled]),
            )
            .group_by(OutboxMessage.credit_code, OutboxMessage.channel)
        )
        for code, channel, n in rows:
            out[(str(code), str(channel))] = int(n)
    return out


def subscriptions_for(session: Session, codes: Sequence[str]) -> dict[str, Subscription]:
    """The push settings of these enterprises, by credit code (one query per 500 codes)."""
    out: dict[str, Subscription] = {}
    for chunk in chunks(codes):
        for sub in session.scalars(
            select(Subscription).where(Subscription.credit_code.in_(list(chunk)))
        ):
            out[sub.credit_code] = sub
    return out


def queue_notes(
    session: Session, specs: Sequence[NoteSpec], now: datetime | None = None
) -> list[int]:
    """Queue many notifications at once; returns the ids of those created (in spec order).

    One INSERT … ON CONFLICT (dedupe_key) DO NOTHING stores the new ones: a key that exists,
    from an earlier run or a concurrent transaction, is skipped, so each fact is announced
    exactly once. Their outbox rows follow in one insert: a row per push channel with an address
    and consent whose topic is not muted; inside quiet hours it waits until they end; beyond the
    daily cap (counted over what is already queued today plus this batch, in order) it is held
    for the next day's digest. Never commits.
    """
    if not specs:
        return []
    now = now or utcnow()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for spec in specs:
        _check_message(spec.subject, spec.link, spec.dedupe_key)
        if spec.dedupe_key in seen:
            continue
        seen.add(spec.dedupe_key)
        rows.append(
            {
                "credit_code": spec.credit_code,
                "topic": spec.topic,
                "subject": spec.subject.strip()[:MAX_SUBJECT],
                "body": spec.body,
                "link": spec.link,
                "dedupe_key": spec.dedupe_key,
                "rule_id": spec.rule_id,
                "rule_version": spec.rule_version,
                "deadline": spec.deadline,
                "created_at": now,
                "covers": list(spec.covers) if spec.covers is not None else None,
            }
        )
    session.flush()
    got = insert_ignoring(
        session,
        Notification.__table__,  # type: ignore[arg-type]
        rows,
        ["dedupe_key"],
        returning=("id", "dedupe_key"),
    )
    ids = {str(key): int(nid) for nid, key in got}
    created = [(ids[r["dedupe_key"]], r) for r in rows if r["dedupe_key"] in ids]
    if not created:
        return []
    codes = sorted({str(r["credit_code"]) for _, r in created})
    subs = subscriptions_for(session, codes)
    day = clock.beijing_day(now)
    counts = _sent_today_counts(session, sorted(subs), day) if subs else {}
    outbox: list[dict[str, Any]] = []
    for nid, r in created:
        sub = subs.get(str(r["credit_code"]))
        if sub is None or r["topic"] in (sub.muted_topics or []):
            continue
        wait = quiet_until(sub, now)
        for channel, recipient in active_channels(sub):
            key = (sub.credit_code, channel.value)
            over_cap = counts.get(key, 0) >= sub.daily_cap
            if not over_cap:
                counts[key] = counts.get(key, 0) + 1
            outbox.append(
                {
                    "notification_id": nid,
                    "credit_code": sub.credit_code,
                    "channel": channel.value,
                    "kind": "single",
                    "recipient": recipient,
                    "status": str(OutboxStatus.held if over_cap else OutboxStatus.pending),
                    "idempotency_key": new_idempotency_key(),
                    "local_day": day,
                    "next_attempt_at": wait or now,
                    "created_at": now,
                    "attempts": 0,
                    "history": [],
                }
            )
    insert_many(session, OutboxMessage.__table__, outbox)  # type: ignore[arg-type]
    return [nid for nid, _ in created]


def enqueue(
    session: Session,
    *,
    credit_code: str,
    topic: str,
    subject: str,
    body: str,
    link: str,
    dedupe_key: str,
    rule_id: str | None = None,
    deadline: date | None = None,
    rule_version: str | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Create one notification per dedupe key (None if it exists) and its outbox rows.

    The inbox always receives it. Push channels get one outbox row each when the enterprise
    gave an address and consent and did not mute the topic; inside quiet hours the row waits
    until they end; beyond the daily cap it is held for the next day's digest. Never commits.
    """
    spec = NoteSpec(
        credit_code, topic, subject, body, link, dedupe_key, rule_id, rule_version, deadline
    )
    ids = queue_notes(session, [spec], now)
    return session.get(Notification, ids[0]) if ids else None


def enqueue_user(
    session: Session,
    *,
    user_id: int,
    topic: str,
    subject: str,
    body: str,
    link: str,
    dedupe_key: str,
    deadline: date | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Create one notification for one user per dedupe key (None if it exists).

    The user's inbox always receives it; an active user with an e-mail address on the account
    also gets it by e-mail. These are work messages about the user's own cases (no enterprise
    subscription, quiet hours or daily cap apply). Never commits.
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotifyError(f"no user {user_id}")
    now = now or utcnow()
    _check_message(subject, link, dedupe_key)
    session.flush()
    got = insert_ignoring(
        session,
        Notification.__table__,  # type: ignore[arg-type]
        [
            {
                "credit_code": None,
                "recipient_user_id": user.id,
                "topic": topic,
                "subject": subject.strip()[:MAX_SUBJECT],
                "body": body,
                "link": link,
                "dedupe_key": dedupe_key,
                "deadline": deadline,
                "created_at": now,
            }
        ],
        ["dedupe_key"],
        returning=("id",),
    )
    if not got:
        return None
    note = session.get(Notification, int(got[0][0]))
    assert note is not None
    address = (user.email or "").strip()
    if user.is_active and address:
        session.add(
            OutboxMessage(
                notification_id=note.id,
                credit_code=None,
                recipient_user_id=user.id,
                channel=Channel.email,
                kind="single",
                recipient=address,
                status=OutboxStatus.pending,
                idempotency_key=new_idempotency_key(),
                local_day=clock.beijing_day(now),
                next_attempt_at=now,
                created_at=now,
            )
        )
        session.flush()
    return note


def institution_users(session: Session, institution: str) -> list[User]:
    """The active bank users acting for an institution."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.role == Role.bank,
                User.institution == institution,
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def enqueue_institution(
    session: Session,
    *,
    institution: str,
    topic: str,
    subject: str,
    body: str,
    link: str,
    dedupe_key: str,
    deadline: date | None = None,
    now: datetime | None = None,
) -> list[Notification]:
    """Tell every active user of a lender about one event, once each (key + ":user:<id>")."""
    created = []
    for user in institution_users(session, institution):
        note = enqueue_user(
            session,
            user_id=user.id,
            topic=topic,
            subject=subject,
            body=body,
            link=link,
            dedupe_key=f"{dedupe_key}:user:{user.id}",
            deadline=deadline,
            now=now,
        )
        if note is not None:
            created.append(note)
    return created


def result_dedupe_key(change: ResultChange) -> str:
    """Dedupe key of a matching result: enterprise, rule, rule version and result."""
    return f"match:{change.credit_code}:{change.rule_id}:{change.rule_version}:{change.result}"


def compose_result_message(change: ResultChange) -> tuple[str, str, str]:
    """Topic, subject and Chinese body for a new or changed matching result."""
    title = change.rule_title or change.rule_id
    lines: list[str] = []
    if change.enterprise_name:
        lines.append(f"{change.enterprise_name}:")
    if change.result == "eligible":
        topic = Topic.policy_match
        if change.mode == "auto_grant":
            subject = f"您符合「{title}」,免申即享,无需申请"
            lines.append(f"经比对,贵企业符合政策「{title}」的条件。")
        else:
            subject = f"您可能符合「{title}」"
            lines.append(f"经比对,贵企业可能符合政策「{title}」的条件。")
    else:
        topic = Topic.data_request
        subject = f"补充数据后可判断是否符合「{title}」"
        lines.append(f"判断贵企业是否符合政策「{title}」还缺少部分数据。")
    if change.legal_basis:
        lines.append(f"政策依据:{change.legal_basis}")
    if change.reasons:
        lines.append("符合理由:" if change.result == "eligible" else "已核对的条件:")
        lines.extend(f"  · {reason}" for reason in change.reasons)
    if change.missing:
        lines.append("缺少的数据:" + "、".join(change.missing))
    if change.result == "eligible" and change.mode == "auto_grant":
        if change.amount_fen is not None:
            lines.append(f"预计金额:{format_fen(change.amount_fen)}(以审核结果为准)")
        lines.append("怎么办:无需提交申请,主管部门审核通过后直接兑现,届时将另行通知。")
    elif change.result == "eligible":
        lines.append("怎么办:请点击链接查看申报要求和所需材料,按期向主管部门申报。")
    else:
        lines.append("怎么办:请点击链接补充上述数据,系统将自动重新判断。")
    return topic, subject, "\n".join(lines)


def result_notes(changes: Iterable[ResultChange]) -> list[NoteSpec]:
    """The notifications a batch of result changes calls for: eligible results, and unknown
    results with the data that is missing; the rest (ineligible) tell nothing."""
    specs: list[NoteSpec] = []
    for change in changes:
        if not (change.result == "eligible" or (change.result == "unknown" and change.missing)):
            continue
        topic, subject, body = compose_result_message(change)
        specs.append(
            NoteSpec(
                change.credit_code,
                topic,
                subject,
                body,
                INBOX_LINK,
                result_dedupe_key(change),
                change.rule_id,
                change.rule_version,
                change.deadline,
            )
        )
    return specs


SINGLES_UP_TO = 3  # more news than this for one enterprise at once come as one summary


def summary_note(credit_code: str, changes: Sequence[ResultChange]) -> NoteSpec:
    """One notification announcing many new results of an enterprise (a first run, a new rule).

    Its dedupe key is derived from the results it announces, so the same batch announced again
    (a run resumed after a crash) is skipped like a single message would be.
    """
    eligible = [c for c in changes if c.result == "eligible"]
    unknown = [c for c in changes if c.result != "eligible"]
    name = next((c.enterprise_name for c in changes if c.enterprise_name), "")
    lines = [f"{name}:" if name else "贵企业:"]
    if eligible:
        lines.append(f"经比对,贵企业可能符合以下 {len(eligible)} 项政策:")
        for c in eligible:
            mark = "(免申即享,无需申请)" if c.mode == "auto_grant" else ""
            basis = f"(依据:{c.legal_basis})" if c.legal_basis else ""
            lines.append(f"  · 「{c.rule_title or c.rule_id}」{mark}{basis}")
    if unknown:
        lines.append(f"另有 {len(unknown)} 项政策还缺少数据,无法判断:")
        for c in unknown:
            lines.append(f"  · 「{c.rule_title or c.rule_id}」缺少:" + "、".join(c.missing))
    lines.append(
        "怎么办:请打开“我的政策”查看每项政策的条件、理由和所需材料;补充数据后系统将自动重新判断。"
    )
    if eligible:
        topic = Topic.policy_match
        subject = f"您可能符合 {len(eligible)} 项惠企政策"
        if unknown:
            subject += f",另有 {len(unknown)} 项待补充数据"
    else:
        topic = Topic.data_request
        subject = f"补充数据后可判断 {len(unknown)} 项政策"
    facts = sorted(result_dedupe_key(c) for c in changes)
    digest = hashlib.sha256("\n".join(facts).encode("utf-8")).hexdigest()[:40]
    return NoteSpec(
        credit_code,
        topic,
        subject,
        "\n".join(lines),
        "/matching/mine",
        f"matchset:{credit_code}:{digest}",
        covers=tuple(sorted({c.rule_id for c in eligible})),
    )


def grouped_result_notes(changes: Iterable[ResultChange]) -> list[NoteSpec]:
    """The notifications of a batch of results: up to SINGLES_UP_TO news per enterprise as
    single messages, more as one summary (so a first run or a new rule sends each enterprise
    one message, under the same caps and digests as any push)."""
    by_code: dict[str, list[ResultChange]] = {}
    for change in changes:
        if change.result == "eligible" or (change.result == "unknown" and change.missing):
            by_code.setdefault(change.credit_code, []).append(change)
    specs: list[NoteSpec] = []
    for code, news in by_code.items():
        if len(news) <= SINGLES_UP_TO:
            specs += result_notes(news)
        else:
            specs.append(summary_note(code, news))
    return specs


def _link_to_inbox(session: Session, ids: Sequence[int]) -> None:
    """Point single result messages at their own inbox page (one UPDATE per 500 ids)."""
    for chunk in chunks(ids):
        session.execute(
            update(Notification)
            .where(Notification.id.in_(list(chunk)), Notification.link == INBOX_LINK)
            .values(link=literal(INBOX_LINK + "/") + cast(Notification.id, String))
            .execution_options(synchronize_session=False)
        )


def queue_result_notes(
    session: Session, changes: Iterable[ResultChange], now: datetime | None = None
) -> list[int]:
    """Queue one notification per result change in one set-based pass; returns the new ids."""
    ids = queue_notes(session, result_notes(changes), now)
    _link_to_inbox(session, ids)
    return ids


def notify_results(session: Session, changed_results: Iterable[ResultChange]) -> list[Notification]:
    """One notification per new or changed eligible (or unknown-with-missing-data) result.

    Call it in the matching run's transaction with the changed results; a rerun with the
    same rule versions and results creates nothing (dedupe key: enterprise, rule, rule version,
    result).
    """
    ids = queue_result_notes(session, changed_results)
    notes: list[Notification] = []
    for chunk in chunks(ids):
        notes += session.scalars(
            select(Notification)
            .where(Notification.id.in_(list(chunk)))
            .execution_options(populate_existing=True)
        )
    return sorted(notes, key=lambda n: n.id)


def on_results_changed(session: Session, event: ResultsChanged) -> None:
    """Matching stored new or changed results: queue their notifications, grouped per
    enterprise (handler)."""
    ids = queue_notes(session, grouped_result_notes(event.changes))
    _link_to_inbox(session, ids)


def on_grant_decided(session: Session, event: GrantDecided) -> None:
    """A grant was decided: tell the enterprise, once per grant and status (handler)."""
    enqueue(
        session,
        credit_code=event.credit_code,
        topic=Topic.grant,
        subject=event.subject,
        body=event.body,
        link=event.link,
        dedupe_key=f"grant:{event.grant_id}:{event.status}",
        rule_id=event.rule_id,
        rule_version=str(event.rule_version),
    )


# --- subscriptions and consent -------------------------------------------------------------


def _consent_change(
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
    if granted and not had:
        setattr(sub, attr, now)
    elif not granted and had:
        setattr(sub, attr, None)
        cancel_queued(session, sub.credit_code, channel)
    else:
        return
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
    for channel, consent, field_name, value in (
        (Channel.email, data.consent_email, "email", data.email),
        (Channel.sms, data.consent_sms, "phone", data.phone),
        (Channel.webhook, data.consent_webhook, "webhook_url", data.webhook_url),
    ):
        if getattr(sub, field_name) != value:
            # a new address needs fresh consent: the old consent was for the old address
            _consent_change(session, sub, channel, False, None, via=via, actor=actor, now=now)
            setattr(sub, field_name, value)
        _consent_change(session, sub, channel, consent, value, via=via, actor=actor, now=now)
    if sub.webhook_url and not sub.webhook_secret:
        sub.webhook_secret = secrets.token_hex(32)
    sub.muted_topics = list(data.muted_topics)
    sub.quiet_start, sub.quiet_end = data.quiet_start, data.quiet_end
    sub.daily_cap = data.daily_cap
    sub.updated_at = now
    sub.updated_by = actor
    session.flush()
    return sub


# --- subscriptions from the enterprise registry -------------------------------------------

REGISTRY_VIA = "registry"
# (channel, registry address field, registry consent field, subscription address attribute)
REGISTRY_FIELDS: tuple[tuple[Channel, str, str, str], ...] = (
    (Channel.email, "contact_email", "consent_email", "email"),
    (Channel.sms, "contact_phone", "consent_phone", "phone"),
    (Channel.webhook, "contact_webhook", "consent_webhook", "webhook_url"),
)
_IN_CHUNK = 500  # bound parameters per IN list, well under SQLite's limit


@dataclass
class RegistrySync:
    """What a registry sync did: consents granted or withdrawn, addresses it refused."""

    granted: list[tuple[str, str]] = field(default_factory=list)  # (credit code, channel)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (code, field, why)


def _chunks(codes: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(codes), _IN_CHUNK):
        yield codes[start : start + _IN_CHUNK]


def _registry_contacts(
    session: Session, credit_codes: Sequence[str] | None
) -> dict[str, dict[str, tuple[str, date, str]]]:
    """Current contact and consent values per enterprise: field → (stored text, as-of, source)."""
    names = [name for _, address, consent, _ in REGISTRY_FIELDS for name in (address, consent)]
    out: dict[str, dict[str, tuple[str, date, str]]] = {}
    for code, name, _year, value, as_of, source in ent_repo.live_values(
        session, credit_codes, names, year=0
    ):
        out.setdefault(code, {})[name] = (value, as_of, source)
    return out


def _last_registry_events(
    session: Session, credit_codes: Sequence[str] | None
) -> dict[tuple[str, str], ConsentEvent]:
    """The latest consent event the registry recorded per (enterprise, channel)."""
    q = select(ConsentEvent).where(ConsentEvent.via == REGISTRY_VIA).order_by(ConsentEvent.id)
    batches = (
        [q]
        if credit_codes is None
        else [q.where(ConsentEvent.credit_code.in_(chunk)) for chunk in _chunks(credit_codes)]
    )
    out: dict[tuple[str, str], ConsentEvent] = {}
    for query in batches:
        for event in session.scalars(query):
            out[(event.credit_code, event.channel)] = event
    return out


def _registry_address(channel: Channel, raw: str, *, allow_private: bool) -> str:
    """The registry's address checked as the settings page checks it (SettingsError if bad)."""
    if channel == Channel.email:
        return check_email(raw)
    if channel == Channel.sms:
        return check_phone(raw)
    return check_webhook_url(raw, allow_private=allow_private)


def sync_subscriptions_from_registry(
    session: Session,
    credit_codes: Iterable[str] | None = None,
    *,
    allow_private_webhooks: bool | None = None,
) -> RegistrySync:
    """Seed and update push subscriptions from the registry's contact_* and consent_* fields.

    An address with its consent flag set gives the channel's subscription and consent, dated
    by the registry value and recorded with source "registry"; without the flag nothing is
    stored. Only a change of the registry is applied: an enterprise that later unsubscribed
    or changed its settings is not overridden by the same registry values again. Consent the
    registry withdraws is withdrawn only if it still rests on the registry. Idempotent; never
    commits. All enterprises when `credit_codes` is None.
    """
    if allow_private_webhooks is None:
        from huiqi.core.config import get_settings

        allow_private_webhooks = get_settings().webhook_allow_private
    codes = None if credit_codes is None else sorted(set(credit_codes))
    report = RegistrySync()
    if codes == []:
        return report
    contacts = _registry_contacts(session, codes)
    last = _last_registry_events(session, codes)
    targets = sorted(set(contacts) | {code for code, _ in last})
    subs = {
        s.credit_code: s
        for chunk in _chunks(targets)
        for s in session.scalars(select(Subscription).where(Subscription.credit_code.in_(chunk)))
    }
    now = utcnow()
    for code in targets:
        values = contacts.get(code, {})
        for channel, address_field, consent_field, attr in REGISTRY_FIELDS:
            address_value = values.get(address_field)
            consent_value = values.get(consent_field)
            wanted: str | None = None
            if address_value and address_value[0].strip() and consent_value:
                if consent_value[0] == "1":
                    try:
                        wanted = _registry_address(
                            channel, address_value[0], allow_private=allow_private_webhooks
                        )
                    except SettingsError as exc:
                        report.refused.append((code, address_field, exc.message))
            previous = last.get((code, channel.value))
            if wanted is not None:
                if previous is not None and previous.granted and previous.address == wanted:
                    continue  # already applied; later choices of the enterprise stand
                assert address_value is not None and consent_value is not None
                day = max(address_value[1], consent_value[1])
                given = clock.day_start(day)
                sub = subs.get(code)
                if sub is None:
                    sub = Subscription(credit_code=code, muted_topics=[], daily_cap=5)
                    session.add(sub)
                    subs[code] = sub
                if getattr(sub, attr) != wanted:
                    # consent given for the old address does not carry over to the new one
                    _consent_change(
                        session, sub, channel, False, None, via=REGISTRY_VIA, actor=None, now=now
                    )
                    setattr(sub, attr, wanted)
                consent_attr = f"{channel.value}_consent_at"
                if getattr(sub, consent_attr) is None:
                    setattr(sub, consent_attr, given)
                session.add(
                    ConsentEvent(
                        credit_code=code,
                        channel=channel.value,
                        granted=True,
                        at=given,
                        via=REGISTRY_VIA,
                        actor=consent_value[2][:64],
                        address=wanted,
                    )
                )
                if channel == Channel.webhook and not sub.webhook_secret:
                    sub.webhook_secret = secrets.token_hex(32)
                sub.updated_at, sub.updated_by = now, REGISTRY_VIA
                report.granted.append((code, channel.value))
            elif previous is not None and previous.granted:
                sub = subs.get(code)
                latest = session.scalar(
                    select(ConsentEvent.id)
                    .where(ConsentEvent.credit_code == code, ConsentEvent.channel == channel.value)
                    .order_by(ConsentEvent.id.desc())
                    .limit(1)
                )
                actor = consent_value[2][:64] if consent_value else None
                # withdraw only a consent that still rests on the registry's statement
                if (
                    sub is not None
                    and latest == previous.id
                    and getattr(sub, attr) == previous.address
                    and channel_consented(sub, channel)
                ):
                    _consent_change(
                        session,
                        sub,
                        channel,
                        False,
                        previous.address,
                        via=REGISTRY_VIA,
                        actor=actor,
                        now=now,
                    )
                    sub.updated_at, sub.updated_by = now, REGISTRY_VIA
                    report.withdrawn.append((code, channel.value))
                elif not channel_consented(sub, channel):
                    # already withdrawn by the enterprise: note the registry's withdrawal too,
                    # so consent given in the registry again later is a change and applies
                    session.add(
                        ConsentEvent(
                            credit_code=code,
                            channel=channel.value,
                            granted=False,
                            at=now,
                            via=REGISTRY_VIA,
                            actor=actor,
                            address=previous.address,
                        )
                    )
    session.flush()
    return report


def on_enterprise_changed(session: Session, event: EnterpriseChanged) -> None:
    """Registry changes update the subscriptions from contact and consent values (handler)."""
    sync_subscriptions_from_registry(session, event.codes)


def rotate_webhook_secret(session: Session, credit_code: str) -> str:
    """Issue a new webhook signing secret; the old one stops verifying at once."""
    sub = get_subscription(session, credit_code)
    if sub is None or not sub.webhook_url:
        raise NotifyError("no webhook configured")
    sub.webhook_secret = secrets.token_hex(32)
    return sub.webhook_secret


@lru_cache(maxsize=16)
def _serializer(secret_key: str, salt: str) -> URLSafeSerializer:
    """One signer per key and purpose (a push renders two links per message)."""
    return URLSafeSerializer(secret_key, salt=salt)


def unsubscribe_token(secret_key: str, credit_code: str, channel: str = ALL_CHANNELS) -> str:
    """A signed token that can only unsubscribe this enterprise from this channel (or all)."""
    return _serializer(secret_key, UNSUBSCRIBE_SALT).dumps({"c": credit_code, "ch": channel})


def read_unsubscribe_token(secret_key: str, token: str) -> tuple[str, str]:
    """Credit code and channel from an unsubscribe token; NotifyError when forged or damaged."""
    try:
        data = _serializer(secret_key, UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        raise InvalidLink("退订链接无效", "invalid unsubscribe link") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), str):
        raise InvalidLink("退订链接无效", "invalid unsubscribe link")
    channel = data.get("ch")
    if channel != ALL_CHANNELS and channel not in {c.value for c in PUSH_CHANNELS}:
        raise InvalidLink("退订链接无效", "invalid unsubscribe link")
    return data["c"], str(channel)


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
            _consent_change(session, sub, ch, False, None, via=via, actor=None, now=now)
            withdrawn.append(ch.value)
    session.flush()
    return withdrawn


def open_token(secret_key: str, notification_id: int, channel: str) -> str:
    """A signed token for the link in a pushed message; opening it records a read receipt."""
    return _serializer(secret_key, OPEN_SALT).dumps({"n": notification_id, "ch": channel})


def read_open_token(secret_key: str, token: str) -> tuple[int, str]:
    """Notification id and channel from an open-link token."""
    try:
        data = _serializer(secret_key, OPEN_SALT).loads(token)
    except BadSignature:
        raise InvalidLink("链接无效", "invalid link") from None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise InvalidLink("链接无效", "invalid link")
    return data["n"], str(data.get("ch", "link"))


# --- inbox ---------------------------------------------------------------------------------


def _addressed_to(user: User) -> Any:
    """The condition selecting the notifications a user may read."""
    if user.role == Role.enterprise:
        # an enterprise user reads its enterprise's messages; without a binding, none
        return Notification.credit_code == (user.credit_code or "")
    return Notification.recipient_user_id == user.id


def can_read(user: User, note: Notification) -> bool:
    """Whether the notification belongs to the user's inbox."""
    if user.role == Role.enterprise:
        return note.credit_code is not None and note.credit_code == user.credit_code
    return note.recipient_user_id is not None and note.recipient_user_id == user.id


def inbox_for(
    session: Session, user: User, *, unread_only: bool = False, limit: int = 200
) -> Sequence[Notification]:
    """The user's inbox, newest first: its enterprise's messages, or its own as bank or officer."""
    q = select(Notification).where(_addressed_to(user))
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return session.scalars(q.order_by(Notification.id.desc()).limit(limit)).all()


def unread_count_for(session: Session, user: User) -> int:
    """How many notifications of the user's inbox are unread."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(_addressed_to(user), Notification.read_at.is_(None))
        )
        or 0
    )


def inbox(
    session: Session, credit_code: str, *, unread_only: bool = False, limit: int = 200
) -> Sequence[Notification]:
    """The enterprise's notifications, newest first."""
    q = select(Notification).where(Notification.credit_code == credit_code)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return session.scalars(q.order_by(Notification.id.desc()).limit(limit)).all()


def unread_count(session: Session, credit_code: str) -> int:
    """How many notifications the enterprise has not read."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.credit_code == credit_code, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(
    session: Session, note: Notification, *, via: str, user_id: int | None = None
) -> ReadReceipt:
    """Record a read receipt; the first one sets the notification's read time."""
    now = utcnow()
    if note.read_at is None:
        note.read_at = now
    receipt = ReadReceipt(notification_id=note.id, at=now, via=via, user_id=user_id)
    session.add(receipt)
    session.flush()
    return receipt


def mark_unread(session: Session, note: Notification) -> None:
    """Show a notification as unread again (its receipts stay)."""
    note.read_at = None


# --- digests -------------------------------------------------------------------------------


def build_digests(session: Session, now: datetime | None = None) -> list[OutboxMessage]:
    """Bundle rows held over the daily cap on earlier days into one digest per enterprise and channel."""
    now = now or utcnow()
    today = clock.beijing_day(now)
    held = session.scalars(
        select(OutboxMessage)
        .where(
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


def outbox_rows(
    session: Session,
    *,
    status: str | None = None,
    channel: str | None = None,
    credit_code: str | None = None,
    limit: int = 200,
) -> Sequence[OutboxMessage]:
    """Outbox rows for the officers' delivery view, newest first."""
    q = select(OutboxMessage)
    if status:
        q = q.where(OutboxMessage.status == status)
    if channel:
        q = q.where(OutboxMessage.channel == channel)
    if credit_code:
        q = q.where(OutboxMessage.credit_code == credit_code)
    return session.scalars(q.order_by(OutboxMessage.id.desc()).limit(limit)).all()


def status_counts(session: Session) -> dict[tuple[str, str], int]:
    """Outbox rows per (channel, status)."""
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.channel, OutboxMessage.status
        )
    ).all()
    return {(ch, st): int(n) for ch, st, n in rows}


def requeue_dead(session: Session, outbox_id: int) -> OutboxMessage:
    """Give a dead-lettered row a fresh round of attempts (same idempotency key)."""
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.status != OutboxStatus.dead:
        raise NotifyError("only dead-lettered messages can be retried")
    row.status = OutboxStatus.pending
    row.attempts = 0
    row.next_attempt_at = utcnow()
    return row


def describe(row: OutboxMessage) -> dict[str, Any]:
    """A plain view of an outbox row for JSON output."""
    return {
        "id": row.id,
        "notification_id": row.notification_id,
        "credit_code": row.credit_code,
        "channel": row.channel,
        "kind": row.kind,
        "status": row.status,
        "attempts": row.attempts,
        "idempotency_key": row.idempotency_key,
        "last_error": row.last_error,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }
