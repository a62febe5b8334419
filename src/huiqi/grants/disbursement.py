"""Disbursement: four-eyes payment files verified against the ledger, and the message
telling each enterprise what it received."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.core.export import append_row, csv_bytes
from huiqi.core.money import FEN_PER_YUAN, format_fen, format_fen_en
from huiqi.events import GrantDecided, publish
from huiqi.grants.award_text import AWARD_KIND, award_message, award_message_en
from huiqi.grants.ledger import LedgerItem, append_many, ledger_problems
from huiqi.grants.models import Disbursement, Grant, GrantStatus
from huiqi.grants.risk import HOLD_FLAGS
from huiqi.grants.schemas import (
    GrantError,
    GrantFourEyes,
    LedgerMismatch,
    mask_account,
)
from huiqi.grants.scope import Scope, scoped
from huiqi.grants.snapshots import decode_value
from huiqi.grants.sources import CONFIRM_FLAGS


def disbursable(session: Session, *, departments: Scope = None) -> list[Grant]:
    """Approved grants not yet in a disbursement file and not held by a change after approval."""
    rows = session.scalars(
        scoped(
            select(Grant).where(
                Grant.status == GrantStatus.approved, Grant.disbursement_id.is_(None)
            ),
            departments,
        ).order_by(Grant.id)
    ).all()
    blocking = HOLD_FLAGS | CONFIRM_FLAGS
    return [g for g in rows if not any(f["code"] in blocking for f in g.risk_flags or [])]


DISBURSEMENT_HEADERS = [
    "序号",
    "统一社会信用代码",
    "企业名称",
    "开户银行",
    "户名",
    "银行账号",
    "金额(元)",
    "金额(分)",
    "政策",
    "政策依据",
    "规则版本",
    "所属年度",
    "审核人",
    "审核时间",
    "拨付批次",
]


def yuan_text(fen: int) -> str:
    """Exact yuan with two decimals, e.g. 12345.60."""
    return f"{Decimal(fen) / FEN_PER_YUAN:.2f}"


def disbursement_rows(session: Session, disbursement_id: int) -> list[list[Any]]:
    """The rows of a disbursement file, in grant order."""
    grants = session.scalars(
        select(Grant).where(Grant.disbursement_id == disbursement_id).order_by(Grant.id)
    ).all()
    out = []
    for i, g in enumerate(grants, 1):
        reviewed = g.reviewed_at.strftime("%Y-%m-%d %H:%M") if g.reviewed_at else ""
        out.append(
            [
                i,
                g.credit_code,
                g.enterprise_name,
                g.bank_name or "",
                g.account_name or "",
                g.account_no or "",
                yuan_text(g.amount_fen),
                g.amount_fen,
                g.rule_title,
                g.legal_basis,
                g.rule_version,
                g.period,
                g.reviewed_by or "",
                reviewed,
                disbursement_id,
            ]
        )
    return out


def disbursement_csv(rows: list[list[Any]]) -> bytes:
    """CSV (UTF-8 with BOM so spreadsheet programs read the Chinese headers), every cell safe."""
    return csv_bytes(DISBURSEMENT_HEADERS, rows)


def disbursement_xlsx(rows: list[list[Any]]) -> bytes:
    """XLSX with the same columns; account numbers and yuan amounts are text, so none is rounded."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "拨付清单"
    append_row(sheet, DISBURSEMENT_HEADERS)
    for row in rows:
        append_row(sheet, row)
    for cell in sheet["F"][1:] + sheet["B"][1:]:
        cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# Ledger events by which a person decides that a grant is to be paid.
APPROVING_EVENTS = ("approved", "change_confirmed")


def approvers(session: Session, grant_ids: Sequence[int]) -> dict[int, set[str]]:
    """Who approved (or confirmed after a change) each grant, from the ledger."""
    from huiqi.grants.models import LedgerEntry

    out: dict[int, set[str]] = {gid: set() for gid in grant_ids}
    ids = list(grant_ids)
    for start in range(0, len(ids), 5000):
        for gid, actor in session.execute(
            select(LedgerEntry.grant_id, LedgerEntry.actor).where(
                LedgerEntry.grant_id.in_(ids[start : start + 5000]),
                LedgerEntry.event.in_(APPROVING_EVENTS),
            )
        ):
            if actor:
                out[gid].add(actor)
    return out


def split_four_eyes(
    session: Session, grants: Sequence[Grant], actor: str
) -> tuple[list[Grant], list[Grant]]:
    """(grants the actor may put in a payment file, grants the actor approved: someone else's)."""
    who = approvers(session, [g.id for g in grants])
    mine = [g for g in grants if actor in who.get(g.id, set())]
    return [g for g in grants if g not in mine], mine


def check_ledger_before_payment(
    session: Session,
    grants: Sequence[Grant],
    refused: tuple[str, str] = ("拒绝生成拨付文件", "batch refused"),
) -> None:
    """Refuse (LedgerMismatch, naming each grant) when a grant differs from its ledger."""
    problems = ledger_problems(session, [g.id for g in grants])
    if not problems:
        return
    names = {g.id: g.enterprise_name for g in grants}
    lines = [f"#{p.grant_id} {names.get(p.grant_id, '')}: {p.message}" for p in problems[:20]]
    raise LedgerMismatch(
        f"台账校验未通过,{refused[0]} / the ledger does not prove these grants, {refused[1]}: "
        + "; ".join(lines)
    )


def create_disbursement(
    session: Session,
    *,
    actor: str,
    grant_ids: Sequence[int] | None = None,
    departments: Scope = None,
) -> Disbursement:
    """Put approved grants (of the departments) into a new disbursement batch and tell each
    enterprise what it gets.

    Four-eyes: grants the actor approved are left for another person (named grants refuse the
    batch). Each grant's amount, status and account are verified against its ledger first.
    """
    ready = disbursable(session, departments=departments)
    if grant_ids is not None:
        wanted = set(grant_ids)
        ready = [g for g in ready if g.id in wanted]
    if not ready:
        raise GrantError("没有可拨付的已批准项目 / no approved grants ready for disbursement")
    ready, own = split_four_eyes(session, ready, actor)
    if own and (grant_ids is not None or not ready):
        raise GrantFourEyes(
            "审核与制作拨付文件须由两人分别完成,以下项目由您审核,请由本部门另一位工作人员制作拨付文件"
            " / the approver may not build the payment file; another officer must do it for: "
            + ", ".join(f"#{g.id}" for g in own)
        )
    check_ledger_before_payment(session, ready)
    batch = Disbursement(
        created_at=utcnow(),
        created_by=actor,
        count=len(ready),
        total_fen=sum(g.amount_fen for g in ready),
        csv_sha256="",
    )
    session.add(batch)
    session.flush()
    items = []
    for grant in ready:
        grant.disbursement_id = batch.id
        grant.status = GrantStatus.disbursed
        grant.updated_at = utcnow()
        items.append(
            LedgerItem(
                grant,
                "disbursed",
                actor,
                GrantStatus.approved,
                {"disbursement_id": batch.id, "account_no": grant.account_no},
            )
        )
    append_many(session, items)
    for grant in ready:
        _tell_enterprise(session, grant)
    batch.csv_sha256 = hashlib.sha256(
        disbursement_csv(disbursement_rows(session, batch.id))
    ).hexdigest()
    session.flush()
    return batch


def batch_problems(session: Session, batch_id: int) -> list[str]:
    """Why a batch's file may not be handed out again: its grants no longer match their ledger,
    or the file rebuilt now differs from the one recorded when the batch was made."""
    batch = session.get(Disbursement, batch_id)
    if batch is None:
        return [f"batch {batch_id}: not found"]
    ids = session.scalars(select(Grant.id).where(Grant.disbursement_id == batch_id)).all()
    problems = [p.message for p in ledger_problems(session, ids)]
    digest = hashlib.sha256(disbursement_csv(disbursement_rows(session, batch_id))).hexdigest()
    if digest != batch.csv_sha256:
        problems.append(
            f"批次 {batch_id} 的拨付文件与生成时记录的 SHA-256 不符 / batch {batch_id}: the file "
            "differs from the one recorded when the batch was made"
        )
    return problems


def readable_formula(formula: str, lang: str = "zh") -> str:
    """A benefit formula with registry fields, derived values and parameters named as people read them."""
    import re

    from huiqi.enterprise.catalogue import name_fields
    from huiqi.matching.service import base_library

    library = base_library()
    titles = {k: v.title for k, v in library.params.items()}
    titles.update({k: d.title for k, d in library.derived.items() if d.title is not None})

    def named(m: re.Match[str]) -> str:
        title = titles.get(m.group(0))
        if title is None:
            return m.group(0)
        return title.en if lang == "en" else title.zh

    return re.sub(
        r"(?<![A-Za-z0-9_])[a-z][a-z0-9_]*(?![A-Za-z0-9_])", named, name_fields(formula, lang)
    )


def grant_message(grant: Grant) -> tuple[str, str]:
    """Subject and Chinese body telling an enterprise what it received and why."""
    from huiqi.enterprise.catalogue import catalogue, display

    if grant.snapshot.get("kind") == AWARD_KIND:
        return award_message(grant)

    cat = catalogue()
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "贵企业:",
        f"根据「{grant.rule_title}」(政策依据:{grant.legal_basis}),"
        f"贵企业 {grant.period} 年度的{grant.rule_title}已审核通过并拨付,无需提交任何申请。",
        f"金额:{format_fen(grant.amount_fen)}",
        f"收款账户:{grant.bank_name or ''} {mask_account(grant.account_no)}",
        "依据的数据:",
    ]
    for name, raw in sorted(grant.snapshot.get("inputs", {}).items()):
        value = decode_value(raw)
        try:
            f = cat[name]
            lines.append(f"  · {f.zh}:{display(f, value)}")
        except KeyError:
            lines.append(f"  · {readable_formula(name)}:{value}")
    if grant.snapshot.get("formula"):
        lines.append(f"计算方式:{readable_formula(grant.snapshot['formula'])}")
    lines.append(f"怎么办:无需任何操作。如对金额有疑问,请联系{grant.department or '主管部门'}。")
    return f"「{grant.rule_title}」{format_fen(grant.amount_fen)} 已拨付", "\n".join(lines)


def grant_message_en(grant: Grant) -> tuple[str, str]:
    """The same message in English, with the data it rests on under their English labels."""
    from huiqi.enterprise.catalogue import catalogue, display

    if grant.snapshot.get("kind") == AWARD_KIND:
        return award_message_en(grant)
    cat = catalogue()
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "Dear enterprise:",
        f"Under “{grant.rule_title}” (legal basis: {grant.legal_basis}), your enterprise's"
        f" benefit for {grant.period} was approved and paid, with no application needed.",
        f"Amount: {format_fen_en(grant.amount_fen)}",
        f"Paid to: {grant.bank_name or ''} {mask_account(grant.account_no)}",
        "Data it rests on:",
    ]
    for name, raw in sorted(grant.snapshot.get("inputs", {}).items()):
        value = decode_value(raw)
        f = cat.fields.get(name)
        if f is None:
            lines.append(f"  · {name}: {value}")
        elif f.type == "money" and value is not None:
            lines.append(f"  · {f.en}: {format_fen_en(int(value))}")
        elif f.type == "bool":
            lines.append(f"  · {f.en}: {'yes' if value else 'no'}")
        else:
            lines.append(f"  · {f.en}: {display(f, value)}")
    if grant.snapshot.get("formula"):
        lines.append(f"How it is computed: {readable_formula(grant.snapshot['formula'], 'en')}")
    lines.append(
        "What to do: nothing. With questions about the amount, contact"
        f" {grant.department or 'the department in charge'}."
    )
    return f"“{grant.rule_title}”: {format_fen_en(grant.amount_fen)} paid", "\n".join(lines)


def _tell_enterprise(session: Session, grant: Grant) -> None:
    """Announce the disbursement; the notifying domain tells the enterprise."""
    subject, body = grant_message(grant)
    subject_en, body_en = grant_message_en(grant)
    publish(
        session,
        GrantDecided(
            grant_id=grant.id,
            credit_code=grant.credit_code,
            status="disbursed",
            rule_id=grant.rule_id,
            rule_version=grant.rule_version,
            subject=subject,
            body=body,
            link=f"/grants/mine#grant-{grant.id}",
            subject_en=subject_en,
            body_en=body_en,
        ),
    )


def batches(session: Session, *, departments: Scope = None) -> Sequence[Disbursement]:
    """Disbursement batches, newest first; with departments, those holding their grants."""
    q = select(Disbursement)
    if departments is not None:
        q = q.where(
            Disbursement.id.in_(
                scoped(select(Grant.disbursement_id), departments).where(
                    Grant.disbursement_id.is_not(None)
                )
            )
        )
    return session.scalars(q.order_by(Disbursement.id.desc())).all()


def batch_in_scope(session: Session, batch_id: int, departments: Scope) -> bool:
    """Whether every grant of a batch is within the scope (None: any)."""
    if departments is None:
        return True
    of_batch = select(func.count()).select_from(Grant).where(Grant.disbursement_id == batch_id)
    return session.scalar(of_batch) == session.scalar(scoped(of_batch, departments))
