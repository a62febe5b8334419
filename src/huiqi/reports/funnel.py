"""Push funnel per policy (rule) and channel: eligible → notified → delivered → read → applied
or granted (financing applications started from the pushed policy for push and apply rules,
approved or disbursed grants for auto_grant rules)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.export import csv_bytes
from huiqi.enterprise import repository as ent_repo
from huiqi.finance.models import Application, Need
from huiqi.grants.models import Grant, GrantStatus
from huiqi.matching.models import RuleVersion
from huiqi.matching.service import codes_with_result, result_counts
from huiqi.notify.models import Notification, OutboxMessage, OutboxStatus, ReadReceipt, Topic

CHANNEL_ORDER = ("all", "inapp", "email", "webhook", "sms")
STAGES = ("eligible", "notified", "delivered", "read", "applied")
STAGE_LABELS = {
    "eligible": ("符合条件", "Eligible"),
    "notified": ("已推送", "Notified"),
    "delivered": ("已送达", "Delivered"),
    "read": ("已阅读", "Read"),
    "applied": ("已申请或已兑现", "Applied or granted"),
}


@dataclass
class FunnelRow:
    """One policy over one channel ('all' = any channel); every stage counts distinct enterprises."""

    rule_id: str
    title: str
    channel: str
    eligible: int = 0
    notified: int = 0
    delivered: int = 0
    read: int = 0
    applied: int = 0  # enterprises that applied (push/apply rules) or were granted (auto_grant)

    def stage(self, name: str) -> int:
        """The count at a funnel stage."""
        return int(getattr(self, name))


def eligible_counts(
    session: Session, rule_ids: Iterable[str] | None = None, *, within: str | None = None
) -> dict[str, int]:
    """Eligible enterprises per published rule (of the given rules); with `within` only those
    registered in that region (a city or county officer's prefix)."""
    counts = result_counts(session, rule_ids)
    if not within:
        return {rid: n["eligible"] for rid, n in counts.items()}
    region = set(session.scalars(ent_repo.codes_in_region(within)))
    return {rid: len(region.intersection(codes_with_result(session, rid))) for rid in counts}


def funnel(
    session: Session, rule_id: str | None = None, *, within: str | None = None
) -> list[FunnelRow]:
    """Funnel rows per rule and channel, from matching results, notifications, outbox, receipts,
    grants and financing applications. The last stage on a channel counts enterprises notified
    on that channel that then applied (push/apply rules: a financing application whose need
    carries the rule id) or were granted (auto_grant rules: approved or disbursed grants).
    With `within` (a city or county officer's region prefix) every stage counts only
    enterprises registered in that region."""
    titles: dict[str, str] = {}
    modes: dict[str, str] = {}
    for rid, title, mode in session.execute(
        select(RuleVersion.rule_id, RuleVersion.title_zh, RuleVersion.mode)
        .where(RuleVersion.status == "published")
        .order_by(RuleVersion.version)
    ):
        titles[rid], modes[rid] = title, mode
    region = set(session.scalars(ent_repo.codes_in_region(within))) if within else None
    eligible = eligible_counts(session, within=within)
    granted_codes: dict[str, set[str]] = defaultdict(set)
    for rid, code in session.execute(
        select(Grant.rule_id, Grant.credit_code).where(
            Grant.status.in_([GrantStatus.approved, GrantStatus.disbursed])
        )
    ):
        granted_codes[rid].add(code)
    applied_codes: dict[str, set[str]] = defaultdict(set)
    for source_rule, code in session.execute(
        select(Need.source_rule_id, Application.credit_code)
        .join(Need, Need.id == Application.need_id)
        .where(Need.source_rule_id.is_not(None))
        .distinct()
    ):
        applied_codes[str(source_rule)].add(code)

    def acted(rid: str) -> set[str]:
        return granted_codes[rid] if modes.get(rid) == "auto_grant" else applied_codes[rid]

    # Data requests go to enterprises whose fit is unknown: they are not part of this funnel,
    # which follows eligible enterprises. Every stage counts distinct enterprises, so a rule
    # re-published as a new version does not count its enterprises twice.
    told: list[tuple[int, str, str, Any]] = []
    for nid, single, owner, read_at, covers in session.execute(
        select(
            Notification.id,
            Notification.rule_id,
            Notification.credit_code,
            Notification.read_at,
            Notification.covers,
        ).where(
            Notification.rule_id.is_not(None) | Notification.covers.is_not(None),
            Notification.topic != Topic.data_request,
            Notification.credit_code.is_not(None),
        )
    ):
        if region is not None and owner not in region:
            continue
        # a summary of many results counts for every rule it announced as a fit
        for rule in [single] if single is not None else list(covers or []):
            told.append((int(nid), str(rule), str(owner), read_at))
    by_note: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for nid, rule, code, _ in told:
        by_note[nid].append((rule, code))
    reads: dict[int, set[str]] = defaultdict(set)
    for nid, via in session.execute(select(ReadReceipt.notification_id, ReadReceipt.via)):
        reads[nid].add("inapp" if via == "inbox" else via)
    sends = session.execute(
        select(OutboxMessage.notification_id, OutboxMessage.channel, OutboxMessage.status).where(
            OutboxMessage.notification_id.is_not(None)
        )
    ).all()

    stage_codes: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for nid, rule, code_or_none, read_at in told:
        code = str(code_or_none)
        for channel in ("all", "inapp"):
            stage_codes[(str(rule), channel, "notified")].add(code)
            # The inbox holds a notification from the moment it is created.
            stage_codes[(str(rule), channel, "delivered")].add(code)
        if read_at is not None:
            stage_codes[(str(rule), "all", "read")].add(code)
        if "inapp" in reads.get(nid, set()):
            stage_codes[(str(rule), "inapp", "read")].add(code)
    for send_note, channel, status in sends:
        for rid, code in by_note.get(int(send_note or 0), []):
            stage_codes[(rid, channel, "notified")].add(code)
            if status in (OutboxStatus.sent, OutboxStatus.digested):
                stage_codes[(rid, channel, "delivered")].add(code)
            if channel in reads.get(int(send_note or 0), set()):
                stage_codes[(rid, channel, "read")].add(code)

    rows: dict[tuple[str, str], FunnelRow] = {}
    channels_of: dict[str, set[str]] = defaultdict(set)
    for rid, channel, _stage in stage_codes:
        channels_of[rid].add(channel)
    for rid in set(eligible) | set(channels_of):
        for channel in CHANNEL_ORDER:
            if channel not in ("all", "inapp") and channel not in channels_of[rid]:
                continue
            notified = stage_codes[(rid, channel, "notified")]
            rows[(rid, channel)] = FunnelRow(
                rid,
                titles.get(rid, rid),
                channel,
                eligible=eligible.get(rid, 0),
                notified=len(notified),
                delivered=len(stage_codes[(rid, channel, "delivered")]),
                read=len(stage_codes[(rid, channel, "read")]),
                applied=len(acted(rid) & notified),
            )
    out = [r for r in rows.values() if rule_id is None or r.rule_id == rule_id]
    return sorted(out, key=lambda r: (r.rule_id, CHANNEL_ORDER.index(r.channel)))


def funnel_csv(rows: list[FunnelRow]) -> bytes:
    """The funnel as CSV (UTF-8 with BOM)."""
    return csv_bytes(
        ["rule_id", "政策", "渠道", *STAGES],
        ([r.rule_id, r.title, r.channel, *(r.stage(s) for s in STAGES)] for r in rows),
    )
