"""What matching results and grant decisions tell enterprises (event handlers)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import String, cast, literal, select, update
from sqlalchemy.orm import Session

from huiqi.core.bulk import chunks, one_of
from huiqi.core.money import format_fen, format_fen_en
from huiqi.enterprise.catalogue import label_of, name_fields
from huiqi.events import RESULTS, ChangeSet, GrantDecided, ResultChange, ResultsChanged
from huiqi.notify.models import (
    Notification,
    Topic,
)
from huiqi.notify.outbox import NoteSpec, enqueue, queue_notes

INBOX_LINK = "/notify/inbox"


def _labels(names: Iterable[str]) -> str:
    """Registry field names as the enterprise's forms label them (营业收入, not revenue)."""
    return "、".join(label_of(n) for n in names)


def _labels_en(names: Iterable[str]) -> str:
    """Registry field names as the English forms label them."""
    return ", ".join(label_of(n, "en") for n in names)


def result_dedupe_key(change: ResultChange) -> str:
    """Dedupe key of a matching result: enterprise, rule, rule version, result and the stored
    state it replaces (`since`), so a change is told once (a run resumed after a crash finds
    the key) and every later change is told too: a 免申即享 amount changed under the same
    rule version, a result that ends and comes back."""
    key = f"match:{change.credit_code}:{change.rule_id}:{change.rule_version}:{change.result}"
    return f"{key}@{change.since}" if change.since else key


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
        lines.extend(f"  · {name_fields(reason)}" for reason in change.reasons)
    if change.missing:
        lines.append("缺少的数据:" + _labels(change.missing))
    if change.result == "eligible" and change.mode == "auto_grant":
        if change.amount_fen is not None:
            lines.append(f"预计金额:{format_fen(change.amount_fen)}(以审核结果为准)")
        lines.append("怎么办:无需提交申请,主管部门审核通过后直接兑现,届时将另行通知。")
    elif change.result == "eligible":
        lines.append("怎么办:请点击链接查看申报要求和所需材料,按期向主管部门申报。")
    else:
        lines.append("怎么办:请点击链接补充上述数据,系统将自动重新判断。")
    return topic, subject, "\n".join(lines)


def compose_result_message_en(change: ResultChange) -> tuple[str, str]:
    """English subject and body of the same matching result (policy titles stay as published)."""
    title = change.rule_title or change.rule_id
    lines: list[str] = []
    if change.enterprise_name:
        lines.append(f"{change.enterprise_name}:")
    if change.result == "eligible":
        if change.mode == "auto_grant":
            subject = f"You qualify for “{title}”: granted without applying"
            lines.append(f"Your enterprise meets the conditions of the policy “{title}”.")
        else:
            subject = f"You may qualify for “{title}”"
            lines.append(f"Your enterprise may meet the conditions of the policy “{title}”.")
    else:
        subject = f"Supply data to find out whether you qualify for “{title}”"
        lines.append(f"Some data is missing to decide whether you qualify for “{title}”.")
    if change.legal_basis:
        lines.append(f"Legal basis: {change.legal_basis}")
    if change.reasons:
        lines.append("Why you qualify:" if change.result == "eligible" else "Conditions checked:")
        lines.extend(f"  · {name_fields(reason, 'en')}" for reason in change.reasons)
    if change.missing:
        lines.append("Missing data: " + _labels_en(change.missing))
    if change.result == "eligible" and change.mode == "auto_grant":
        if change.amount_fen is not None:
            lines.append(f"Expected amount: {format_fen_en(change.amount_fen)} (subject to review)")
        lines.append(
            "What to do: nothing to submit; the benefit is paid once the department approves it,"
            " and you will be told."
        )
    elif change.result == "eligible":
        lines.append(
            "What to do: follow the link for the requirements and documents, and apply to the"
            " department in time."
        )
    else:
        lines.append("What to do: follow the link to supply the data; the check then runs again.")
    return subject, "\n".join(lines)


def result_notes(changes: Iterable[ResultChange]) -> list[NoteSpec]:
    """The notifications a batch of result changes calls for: eligible results, and unknown
    results with the data that is missing; the rest (ineligible) tell nothing."""
    specs: list[NoteSpec] = []
    for change in changes:
        if not (change.result == "eligible" or (change.result == "unknown" and change.missing)):
            continue
        topic, subject, body = compose_result_message(change)
        subject_en, body_en = compose_result_message_en(change)
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
                subject_en=subject_en,
                body_en=body_en,
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
    good = []
    good_en = []
    for c in eligible:
        title = c.rule_title or c.rule_id
        mark = "(免申即享,无需申请)" if c.mode == "auto_grant" else ""
        basis = f"(依据:{c.legal_basis})" if c.legal_basis else ""
        good.append(f"  · 「{title}」{mark}{basis}")
        good_en.append(_good_line_en(title, c.mode, c.legal_basis))
    wanting = [f"  · 「{c.rule_title or c.rule_id}」缺少:" + _labels(c.missing) for c in unknown]
    wanting_en = [_wanting_line_en(c.rule_title or c.rule_id, c.missing) for c in unknown]
    keys = sorted(f"{c.rule_id}:{c.rule_version}:{c.result}" for c in changes)
    return _summary(
        credit_code,
        name,
        (good[:SUMMARY_LINES], len(good)),
        (wanting[:SUMMARY_LINES], len(wanting)),
        keys,
        tuple(sorted({c.rule_id for c in eligible})),
        (good_en[:SUMMARY_LINES], wanting_en[:SUMMARY_LINES]),
        changes[0].since if changes else "",
    )


def _good_line_en(title: str, mode: str, legal_basis: str) -> str:
    """A summary's English line for a policy the enterprise may qualify for."""
    mark = " (granted without applying)" if mode == "auto_grant" else ""
    basis = f" (basis: {legal_basis})" if legal_basis else ""
    return f"  · “{title}”{mark}{basis}"


def _wanting_line_en(title: str, missing: Iterable[str]) -> str:
    """A summary's English line for a policy that needs more data."""
    return f"  · “{title}” needs: " + _labels_en(missing)


SUMMARY_LINES = 10  # policies a summary names per kind; 我的政策 shows them all


def _listed(lines: list[str], total: int, en: bool = False) -> list[str]:
    """The first SUMMARY_LINES of `total` lines, and how many more there are (a message stays
    short); `lines` holds at least the ones shown."""
    if total <= SUMMARY_LINES:
        return lines[:total]
    more = f"  … {total} in all, see “My policies”" if en else f"  ……等共 {total} 项,详见“我的政策”"
    return [*lines[:SUMMARY_LINES], more]


def _summary(
    credit_code: str,
    name: str,
    good: tuple[list[str], int],
    wanting: tuple[list[str], int],
    keys: list[str],
    covers: tuple[str, ...],
    english: tuple[list[str], list[str]],
    since: str,
) -> NoteSpec:
    """A summary message from its lines: `good` and `wanting` are the lines shown (the first
    SUMMARY_LINES) and how many there are in all, `english` the same lines in English; `keys`
    are the announced results' dedupe keys, sorted, without their common `match:<credit code>:`
    prefix and `@since` suffix (the stored state they replace, the same for all); `covers` the
    eligible rules' ids, sorted."""
    (good_lines, n_good), (wanting_lines, n_wanting) = good, wanting
    lines = [f"{name}:" if name else "贵企业:"]
    if n_good:
        lines.append(f"经比对,贵企业可能符合以下 {n_good} 项政策:")
        lines += _listed(good_lines, n_good)
    if n_wanting:
        lines.append(f"另有 {n_wanting} 项政策还缺少数据,无法判断:")
        lines += _listed(wanting_lines, n_wanting)
    lines.append(
        "怎么办:请打开“我的政策”查看每项政策的条件、理由和所需材料;补充数据后系统将自动重新判断。"
    )
    if n_good:
        topic = Topic.policy_match
        subject = f"您可能符合 {n_good} 项惠企政策"
        if n_wanting:
            subject += f",另有 {n_wanting} 项待补充数据"
    else:
        topic = Topic.data_request
        subject = f"补充数据后可判断 {n_wanting} 项政策"
    subject_en, body_en = _summary_en(name, (english[0], n_good), (english[1], n_wanting))
    # the sorted results and the state they replace, built without the full keys
    prefix = f"match:{credit_code}:"
    facts = prefix + ("\n" + prefix).join(keys) + (f"\n@{since}" if since else "")
    digest = hashlib.sha256(facts.encode("utf-8")).hexdigest()[:40]
    return NoteSpec(
        credit_code,
        topic,
        subject,
        "\n".join(lines),
        "/matching/mine",
        f"matchset:{credit_code}:{digest}",
        covers=covers,
        subject_en=subject_en,
        body_en=body_en,
    )


def _summary_en(
    name: str, good: tuple[list[str], int], wanting: tuple[list[str], int]
) -> tuple[str, str]:
    """English subject and body of a summary message from its English lines (shown, total)."""
    (good_lines, n_good), (wanting_lines, n_wanting) = good, wanting
    lines = [f"{name}:" if name else "Dear enterprise:"]
    if n_good:
        lines.append(f"Your enterprise may qualify for these {n_good} policies:")
        lines += _listed(good_lines, n_good, en=True)
    if n_wanting:
        lines.append(f"{n_wanting} more policies need data before they can be decided:")
        lines += _listed(wanting_lines, n_wanting, en=True)
    lines.append(
        "What to do: open “My policies” for each policy's conditions, reasons and documents;"
        " once you supply data the check runs again."
    )
    if n_good:
        subject = f"You may qualify for {n_good} policies for enterprises"
        if n_wanting:
            subject += f"; {n_wanting} more need data"
    else:
        subject = f"Supply data to decide {n_wanting} policies"
    return subject, "\n".join(lines)


def _sorted_within(group: np.ndarray, item: np.ndarray, texts: Sequence[str]) -> list[str]:
    """The texts of `item` (indexes into `texts`) sorted within each group (groups ascending,
    contiguous): a group-by-text grid of flags read in order, or a sort by (group, text rank)
    should a group name an item twice."""
    rank = np.empty(len(texts), dtype=np.int64)
    rank[sorted(range(len(texts)), key=texts.__getitem__)] = np.arange(len(texts))
    by_rank = np.asarray(texts, dtype=object)[np.argsort(rank)]
    if group.size == 0:
        return []
    grid = np.zeros((int(group[-1]) + 1, len(texts)), dtype=bool)
    grid[group, rank[item]] = True
    ranks = np.flatnonzero(grid) % len(texts)
    if ranks.size != item.size:
        ranks = rank[item][np.lexsort((rank[item], group))]
    return list(by_rank[ranks].tolist())


def _set_notes(changes: ChangeSet) -> list[NoteSpec]:
    """grouped_result_notes of a column-wise ChangeSet: the enterprises with few news get single
    messages as usual; a summary is assembled from per-rule lines made once, not per change,
    and only for the lines it shows; its keys and covers are sorted as numbers (ranks)."""
    told = (changes.result == 1) | ((changes.result == 2) & (changes.missing != ""))
    picked = np.flatnonzero(told)
    if picked.size == 0:
        return []
    who = changes.enterprise[picked]
    rule = changes.rule[picked].astype(np.int64)
    result = changes.result[picked].astype(np.int64)
    eligible = result == 1
    # within each enterprise (changes come sorted by it) eligible news first, order kept
    order = np.lexsort((~eligible, who))
    picked, who, rule, result = picked[order], who[order], rule[order], result[order]
    eligible = eligible[order]
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
    ends = np.r_[starts[1:], who.size]
    n_good = np.add.reduceat(eligible.astype(np.int64), starts)
    facts = changes.rules
    group = np.repeat(np.arange(starts.size), ends - starts)
    keys = _sorted_within(
        group,
        rule * 3 + result,
        [f"{f.rule_id}:{f.rule_version}:{x}" for f in facts for x in RESULTS],
    )
    covers = _sorted_within(group[eligible], rule[eligible], [f.rule_id for f in facts])
    # the lines a summary shows: the first SUMMARY_LINES of each kind in each enterprise
    place = np.arange(who.size) - starts[group]
    place = np.where(eligible, place, place - n_good[group])
    shown = np.flatnonzero(place < SUMMARY_LINES)
    good_line = [
        f"  · 「{f.title or f.rule_id}」"
        + ("(免申即享,无需申请)" if f.mode == "auto_grant" else "")
        + (f"(依据:{f.legal_basis})" if f.legal_basis else "")
        for f in facts
    ]
    good_line_en = [_good_line_en(f.title or f.rule_id, f.mode, f.legal_basis) for f in facts]
    listed: list[str] = [""] * shown.size
    listed_en: list[str] = [""] * shown.size
    made: dict[tuple[int, str], tuple[str, str]] = {}
    for k, r, good, text in zip(
        range(shown.size),
        rule[shown].tolist(),
        eligible[shown].tolist(),
        changes.missing[picked[shown]].tolist(),
        strict=True,
    ):
        if good:
            listed[k], listed_en[k] = good_line[r], good_line_en[r]
            continue
        if (r, text) not in made:
            names = [m for m in text.split(",") if m]
            title = facts[r].title or facts[r].rule_id
            made[(r, text)] = (
                f"  · 「{title}」缺少:" + _labels(names),
                _wanting_line_en(title, names),
            )
        listed[k], listed_en[k] = made[(r, text)]
    specs: list[NoteSpec] = []
    # where each enterprise's covered rules and shown lines begin among all of them
    good_at = (np.cumsum(n_good) - n_good).tolist()
    good_shown = np.minimum(n_good, SUMMARY_LINES)
    n_shown = good_shown + np.minimum(ends - starts - n_good, SUMMARY_LINES)
    for start, end, good, first, at, shown_good in zip(
        starts.tolist(),
        ends.tolist(),
        n_good.tolist(),
        good_at,
        (np.cumsum(n_shown) - n_shown).tolist(),
        good_shown.tolist(),
        strict=True,
    ):
        if end - start <= SINGLES_UP_TO:
            specs += result_notes([changes[i] for i in np.sort(picked[start:end]).tolist()])
            continue
        code, name = changes.enterprises[int(who[start])]
        middle = start + good
        lines_end = at + shown_good + min(end - middle, SUMMARY_LINES)
        good_end = at + shown_good
        specs.append(
            _summary(
                code,
                name,
                (listed[at:good_end], good),
                (listed[good_end:lines_end], end - middle),
                keys[start:end],
                tuple(covers[first : first + good]),
                (listed_en[at:good_end], listed_en[good_end:lines_end]),
                changes.since[int(who[start])] if changes.since else "",
            )
        )
    return specs


def grouped_result_notes(changes: Iterable[ResultChange]) -> list[NoteSpec]:
    """The notifications of a batch of results: up to SINGLES_UP_TO news per enterprise as
    single messages, more as one summary (so a first run or a new rule sends each enterprise
    one message, under the same caps and digests as any push)."""
    if isinstance(changes, ChangeSet):
        return _set_notes(changes)
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


def _link_to_inbox(session: Session, notes: Sequence[NoteSpec], ids: Sequence[int]) -> None:
    """Point single result messages (queued as `notes`, created as `ids`) at their own inbox
    page, in one UPDATE of the new rows linked to the inbox."""
    if not any(note.link == INBOX_LINK for note in notes) or not ids:
        return
    session.execute(
        update(Notification)
        .where(one_of(session, Notification.id, ids), Notification.link == INBOX_LINK)
        .values(link=literal(INBOX_LINK + "/") + cast(Notification.id, String))
        .execution_options(synchronize_session=False)
    )


def queue_result_notes(
    session: Session, changes: Iterable[ResultChange], now: datetime | None = None
) -> list[int]:
    """Queue one notification per result change in one set-based pass; returns the new ids."""
    notes = result_notes(changes)
    ids = queue_notes(session, notes, now)
    _link_to_inbox(session, notes, ids)
    return ids


def notify_results(session: Session, changed_results: Iterable[ResultChange]) -> list[Notification]:
    """One notification per new or changed eligible (or unknown-with-missing-data) result.

    Call it in the matching run's transaction with the changed results; a rerun with the
    same rule versions and results creates nothing (dedupe key: enterprise, rule, rule version,
    result, the stored state replaced).
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
    notes = grouped_result_notes(event.changes)
    ids = queue_notes(session, notes)
    _link_to_inbox(session, notes, ids)


def on_grant_decided(session: Session, event: GrantDecided) -> None:
    """A grant was decided: tell the enterprise, once per grant and status (handler)."""
    enqueue(
        session,
        credit_code=event.credit_code,
        topic=Topic.grant,
        subject=event.subject,
        body=event.body,
        subject_en=event.subject_en or None,
        body_en=event.body_en or None,
        link=event.link,
        dedupe_key=f"grant:{event.grant_id}:{event.status}",
        rule_id=event.rule_id,
        rule_version=str(event.rule_version),
    )
