"""The outbox dispatcher: claims due rows with a lease, sends them, records each outcome.

Crash safety: a row is claimed (status ``sending``, ``claimed_until`` = now + lease) and the
claim is committed before anything is sent; the outcome is committed after. If the process is
killed in between, the row stays ``sending`` until its lease runs out and is then claimed again
and resent with the same idempotency key, so only rows that were in flight can be sent twice,
and receivers can drop the duplicate. Nothing is lost: no row leaves ``sending`` without an
outcome. Each channel runs in its own thread with its own rate limit, so a slow or failing
channel never holds up the others.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from huiqi.accounts.models import User
from huiqi.core import clock
from huiqi.core.config import Settings
from huiqi.core.db import utcnow
from huiqi.notify import links, service
from huiqi.notify.channels import (
    SMS_SIGNATURE,
    DeliveryError,
    EmailSender,
    LogSmsGateway,
    Outbound,
    Sender,
    SmsSender,
    WebhookSender,
    send_all,
)
from huiqi.notify.models import (
    PUSH_CHANNELS,
    Notification,
    OutboxMessage,
    OutboxStatus,
    Subscription,
)

log = logging.getLogger("huiqi.notify")
MAX_BACKOFF = timedelta(hours=6)
# Sends a minute per channel unless configured, set below what typical providers grant an
# account (README, HUIQI_NOTIFY_CHANNEL_RATES). SMS: Tencent Cloud's SendSms allows 3,000 requests
# a second and Alibaba Cloud's 5,000, so 300/s leaves room for the account's other users and still
# sends a 400,000-SMS push in 22 minutes. E-mail: cloud relays take about 20 a second over SMTP
# (Tencent Cloud SES 20/s, Alibaba Cloud DirectMail 5,000 in 180 s) and refuse more, some with a
# permanent 554; a relay of one's own (Postfix) takes thousands, configured as such. Webhooks go
# to the enterprises' own servers, each receiving a share.
DEFAULT_CHANNEL_RATES = {"sms": 18_000, "email": 1_200, "webhook": 12_000}
FALLBACK_RATE = 600

# What rendering a batch reads: the outbox row and its notification, as plain Core rows.
BATCH_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.claimed_by,
    OutboxMessage.status,
    OutboxMessage.kind,
    OutboxMessage.attempts,
    OutboxMessage.channel,
    OutboxMessage.credit_code,
    OutboxMessage.recipient_user_id,
    OutboxMessage.recipient,
    OutboxMessage.idempotency_key,
    OutboxMessage.notification_id,
    OutboxMessage.history,
    Notification.credit_code.label("note_credit_code"),
    Notification.topic,
    Notification.subject,
    Notification.body,
    Notification.deadline,
    Notification.rule_id,
    Notification.rule_version,
    Notification.created_at.label("note_created_at"),
)
# The subscription columns consent is decided on (see subscriptions.active_channels).
CONSENT_COLUMNS = (
    Subscription.credit_code,
    Subscription.email,
    Subscription.phone,
    Subscription.webhook_url,
    Subscription.webhook_secret,
    Subscription.email_consent_at,
    Subscription.sms_consent_at,
    Subscription.webhook_consent_at,
)
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_outbox = OUTBOX.c
# One row's outcome, executed many times per batch; only a row still claimed by us is changed.
STORE_OUTCOME = (
    update(OUTBOX)
    .where(
        _outbox.id == bindparam("b_id"),
        _outbox.claimed_by == bindparam("b_claim"),
        _outbox.status == OutboxStatus.sending.value,
    )
    .values(
        status=bindparam("b_status"),
        claimed_until=None,
        last_error=bindparam("b_error"),
        sent_at=bindparam("b_sent_at", type_=_outbox.sent_at.type),
        next_attempt_at=func.coalesce(
            bindparam("b_retry_at", type_=_outbox.next_attempt_at.type), _outbox.next_attempt_at
        ),
        history=bindparam("b_history", type_=_outbox.history.type),
        attempts=bindparam("b_attempts"),
    )
)
DIGEST_FINAL = (OutboxStatus.sent, OutboxStatus.dead, OutboxStatus.cancelled)


def channel_rate(settings: Settings, channel: str) -> int:
    """Sends a minute allowed on a channel (see DEFAULT_CHANNEL_RATES)."""
    if channel in settings.notify_channel_rates:
        return settings.notify_channel_rates[channel]
    if settings.notify_rate_per_minute is not None:
        return settings.notify_rate_per_minute
    return DEFAULT_CHANNEL_RATES.get(channel, FALLBACK_RATE)


# Where a channel's claims have got to within a pass: the last pending row picked.
Cursor = tuple[datetime, int]


def due_rows(
    channel: str, status: OutboxStatus, now: datetime, limit: int, after: Cursor | None = None
) -> Select[int, datetime]:
    """Ids and due times of a channel's due rows of one status (sending: lease expired), in
    claim order; `after` starts past the rows a pass has already picked.

    Each status is asked for by its own query so that both walk the (channel, status,
    next_attempt_at, id) index in order and stop at `limit`: one query with the two conditions
    OR-ed sorted every due row of the outbox on each claim, quadratic over a 400,000-row push.
    `after` matters on PostgreSQL: rows claimed earlier leave index entries behind until VACUUM,
    which each claim of a 400,000-row push would otherwise step over again from the start.
    """
    due = (
        OutboxMessage.claimed_until < now
        if status == OutboxStatus.sending
        else OutboxMessage.next_attempt_at <= now
    )
    query = select(OutboxMessage.id, OutboxMessage.next_attempt_at).where(
        OutboxMessage.channel == channel, OutboxMessage.status == status, due
    )
    if after is not None:
        query = query.where(
            tuple_(OutboxMessage.next_attempt_at, OutboxMessage.id)
            > tuple_(bindparam("after_at", after[0], type_=_outbox.next_attempt_at.type), after[1])
        )
    return query.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)


class RateLimiter:
    """A token bucket: at most `per_minute` sends a minute, in bursts of up to that many."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Start full."""
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, want: int) -> int:
        """Take up to `want` tokens now; returns how many were granted (maybe 0)."""
        with self.lock:
            self._refill()
            granted = min(want, int(self.tokens))
            self.tokens -= granted
            return granted

    def wait(self) -> float:
        """Seconds until one token is available."""
        with self.lock:
            self._refill()
            return max(0.0, (1 - self.tokens) / self.rate)


@dataclass
class RunStats:
    """What one dispatcher pass did, per channel and outcome."""

    sent: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    digests: int = 0

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, bucket: dict[str, int], channel: str) -> None:
        """Count one outcome (a channel's sending and rendering threads both count)."""
        with self._lock:
            bucket[channel] = bucket.get(channel, 0) + 1

    @property
    def total(self) -> int:
        """Rows finished in this pass."""
        return sum(sum(b.values()) for b in (self.sent, self.retried, self.dead, self.cancelled))


class Prepared(NamedTuple):
    """A claimed row (a Core row of BATCH_COLUMNS) and its rendered message."""

    row: Any
    message: Outbound


def default_senders(settings: Settings) -> dict[str, Sender]:
    """E-mail, webhook and the log-only SMS gateway configured from the settings."""
    return {
        "email": EmailSender.from_settings(settings),
        "webhook": WebhookSender.from_settings(settings),
        "sms": SmsSender(LogSmsGateway()),
    }


def _absolute(base_url: str, link: str) -> str:
    """Links in pushed messages must work outside the site."""
    return link if link.startswith(("http://", "https://")) else base_url.rstrip("/") + link


@dataclass(frozen=True)
class Templates:
    """The fixed parts of pushed messages, built once per dispatcher rather than per message."""

    open_prefix: str
    unsubscribe_prefix: str
    inbox_url: str
    account_url: str
    staff_footer: str
    unsubscribe_line: str = "不想再收到此类消息?退订:"
    signature: str = "—— 惠企政策服务平台(本邮件由系统自动发送)"

    @classmethod
    def for_site(cls, base_url: str) -> Templates:
        """The fixed text of messages from the site at `base_url` (Chinese, the push language)."""
        # A work message to a staff account stops once the account's address is removed, which
        # the platform's administrator does (the account page names who to ask).
        account = _absolute(base_url, "/account")
        return cls(
            open_prefix=_absolute(base_url, "/notify/open/"),
            unsubscribe_prefix=_absolute(base_url, "/notify/unsubscribe/"),
            inbox_url=_absolute(base_url, "/notify/inbox"),
            account_url=account,
            staff_footer=(
                "此邮件发送至您平台账户登记的邮箱;"
                f"如不再接收,请联系平台管理员删除账户邮箱:{account}"
            ),
        )


def push_subject(subject: str) -> str:
    """A pushed message's subject: led by the signature 【惠企】 exactly once."""
    return SMS_SIGNATURE + subject.strip().removeprefix(SMS_SIGNATURE).lstrip()


def render_single(
    row: Any, settings: Settings, templates: Templates | None = None
) -> tuple[str, str, str, str, dict[str, Any]]:
    """Subject, text, link, unsubscribe URL and webhook payload of one notification.

    `row` is a batch row (see BATCH_COLUMNS): the outbox row's columns and its notification's.
    """
    tpl = templates or Templates.for_site(settings.base_url)
    secret = settings.secret_key
    link = tpl.open_prefix + links.open_token(secret, row.notification_id, row.channel)
    lines = [row.body.strip(), ""]
    if row.deadline is not None:
        lines.append(f"截止日期:{row.deadline:%Y年%m月%d日}")
    lines += [f"查看详情:{link}", ""]
    if row.credit_code is None:
        unsub = tpl.account_url
        lines.append(tpl.staff_footer)
    else:
        unsub = tpl.unsubscribe_prefix + links.unsubscribe_token(
            secret, row.credit_code, row.channel
        )
        lines.append(tpl.unsubscribe_line + unsub)
    lines.append(tpl.signature)
    payload = {
        "event": "notification",
        "idempotency_key": row.idempotency_key,
        "notification_id": row.notification_id,
        "credit_code": row.note_credit_code,
        "topic": row.topic,
        "subject": row.subject,
        "body": row.body,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "rule_id": row.rule_id,
        "rule_version": row.rule_version,
        "link": link,
        "created_at": clock.aware(row.note_created_at).isoformat(),
        "unsubscribe_url": unsub,
    }
    return push_subject(row.subject), "\n".join(lines), link, unsub, payload


def render_digest(
    session: Session, row: Any, settings: Settings
) -> tuple[str, str, str, str, dict[str, Any]]:
    """One message listing every notification held for this digest (`row`: a batch row)."""
    notes = session.scalars(
        select(Notification)
        .join(OutboxMessage, OutboxMessage.notification_id == Notification.id)
        .where(OutboxMessage.digest_id == row.id)
        .order_by(Notification.id)
    ).all()
    link = _absolute(settings.base_url, "/notify/inbox")
    # only an enterprise's rows are held for digests
    code = str(row.credit_code)
    unsub = _absolute(
        settings.base_url,
        f"/notify/unsubscribe/{links.unsubscribe_token(settings.secret_key, code, row.channel)}",
    )
    lines = [f"您有 {len(notes)} 条政策消息因超过每日推送上限而汇总发送:", ""]
    for i, note in enumerate(notes, 1):
        deadline = f"(截止 {note.deadline:%Y-%m-%d})" if note.deadline else ""
        lines.append(f"{i}. {note.subject}{deadline}")
    lines += ["", f"全部详情请登录站内消息查看:{link}", "", f"退订:{unsub}", "—— 惠企政策服务平台"]
    payload = {
        "event": "digest",
        "idempotency_key": row.idempotency_key,
        "credit_code": row.credit_code,
        "items": [
            {
                "notification_id": n.id,
                "topic": n.topic,
                "subject": n.subject,
                "deadline": n.deadline.isoformat() if n.deadline else None,
                "rule_id": n.rule_id,
            }
            for n in notes
        ],
        "link": link,
        "unsubscribe_url": unsub,
    }
    return push_subject(f"政策消息汇总({len(notes)} 条)"), "\n".join(lines), link, unsub, payload


class Dispatcher:
    """Sends due outbox rows over their channels."""

    def __init__(
        self,
        settings: Settings,
        *,
        senders: dict[str, Sender] | None = None,
        factory: sessionmaker[Session] | None = None,
        parallel: bool = True,
        batch: int | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Configure channels, the session factory and the per-channel rate limits."""
        from huiqi.core.db import session_factory

        self.settings = settings
        self.senders = senders if senders is not None else default_senders(settings)
        self.factory = factory or session_factory()
        self.parallel = parallel
        self.batch = batch or settings.notify_batch_size
        self.clock = clock
        self.templates = Templates.for_site(settings.base_url)
        self.worker = f"w-{uuid.uuid4().hex[:10]}"
        # SQLite refuses to turn a read transaction into a write one when another connection
        # wrote meanwhile (SQLITE_BUSY_SNAPSHOT); the channel threads therefore take turns for
        # their short transactions there. Sends happen outside, so channels still overlap.
        bind = self.factory.kw.get("bind")
        is_sqlite = bind is not None and bind.dialect.name == "sqlite"
        self._db_lock: AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite else contextlib.nullcontext()
        )
        self.limits = {ch: RateLimiter(channel_rate(settings, ch)) for ch in self.senders}
        self._cursors: dict[str, Cursor] = {}  # per channel, for the pass under way

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Session]:
        """A short transaction of its own, committed on success."""
        with self._db_lock, self.factory() as session, session.begin():
            yield session

    # -- claiming -------------------------------------------------------------------------

    def _claimable(self, channel: str, now: datetime) -> Any:
        """Due rows of a channel: pending and due, or in flight with an expired lease."""
        return and_(
            OutboxMessage.channel == channel,
            or_(
                and_(
                    OutboxMessage.status == OutboxStatus.pending,
                    OutboxMessage.next_attempt_at <= now,
                ),
                and_(
                    OutboxMessage.status == OutboxStatus.sending,
                    OutboxMessage.claimed_until < now,
                ),
            ),
        )

    def claim(self, channel: str, limit: int) -> list[int]:
        """Claim up to `limit` due rows of a channel for this worker; committed at once.

        Rows whose lease ran out come first, then pending ones in due order (see due_rows),
        starting past the last one this pass picked: within a pass a row left behind can only
        be one another worker holds, and the next pass starts from the beginning again.
        """
        now = self.clock()
        token = f"{self.worker}:{uuid.uuid4().hex[:8]}"
        with self._tx() as session:
            locking = session.get_bind().dialect.name == "postgresql"
            ids: list[int] = []
            for status in (OutboxStatus.sending, OutboxStatus.pending):
                if len(ids) >= limit:
                    break
                after = self._cursors.get(channel) if status == OutboxStatus.pending else None
                pick = due_rows(channel, status, now, limit - len(ids), after)
                if locking:
                    pick = pick.with_for_update(skip_locked=True)
                rows = session.execute(pick).all()
                ids += [row.id for row in rows]
                if rows and status == OutboxStatus.pending:
                    self._cursors[channel] = (rows[-1].next_attempt_at, rows[-1].id)
            if not ids:
                return []
            # the claim condition is checked again by the UPDATE, so a row another worker took
            # meanwhile is skipped
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), self._claimable(channel, now))
                .values(
                    status=OutboxStatus.sending,
                    claimed_until=now + timedelta(seconds=self.settings.notify_lease_seconds),
                    claimed_by=token,
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            return list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == token)
                    .order_by(OutboxMessage.id)
                )
            )

    # -- one batch ------------------------------------------------------------------------

    def _prepare(self, ids: list[int], stats: RunStats) -> list[Prepared]:
        """Render a batch of claimed rows in one transaction; cancel those whose consent went.

        Read with plain Core queries (no ORM objects on this path): the outbox rows joined to
        their notifications, the enterprises' consent, and staff addresses when any row has one.
        """
        with self._tx() as session:
            rows = session.execute(
                select(*BATCH_COLUMNS)
                .select_from(
                    OUTBOX.outerjoin(
                        Notification.__table__, OutboxMessage.notification_id == Notification.id
                    )
                )
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.id)
            ).all()
            codes = {r.credit_code for r in rows if r.credit_code is not None}
            subs = {
                s.credit_code: s
                for s in session.execute(
                    select(*CONSENT_COLUMNS).where(Subscription.credit_code.in_(codes))
                )
            }
            user_ids = {r.recipient_user_id for r in rows if r.credit_code is None}
            users = (
                {
                    u.id: u
                    for u in session.execute(
                        select(User.id, User.is_active, User.email).where(User.id.in_(user_ids))
                    )
                }
                if user_ids
                else {}
            )
            ready: list[Prepared] = []
            finished: list[dict[str, Any]] = []
            now = self.clock()
            for row in rows:
                if row.status != OutboxStatus.sending or row.claimed_by is None:
                    continue
                reason = self._refusal(row, subs, users)
                if reason is not None:
                    status, error = reason
                    finished.append(self._outcome(row, status, error, now))
                    stats.add(
                        stats.dead if status == OutboxStatus.dead else stats.cancelled, row.channel
                    )
                    continue
                ready.append(Prepared(row, self._message(session, row, subs.get(row.credit_code))))
            self._store(session, finished, now)
            return ready

    def _refusal(
        self, row: Any, subs: dict[str, Any], users: dict[int, Any]
    ) -> tuple[str, str] | None:
        """Why a claimed row must not be sent (its final status and reason), or None."""
        if row.credit_code is None:
            # addressed to a user: it goes only to the address still on an active account
            user = users.get(row.recipient_user_id) if row.recipient_user_id else None
            if user is None or not user.is_active or (user.email or "").strip() != row.recipient:
                return OutboxStatus.cancelled, "recipient address removed"
        else:
            sub = subs.get(row.credit_code)
            # a Core row of the subscription's consent columns stands in for the ORM object
            if not service.channel_consented(cast(Subscription | None, sub), row.channel) or (
                row.channel == "webhook" and sub is not None and sub.webhook_url != row.recipient
            ):
                return OutboxStatus.cancelled, "consent withdrawn"
        if row.attempts > self.settings.notify_max_attempts:
            return OutboxStatus.dead, "attempts exhausted (lease expiries)"
        if row.kind != "digest" and row.subject is None:
            return OutboxStatus.cancelled, "notification removed"
        return None

    def _message(self, session: Session, row: Any, sub: Any) -> Outbound:
        """The message of one claimed row that may be sent."""
        if row.kind == "digest":
            subject, text, link, unsub, payload = render_digest(session, row, self.settings)
        else:
            subject, text, link, unsub, payload = render_single(row, self.settings, self.templates)
        return Outbound(
            idempotency_key=row.idempotency_key,
            channel=row.channel,
            recipient=row.recipient,
            credit_code=row.credit_code or "",
            subject=subject,
            text=text,
            link=link,
            unsubscribe_url=unsub,
            payload=payload,
            webhook_secret=sub.webhook_secret if sub is not None else None,
        )

    @staticmethod
    def _outcome(
        row: Any,
        status: str,
        error: str | None,
        now: datetime,
        retry_at: datetime | None = None,
        *,
        counted: bool = True,
    ) -> dict[str, Any]:
        """The parameters of one row's UPDATE in _store (its history gains the attempt).

        An attempt not `counted` (the channel's relay was down) gives back the one its claim took.
        """
        attempts = row.attempts if counted else row.attempts - 1
        entry = {"at": now.isoformat(), "attempt": attempts, "status": status, "error": error}
        return {
            "b_attempts": attempts,
            "b_id": row.id,
            "b_claim": row.claimed_by,
            "b_status": status,
            "b_error": error,
            "b_sent_at": now if status == OutboxStatus.sent else None,
            "b_retry_at": retry_at,
            "b_history": [*(row.history or []), entry],
            "kind": row.kind,
        }

    def _store(self, session: Session, outcomes: list[dict[str, Any]], now: datetime) -> int:
        """Write outcomes with one executemany; returns how many rows were still ours.

        Each UPDATE is conditional on the claim: a row whose lease ran out and that another
        worker took meanwhile is left to that worker (its outcome counts, not ours).
        """
        if not outcomes:
            return 0
        table = OUTBOX
        result = session.connection().execute(STORE_OUTCOME, outcomes)
        for outcome in outcomes:
            if outcome["kind"] == "digest" and outcome["b_status"] in DIGEST_FINAL:
                sent = outcome["b_status"] == OutboxStatus.sent
                session.execute(
                    update(table)
                    .where(table.c.digest_id == outcome["b_id"])
                    .values(
                        status=OutboxStatus.digested if sent else outcome["b_status"],
                        sent_at=now if sent else None,
                        last_error=outcome["b_error"],
                    )
                )
        return int(result.rowcount)

    def _record(
        self, prepared: list[Prepared], errors: list[DeliveryError | None], stats: RunStats
    ) -> None:
        """Store the outcomes of a batch of send attempts in one transaction.

        The rows' history comes from the rendering read: a row still claimed by us has not
        changed since. Failures read the enterprises' quiet hours for the retry time.
        """
        if not prepared:
            return
        now = self.clock()
        with self._tx() as session:
            mine = {
                r.id
                for r in session.execute(
                    select(OutboxMessage.id).where(
                        OutboxMessage.id.in_([p.row.id for p in prepared]),
                        OutboxMessage.status == OutboxStatus.sending,
                        OutboxMessage.claimed_by.in_({p.row.claimed_by for p in prepared}),
                    )
                )
            }
            failed = [p.row.credit_code for p, e in zip(prepared, errors, strict=True) if e]
            quiet = (
                {
                    s.credit_code: s
                    for s in session.scalars(
                        select(Subscription).where(Subscription.credit_code.in_(set(failed)))
                    )
                }
                if failed
                else {}
            )
            outcomes: list[dict[str, Any]] = []
            for item, error in zip(prepared, errors, strict=True):
                row = item.row
                if row.id not in mine:
                    # our lease ran out and another worker took the row: its outcome counts
                    continue
                if error is None:
                    outcomes.append(self._outcome(row, OutboxStatus.sent, None, now))
                    stats.add(stats.sent, row.channel)
                elif error.unreachable:
                    # the relay is down, not the message at fault: however long the outage, the
                    # row keeps its attempts and waits one backoff step (the channel pauses)
                    retry_at = now + timedelta(seconds=self.settings.notify_backoff_seconds)
                    retry_at = service.quiet_until(quiet.get(row.credit_code), retry_at) or retry_at
                    outcomes.append(
                        self._outcome(
                            row, OutboxStatus.pending, str(error), now, retry_at, counted=False
                        )
                    )
                    stats.add(stats.retried, row.channel)
                elif error.permanent or row.attempts >= self.settings.notify_max_attempts:
                    outcomes.append(self._outcome(row, OutboxStatus.dead, str(error), now))
                    stats.add(stats.dead, row.channel)
                    log.warning("outbox %s dead-lettered: %s", row.id, error)
                else:
                    delay = min(
                        timedelta(
                            seconds=self.settings.notify_backoff_seconds * 2 ** (row.attempts - 1)
                        ),
                        MAX_BACKOFF,
                    )
                    retry_at = now + delay
                    retry_at = service.quiet_until(quiet.get(row.credit_code), retry_at) or retry_at
                    outcomes.append(
                        self._outcome(row, OutboxStatus.pending, str(error), now, retry_at)
                    )
                    stats.add(stats.retried, row.channel)
            self._store(session, outcomes, now)

    def deliver_batch(self, ids: list[int], stats: RunStats) -> bool:
        """Send a batch of claimed rows of one channel and record what happened.

        Three short transactions whatever the batch size: the claim (already committed), the
        rendering, the outcomes. The sends in between run concurrently (see send_all). True
        when the channel's relay could not be reached.
        """
        return self.send_and_record(self._prepare(ids, stats), stats)

    def send_and_record(self, prepared: list[Prepared], stats: RunStats) -> bool:
        """Send rendered rows of one channel, then record every outcome in one transaction.

        True when the channel's relay could not be reached (the channel pauses for this pass).
        """
        if not prepared:
            return False
        channel = prepared[0].message.channel
        errors = send_all(self.senders[channel], [p.message for p in prepared])
        self._record(prepared, errors, stats)
        return any(e is not None and e.unreachable for e in errors)

    # -- passes ---------------------------------------------------------------------------

    def _claims(self, channel: str, stop: threading.Event | None) -> Iterator[list[int]]:
        """Claimed batches of a channel within its rate limit, until none is due."""
        limiter = self.limits[channel]
        while stop is None or not stop.is_set():
            granted = limiter.take(self.batch)
            if granted == 0:
                time.sleep(min(limiter.wait(), 1.0))
                continue
            ids = self.claim(channel, granted)
            if not ids:
                return
            yield ids

    def run_channel(self, channel: str, stats: RunStats, stop: threading.Event | None) -> None:
        """Send every due row of one channel in batches, respecting its rate limit.

        In parallel mode the next batch is claimed and rendered while one is on the wire, so
        the sends' waits on the network and the database work overlap. Only the batch being
        sent is in flight in the crash-safety sense: the next one is claimed but not yet sent,
        and a crash leaves it to be sent once, after its lease.

        A channel whose relay cannot be reached stops claiming for the pass: one batch a pass
        probes it, the rest of the queue stays untouched until it is back.
        """
        self._cursors.pop(channel, None)  # a pass starts at the first due row
        if not self.parallel:  # one thread does everything, a batch at a time
            for ids in self._claims(channel, stop):
                if self.deliver_batch(ids, stats):
                    return
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"send-{channel}") as sender:
            sending: Future[bool] | None = None
            try:
                for ids in self._claims(channel, stop):
                    prepared = self._prepare(ids, stats)
                    down = sending is not None and sending.result()
                    # a batch already claimed is still sent (it fails fast if the relay is down)
                    sending = sender.submit(self.send_and_record, prepared, stats)
                    if down:
                        break
            finally:
                if sending is not None:
                    sending.result()

    def run_once(self, stop: threading.Event | None = None) -> RunStats:
        """One pass: bundle due digests, then send everything due on every channel."""
        stats = RunStats()
        with self._tx() as session:
            stats.digests = len(service.build_digests(session, self.clock()))
        channels = [ch.value for ch in PUSH_CHANNELS if ch.value in self.senders]
        if self.parallel:
            with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="notify") as pool:
                for future in [pool.submit(self.run_channel, ch, stats, stop) for ch in channels]:
                    future.result()
        else:
            for ch in channels:
                self.run_channel(ch, stats, stop)
        return stats

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Keep passing until `stop` is set, sleeping HUIQI_NOTIFY_POLL_SECONDS between passes."""
        stop = stop or threading.Event()
        log.info("notification dispatcher %s started", self.worker)
        while not stop.is_set():
            try:
                stats = self.run_once(stop)
                if stats.total or stats.digests:
                    log.info(
                        "dispatched: sent=%s retried=%s dead=%s cancelled=%s digests=%s",
                        stats.sent,
                        stats.retried,
                        stats.dead,
                        stats.cancelled,
                        stats.digests,
                    )
            except Exception:  # the database may be briefly unreachable: keep the loop alive
                log.exception("dispatcher pass failed; retrying")
            stop.wait(self.settings.notify_poll_seconds)


def run_forever(settings: Settings | None = None, stop: threading.Event | None = None) -> None:
    """Run the dispatcher with the process settings until `stop` is set (or forever)."""
    from huiqi.core.config import get_settings

    Dispatcher(settings or get_settings()).run_forever(stop)


def start_background(settings: Settings | None = None) -> tuple[threading.Thread, threading.Event]:
    """Start the dispatcher in a daemon thread beside the web server; set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(settings, stop), name="huiqi-notify", daemon=True
    )
    thread.start()
    return thread, stop
