"""Notifications queued exactly once per dedupe key, with an outbox row per push channel;
the officers' delivery view of the outbox."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.core import clock
from huiqi.core.bulk import JsonText, insert_ignoring, insert_many, rows_of_codes
from huiqi.core.db import utcnow
from huiqi.core.errors import NotFound
from huiqi.enterprise import repository as ent_repo
from huiqi.notify.models import (
    Channel,
    Notification,
    OutboxMessage,
    OutboxStatus,
)
from huiqi.notify.schemas import (
    NotifyError,
)
from huiqi.notify.subscriptions import active_channels, quiet_until, subscriptions_for

_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]

MAX_SUBJECT = 200
MAX_LINK = 500


def new_idempotency_key() -> str:
    """A fresh idempotency key; it stays with the outbox row across every retry."""
    return "hq-" + uuid.uuid4().hex


def _idempotency_keys(count: int) -> list[str]:
    """`count` fresh idempotency keys, like new_idempotency_key's, from one read of the OS's
    random source."""
    noise = os.urandom(16 * count).hex()
    return ["hq-" + noise[i : i + 32] for i in range(0, 32 * count, 32)]


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


def _en_subject(subject_en: str | None) -> str | None:
    """An English subject trimmed like the Chinese one; none when not given."""
    return subject_en.strip()[:MAX_SUBJECT] if subject_en and subject_en.strip() else None


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
    # the same message in English (the English view of the inbox shows it)
    subject_en: str | None = None
    body_en: str | None = None


def _sent_today_counts(
    session: Session, codes: Sequence[str], day: date
) -> dict[tuple[str, str], int]:
    """Single messages already queued per (enterprise, channel) on a Beijing day (held excluded)."""
    if not codes:
        return {}
    t = _OUTBOX
    # the cap index probed per code (bulk.rows_of_codes): a batch's codes are a sliver of the outbox
    queued = rows_of_codes(
        session,
        t,
        [t.c.credit_code, t.c.channel],
        codes,
        where=[
            t.c.local_day == day,
            t.c.kind == "single",
            t.c.status.not_in([OutboxStatus.held, OutboxStatus.cancelled]),
        ],
    ).subquery()
    rows = session.execute(
        select(queued.c.credit_code, queued.c.channel, func.count()).group_by(
            queued.c.credit_code, queued.c.channel
        )
    )
    return {(str(code), str(channel)): int(n) for code, channel, n in rows}


def _covers_json(covers: tuple[str, ...], encoded: dict[str, str]) -> JsonText:
    """A summary's covered rule ids as the JSON json.dumps writes, joined from the ids encoded
    once each (`encoded` keeps them across the batch)."""
    parts = []
    for rule_id in covers:
        text = encoded.get(rule_id)
        if text is None:
            text = encoded[rule_id] = json.dumps(rule_id)
        parts.append(text)
    return JsonText("[" + ", ".join(parts) + "]")


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
    encoded: dict[str, str] = {}
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
                "covers": _covers_json(spec.covers, encoded) if spec.covers is not None else None,
                "subject_en": _en_subject(spec.subject_en),
                "body_en": spec.body_en,
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
    # per enterprise once: its channels with their recipients, and when its quiet hours end
    pushes = {
        code: (sub, active_channels(sub), quiet_until(sub, now)) for code, sub in subs.items()
    }
    day = clock.beijing_day(now)
    counts = _sent_today_counts(session, [c for c, p in pushes.items() if p[1]], day)
    outbox: list[dict[str, Any]] = []
    for nid, r in created:
        found = pushes.get(str(r["credit_code"]))
        if found is None:
            continue
        sub, channels, wait = found
        if r["topic"] in (sub.muted_topics or []):
            continue
        for channel, recipient in channels:
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
                    "idempotency_key": "",
                    "local_day": day,
                    "next_attempt_at": wait or now,
                    "created_at": now,
                    "attempts": 0,
                    "history": JsonText("[]"),
                }
            )
    for row, fresh in zip(outbox, _idempotency_keys(len(outbox)), strict=True):
        row["idempotency_key"] = fresh
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
    subject_en: str | None = None,
    body_en: str | None = None,
) -> Notification | None:
    """Create one notification per dedupe key (None if it exists) and its outbox rows.

    The inbox always receives it. Push channels get one outbox row each when the enterprise
    gave an address and consent and did not mute the topic; inside quiet hours the row waits
    until they end; beyond the daily cap it is held for the next day's digest. Never commits.
    """
    spec = NoteSpec(
        credit_code,
        topic,
        subject,
        body,
        link,
        dedupe_key,
        rule_id,
        rule_version,
        deadline,
        subject_en=subject_en,
        body_en=body_en,
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
    subject_en: str | None = None,
    body_en: str | None = None,
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
                "subject_en": _en_subject(subject_en),
                "body_en": body_en,
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
    subject_en: str | None = None,
    body_en: str | None = None,
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
            subject_en=subject_en,
            body_en=body_en,
        )
        if note is not None:
            created.append(note)
    return created


def outbox_rows(
    session: Session,
    *,
    status: str | None = None,
    channel: str | None = None,
    credit_code: str | None = None,
    limit: int = 200,
    within: str | None = None,
) -> Sequence[OutboxMessage]:
    """Outbox rows for the officers' delivery view, newest first; `within` (a city or county
    officer's region prefix) keeps messages to enterprises registered there."""
    q = _in_region(select(OutboxMessage), within)
    if status:
        q = q.where(OutboxMessage.status == status)
    if channel:
        q = q.where(OutboxMessage.channel == channel)
    if credit_code:
        q = q.where(OutboxMessage.credit_code == credit_code)
    return session.scalars(q.order_by(OutboxMessage.id.desc()).limit(limit)).all()


def _in_region(q: Any, within: str | None) -> Any:
    """An outbox query limited to messages to enterprises of a region (None: unlimited)."""
    if not within:
        return q
    return q.where(OutboxMessage.credit_code.in_(ent_repo.codes_in_region(within)))


def status_counts(session: Session, *, within: str | None = None) -> dict[tuple[str, str], int]:
    """Outbox rows per (channel, status), of a region's enterprises with `within`."""
    q = select(OutboxMessage.channel, OutboxMessage.status, func.count())
    rows = session.execute(
        _in_region(q, within).group_by(OutboxMessage.channel, OutboxMessage.status)
    ).all()
    return {(ch, st): int(n) for ch, st, n in rows}


def requeue_dead(session: Session, outbox_id: int, *, by: User | None = None) -> OutboxMessage:
    """Give a dead-lettered row a fresh round of attempts (same idempotency key); an officer
    limited to a region (`by`) reaches only messages to enterprises registered there."""
    row = session.get(OutboxMessage, outbox_id)
    if row is not None and by is not None and by.region_prefix and row.credit_code:
        region = ent_repo.region_of(session, row.credit_code) or ""
        if not can_access(scope_of(by), region=region):
            raise NotFound("消息不存在", "no such message")
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
