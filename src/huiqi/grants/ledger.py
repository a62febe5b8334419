"""The grant ledger: append-only, keyed, anchored.

Every state change of a grant is one ``grant_ledger`` entry whose hash is HMAC-SHA256 under the
ledger key (kept outside the database: ``HUIQI_LEDGER_KEY`` or ``ledger.key`` in the data folder)
over the previous entry's hash and the entry's content. Someone who can write the database but
not read the key can therefore not recompute a chain. Each grant's ``grant_ledger_head`` row holds
the entry count and the last hash, sealed with the same key and written in the same transaction
as the entry, so deleting the last entries shows too. Verification also compares the grant row
(amount, status, receiving account: what the payment file reads) with its ledger.

Ledgers written before the key existed (unkeyed SHA-256, ``alg = 'sha256'``) are sealed once by
:func:`seal_legacy` (`huiqi grants rekey`, also run by `huiqi db upgrade`): their chains are
checked and a head records how many unkeyed entries they hold; everything after is keyed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from huiqi.core.bulk import assign_ids, one_of
from huiqi.core.db import utcnow
from huiqi.core.money import format_fen
from huiqi.grants.models import Grant, GrantStatus, LedgerEntry, LedgerHead
from huiqi.grants.schemas import GrantError
from huiqi.grants.scope import Scope, scoped

GENESIS = "0" * 64
KEYED = "hmac-sha256"
LEGACY = "sha256"


def ledger_key() -> bytes:
    """The ledger key from the settings (generated into the data folder outside production)."""
    from huiqi.core.config import ConfigError, get_settings

    try:
        key = get_settings().ledger_key
    except ConfigError as exc:
        raise GrantError(str(exc)) from None
    if not key:
        raise GrantError("HUIQI_LEDGER_KEY: not configured; the grant ledger cannot be written")
    return key.encode()


@event.listens_for(Session, "before_flush")
def _ledger_is_append_only(session: Session, _ctx: Any, _instances: Any) -> None:
    """Refuse any change or deletion of ledger rows before it reaches the database triggers."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, LedgerEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise GrantError("grant_ledger is append-only")


def _canonical(prev: str, body: dict[str, Any]) -> bytes:
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return (prev + text).encode()


def entry_hash(prev: str, body: dict[str, Any], key: bytes | None) -> str:
    """The hash of an entry: HMAC-SHA256 under the key, or plain SHA-256 for legacy entries."""
    if key is None:
        return hashlib.sha256(_canonical(prev, body)).hexdigest()
    return hmac.new(key, _canonical(prev, body), hashlib.sha256).hexdigest()


def entry_body(entry: LedgerEntry) -> dict[str, Any]:
    """The hashed content of an entry."""
    return {
        "grant_id": entry.grant_id,
        "at": entry.at.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "event": entry.event,
        "actor": entry.actor,
        "status_from": entry.status_from,
        "status_to": entry.status_to,
        "amount_fen": entry.amount_fen,
        "detail": entry.detail,
    }


def head_mac(key: bytes, grant_id: int, entries: int, legacy_entries: int, last_hash: str) -> str:
    """The seal of a head row."""
    message = f"head|{grant_id}|{entries}|{legacy_entries}|{last_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _seal(head: LedgerHead, key: bytes) -> None:
    head.mac = head_mac(key, head.grant_id, head.entries, head.legacy_entries, head.last_hash)
    head.updated_at = utcnow()


@dataclass(frozen=True)
class LedgerItem:
    """One entry to append: which grant (in its new state), what happened, who did it."""

    grant: Grant
    event: str
    actor: str | None
    status_from: str | None
    detail: dict[str, Any] = field(default_factory=dict)


def append_many(session: Session, items: Sequence[LedgerItem]) -> list[LedgerEntry]:
    """Append entries (several grants, several entries per grant) and move their heads.

    The heads are read FOR UPDATE, so two transactions appending to the same grant queue up
    instead of forking its chain.
    """
    if not items:
        return []
    assign_ids(session, list({id(i.grant): i.grant for i in items}.values()))
    session.flush()
    key = ledger_key()
    ids = sorted({item.grant.id for item in items})
    heads: dict[int, LedgerHead] = {}
    for head in session.scalars(
        select(LedgerHead).where(one_of(session, LedgerHead.grant_id, ids)).with_for_update()
    ):
        heads[head.grant_id] = head
    headless = [gid for gid in ids if gid not in heads]
    if headless:
        legacy = session.scalars(
            select(LedgerEntry.grant_id)
            .where(one_of(session, LedgerEntry.grant_id, headless))
            .distinct()
        ).all()
        if legacy:
            raise GrantError(
                "台账尚未加密封存,请先运行 huiqi grants rekey / the ledger of grant(s) "
                + ", ".join(f"#{gid}" for gid in sorted(legacy)[:20])
                + " predates the ledger key: run `huiqi grants rekey` first"
            )
    out = []
    for item in items:
        grant = item.grant
        found = heads.get(grant.id)
        if found is None:
            head = LedgerHead(grant_id=grant.id, entries=0, legacy_entries=0, last_hash=GENESIS)
            heads[grant.id] = head
            session.add(head)
        else:
            head = found
        entry = LedgerEntry(
            grant_id=grant.id,
            at=utcnow(),
            event=item.event,
            actor=item.actor,
            status_from=item.status_from,
            status_to=grant.status,
            amount_fen=grant.amount_fen,
            detail=item.detail,
            prev_hash=head.last_hash,
            alg=KEYED,
        )
        entry.hash = entry_hash(entry.prev_hash, entry_body(entry), key)
        head.entries += 1
        head.last_hash = entry.hash
        _seal(head, key)
        out.append(entry)
    assign_ids(session, out)
    session.add_all(out)
    session.flush()
    return out


def append_ledger(
    session: Session,
    grant: Grant,
    event_name: str,
    *,
    actor: str | None,
    status_from: str | None,
    detail: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Append one entry to a grant's chain."""
    item = LedgerItem(grant, event_name, actor, status_from, detail or {})
    return append_many(session, [item])[0]


# --- verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerProblem:
    """One finding of the ledger check."""

    grant_id: int
    kind: str  # chain | unkeyed | content | no_head | head_forged | truncated | appended |
    # last_hash | amount | status | account | no_ledger
    message: str

    def __str__(self) -> str:
        return self.message


def _entries_by_grant(
    session: Session, grant_ids: Sequence[int] | None
) -> dict[int, list[LedgerEntry]]:
    chains: dict[int, list[LedgerEntry]] = defaultdict(list)
    q = select(LedgerEntry).order_by(LedgerEntry.id)
    if grant_ids is None:
        for entry in session.scalars(q):
            chains[entry.grant_id].append(entry)
        return chains
    for start in range(0, len(grant_ids), 5000):
        chunk = list(grant_ids[start : start + 5000])
        for entry in session.scalars(q.where(LedgerEntry.grant_id.in_(chunk))):
            chains[entry.grant_id].append(entry)
    return chains


def _approved_account(chain: list[LedgerEntry]) -> str | None:
    for entry in reversed(chain):
        if entry.event == "approved":
            value = (entry.detail or {}).get("account_no")
            return str(value) if value is not None else None
    return None


def ledger_problems(
    session: Session, grant_ids: Iterable[int] | None = None
) -> list[LedgerProblem]:
    """Everything that does not add up, per grant: broken or unkeyed chains, missing or forged
    heads, deleted or added entries, and grant rows that differ from their ledger."""
    key = ledger_key()
    ids = None if grant_ids is None else sorted(set(grant_ids))
    q = select(Grant.id, Grant.amount_fen, Grant.status, Grant.account_no).order_by(Grant.id)
    hq = select(LedgerHead)
    if ids is not None:
        q, hq = q.where(Grant.id.in_(ids)), hq.where(LedgerHead.grant_id.in_(ids))
    rows = session.execute(q).all()
    heads = {h.grant_id: h for h in session.scalars(hq)}
    chains = _entries_by_grant(session, ids)
    problems: list[LedgerProblem] = []
    for gid, amount_fen, status, account_no in rows:
        chain = chains.get(gid, [])
        head = heads.get(gid)

        def say(kind: str, zh: str, en: str, gid: int = gid) -> None:
            problems.append(LedgerProblem(gid, kind, f"grant #{gid}: {zh} / {en}"))

        if not chain and head is None:
            say("no_ledger", "没有任何台账记录", "has no ledger entries")
            continue
        legacy = head.legacy_entries if head is not None else len(chain)
        prev = GENESIS
        for i, entry in enumerate(chain):
            body = entry_body(entry)
            if entry.prev_hash != prev:
                say("chain", f"第 {entry.id} 条断链", f"entry {entry.id}: chain broken")
            if i < legacy:
                if entry.hash != entry_hash(entry.prev_hash, body, None):
                    say(
                        "content",
                        f"第 {entry.id} 条内容与哈希不符",
                        f"entry {entry.id}: content does not match its hash",
                    )
            elif not hmac.compare_digest(entry.hash, entry_hash(entry.prev_hash, body, key)):
                if entry.hash == entry_hash(entry.prev_hash, body, None):
                    say(
                        "unkeyed",
                        f"第 {entry.id} 条未用台账密钥签名(台账被重写)",
                        f"entry {entry.id}: not hashed with the ledger key (chain rewritten)",
                    )
                else:
                    say(
                        "content",
                        f"第 {entry.id} 条内容与哈希不符",
                        f"entry {entry.id}: content does not match its hash",
                    )
            prev = entry.hash
        if head is None:
            say(
                "no_head",
                "台账缺少封存的链头(运行 huiqi grants rekey,或链头被删除)",
                "no sealed head (run `huiqi grants rekey`, or the head was deleted)",
            )
        else:
            expected = head_mac(key, gid, head.entries, head.legacy_entries, head.last_hash)
            if not hmac.compare_digest(head.mac, expected):
                say("head_forged", "链头未用台账密钥封存(被篡改)", "head not sealed with the key")
            if head.entries > len(chain):
                say(
                    "truncated",
                    f"链头记录 {head.entries} 条,实有 {len(chain)} 条:台账记录被删除",
                    f"head records {head.entries} entries, the chain has {len(chain)}: "
                    "entries were deleted",
                )
            elif head.entries < len(chain):
                say(
                    "appended",
                    f"链头记录 {head.entries} 条,实有 {len(chain)} 条:有记录绕过台账写入",
                    f"head records {head.entries} entries, the chain has {len(chain)}",
                )
            if chain and head.last_hash != chain[-1].hash:
                say("last_hash", "最后一条记录与链头不符", "last entry differs from the head")
        if not chain:
            continue
        last = chain[-1]
        if amount_fen != last.amount_fen:
            say(
                "amount",
                f"金额 {format_fen(amount_fen)} 与台账记录的 {format_fen(last.amount_fen)} 不符",
                f"amount {amount_fen} fen differs from the ledger's {last.amount_fen} fen",
            )
        if status != last.status_to:
            say(
                "status",
                f"状态 {status} 与台账记录的 {last.status_to} 不符",
                f"status {status} differs from the ledger's {last.status_to}",
            )
        approved_account = _approved_account(chain)
        if (
            status in (GrantStatus.approved, GrantStatus.disbursed)
            and approved_account is not None
            and account_no != approved_account
        ):
            say(
                "account",
                "收款账号与审核时记录的不符",
                "receiving account differs from the one recorded at approval",
            )
    return problems


def verify_ledger(session: Session, grant_ids: Iterable[int] | None = None) -> list[str]:
    """Problems found re-walking the ledger (empty when intact), one line each."""
    return [p.message for p in ledger_problems(session, grant_ids)]


# --- sealing ledgers written before the key ------------------------------------------------


@dataclass
class SealReport:
    """What `rekey` did."""

    sealed: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def seal_legacy(session: Session) -> SealReport:
    """Seal every grant chain written before the ledger key with a keyed head.

    A chain is sealed only when its unkeyed hashes verify. Once the ledger is in keyed use (a
    head of a new grant or a keyed entry exists), a headless unkeyed chain is not a
    pre-upgrade ledger but a rewrite, and it is refused.
    """
    key = ledger_key()
    report = SealReport()
    headed = set(session.scalars(select(LedgerHead.grant_id)))
    chains = _entries_by_grant(session, None)
    headless = {gid: chain for gid, chain in chains.items() if gid not in headed}
    if not headless:
        return report
    in_keyed_use = (
        session.scalar(select(LedgerHead.grant_id).where(LedgerHead.legacy_entries == 0).limit(1))
        is not None
        or session.scalar(select(LedgerEntry.id).where(LedgerEntry.alg == KEYED).limit(1))
        is not None
    )
    for gid, chain in sorted(headless.items()):
        if in_keyed_use:
            report.refused.append(
                (gid, "the ledger is already keyed: a headless chain is a rewrite")
            )
            continue
        prev, broken = GENESIS, ""
        for entry in chain:
            if entry.prev_hash != prev or entry.hash != entry_hash(prev, entry_body(entry), None):
                broken = f"entry {entry.id} does not verify"
                break
            prev = entry.hash
        if broken:
            report.refused.append((gid, broken))
            continue
        head = LedgerHead(
            grant_id=gid, entries=len(chain), legacy_entries=len(chain), last_hash=prev
        )
        _seal(head, key)
        session.add(head)
        report.sealed.append(gid)
    session.flush()
    return report


def ledger(
    session: Session,
    grant_id: int | None = None,
    limit: int = 500,
    *,
    departments: Scope = None,
) -> Sequence[LedgerEntry]:
    """Ledger entries, newest first (of one grant, or all within the departments)."""
    q = select(LedgerEntry)
    if grant_id is not None:
        q = q.where(LedgerEntry.grant_id == grant_id)
    if departments is not None:
        q = q.where(LedgerEntry.grant_id.in_(scoped(select(Grant.id), departments)))
    return session.scalars(q.order_by(LedgerEntry.id.desc()).limit(limit)).all()
