"""Push funnel per policy (rule) and channel: eligible → notified → delivered → read → granted."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.notify.models import Notification, OutboxMessage, OutboxStatus, ReadReceipt

CHANNEL_ORDER = ("all", "inapp", "email", "webhook", "sms")
STAGES = ("eligible", "notified", "delivered", "read", "granted")
STAGE_LABELS = {
    "eligible": ("符合条件", "Eligible"),
    "notified": ("已推送", "Notified"),
    "delivered": ("已送达", "Delivered"),
    "read": ("已阅读", "Read"),
    "granted": ("已兑现", "Granted"),
}


@dataclass
class FunnelRow:
    """One policy over one channel ('all' = any channel, counted per enterprise notification)."""

    rule_id: str
    title: str
    channel: str
    eligible: int = 0
    notified: int = 0
    delivered: int = 0
    read: int = 0
    granted: int = 0

    def stage(self, name: str) -> int:
        """The count at a funnel stage."""
        return int(getattr(self, name))


def funnel(session: Session, rule_id: str | None = None) -> list[FunnelRow]:
    """Funnel rows per rule and channel, from matching results, notifications, outbox, receipts
    and grants. Granted on a channel counts grants of enterprises notified on that channel."""
    from huiqi.grants.models import Grant, GrantStatus
    from huiqi.matching.models import MatchResult, RuleVersion

    titles = {
        rid: title
        for rid, title in session.execute(
            select(RuleVersion.rule_id, RuleVersion.title_zh).where(
                RuleVersion.status == "published"
            )
        )
    }
    eligible = {
        rid: int(n)
        for rid, n in session.execute(
            select(MatchResult.rule_id, func.count())
            .where(MatchResult.result == "eligible")
            .group_by(MatchResult.rule_id)
        )
    }
    granted_codes: dict[str, set[str]] = defaultdict(set)
    for rid, code in session.execute(
        select(Grant.rule_id, Grant.credit_code).where(
            Grant.status.in_([GrantStatus.approved, GrantStatus.disbursed])
        )
    ):
        granted_codes[rid].add(code)

    notes = session.execute(
        select(
            Notification.id, Notification.rule_id, Notification.credit_code, Notification.read_at
        ).where(Notification.rule_id.is_not(None))
    ).all()
    by_note: dict[int, tuple[str, str, object]] = {
        nid: (str(rid), code, read_at) for nid, rid, code, read_at in notes
    }
    reads: dict[int, set[str]] = defaultdict(set)
    for nid, via in session.execute(select(ReadReceipt.notification_id, ReadReceipt.via)):
        reads[nid].add("inapp" if via == "inbox" else via)
    sends = session.execute(
        select(OutboxMessage.notification_id, OutboxMessage.channel, OutboxMessage.status).where(
            OutboxMessage.notification_id.is_not(None)
        )
    ).all()

    rows: dict[tuple[str, str], FunnelRow] = {}
    notified_codes: dict[tuple[str, str], set[str]] = defaultdict(set)

    def row(rid: str, channel: str) -> FunnelRow:
        key = (rid, channel)
        if key not in rows:
            rows[key] = FunnelRow(rid, titles.get(rid, rid), channel)
        return rows[key]

    for nid, (rid, code, read_at) in by_note.items():
        for channel in ("all", "inapp"):
            r = row(rid, channel)
            r.notified += 1
            r.delivered += 1  # the inbox holds it from the moment it is created
            notified_codes[(rid, channel)].add(code)
        if read_at is not None:
            row(rid, "all").read += 1
        if "inapp" in reads.get(nid, set()):
            row(rid, "inapp").read += 1
    for send_note, channel, status in sends:
        if send_note not in by_note:
            continue
        rid, code, _ = by_note[send_note]
        r = row(rid, channel)
        r.notified += 1
        notified_codes[(rid, channel)].add(code)
        if status in (OutboxStatus.sent, OutboxStatus.digested):
            r.delivered += 1
        if channel in reads.get(send_note, set()):
            r.read += 1
    for rid in set(eligible) | {rid for rid, _ in rows}:
        for channel in CHANNEL_ORDER:
            if (rid, channel) not in rows and channel not in ("all", "inapp"):
                continue
            r = row(rid, channel)
            r.eligible = eligible.get(rid, 0)
            r.granted = len(granted_codes[rid] & notified_codes[(rid, channel)])
    out = [r for r in rows.values() if rule_id is None or r.rule_id == rule_id]
    return sorted(out, key=lambda r: (r.rule_id, CHANNEL_ORDER.index(r.channel)))


def funnel_csv(rows: list[FunnelRow]) -> bytes:
    """The funnel as CSV (UTF-8 with BOM)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["rule_id", "政策", "渠道", *STAGES])
    for r in rows:
        writer.writerow([r.rule_id, r.title, r.channel, *(r.stage(s) for s in STAGES)])
    return buf.getvalue().encode("utf-8-sig")
