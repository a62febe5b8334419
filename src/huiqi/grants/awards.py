"""Awards of calls for applications (快申快享) in the grant ledger: a grant per award, approved
by the awarding officer and paid through the same four-eyes disbursement files; clawbacks as
ledger entries; the grant module's risk signals about an enterprise for other reviewers.

Legal basis: 甘工信发〔2020〕351号 (七) — special funds support enterprises by 奖励、补助、贷款贴息
and are to be managed; one ledger for every payment keeps them auditable."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.grants.award_text import AWARD_KIND
from huiqi.grants.bank import bank_account
from huiqi.grants.ledger import append_ledger
from huiqi.grants.models import BankAccount, Grant, GrantStatus, LedgerEntry
from huiqi.grants.review import review
from huiqi.grants.risk import HOLD_FLAGS, assess_risk, flag, set_flags
from huiqi.grants.schemas import GrantError
from huiqi.grants.snapshots import inputs_hash


def grant_for_award(
    session: Session,
    *,
    ref: str,
    credit_code: str,
    enterprise_name: str,
    title: str,
    legal_basis: str,
    department: str,
    period: int,
    amount_fen: int,
    detail: dict[str, Any],
    actor: str,
) -> Grant:
    """Enter an award decided on an application into the grant ledger (idempotent per ref,
    enterprise and period): a grant approved by the awarding officer when the enterprise has a
    receiving account (else pending with that flag), paid through the same disbursement files
    with the same four-eyes control. `ref` names the call (e.g. ``funds-call-7``)."""
    if amount_fen <= 0:
        raise GrantError("立项金额须大于 0 / an award must be above 0")
    existing = session.scalar(
        select(Grant).where(
            Grant.rule_id == ref, Grant.credit_code == credit_code, Grant.period == period
        )
    )
    if existing is not None:
        return existing
    snapshot = {"kind": AWARD_KIND, "on": clock.today().isoformat(), "inputs": {}, **detail}
    grant = Grant(
        credit_code=credit_code,
        enterprise_name=enterprise_name,
        rule_id=ref,
        rule_version=1,
        rule_hash=hashlib.sha256(ref.encode()).hexdigest()[:16],
        rule_title=title[:300],
        legal_basis=legal_basis[:200],
        department=department,
        period=period,
        amount_fen=amount_fen,
        snapshot=snapshot,
        input_hash=inputs_hash({}),
        status=GrantStatus.pending,
    )
    session.add(grant)
    session.flush()
    set_flags(grant, assess_risk(session, grant, clock.today()))
    append_ledger(
        session, grant, "awarded", actor=actor, status_from=None, detail={"ref": ref, **detail}
    )
    # the award was decided in review and 公示: the awarding officer's approval is the decision
    review(
        session,
        [grant.id],
        "approve",
        actor=actor,
        reason="立项批准 / award approved",
        ack_risk=True,
    )
    return grant


def clawbacks_fen(session: Session, grant_id: int) -> int:
    """Money already recovered from a grant, from its ledger."""
    details = session.scalars(
        select(LedgerEntry.detail).where(
            LedgerEntry.grant_id == grant_id, LedgerEntry.event == "clawback"
        )
    )
    return sum(int((d or {}).get("clawback_fen", 0)) for d in details)


def record_clawback(
    session: Session, grant_id: int, amount_fen: int, *, reason: str, actor: str
) -> Any:
    """Record money recovered from a paid or approved grant as a ledger entry (never more than
    was granted, all clawbacks together); returns the entry."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise GrantError(f"grant {grant_id}: not found")
    if grant.status not in (GrantStatus.approved, GrantStatus.disbursed):
        raise GrantError("只有已批准或已拨付的项目可以追回资金 / only approved or paid grants")
    reason = reason.strip()
    if not reason:
        raise GrantError("追回资金须填写理由 / a clawback needs a reason")
    already = clawbacks_fen(session, grant_id)
    if amount_fen <= 0 or already + amount_fen > grant.amount_fen:
        raise GrantError(
            f"追回金额须大于 0 且累计不超过支持金额 {format_fen(grant.amount_fen)}"
            f"(已追回 {format_fen(already)}) / a clawback must be above 0 and, with earlier "
            "ones, at most the amount granted"
        )
    return append_ledger(
        session,
        grant,
        "clawback",
        actor=actor,
        status_from=grant.status,
        detail={"clawback_fen": amount_fen, "reason": reason[:1000]},
    )


def enterprise_risk_flags(session: Session, credit_code: str) -> list[dict[str, Any]]:
    """The grant module's risk signals about one enterprise, for reviewers of other benefits:
    no or a shared receiving account, grants rejected before, and decided grants held because
    their data changed or the enterprise is no longer eligible."""
    flags: list[dict[str, Any]] = []
    account = bank_account(session, credit_code)
    if account is None:
        flags.append(flag("no_bank_account", "企业尚未登记收款账户", "no bank account on file"))
    else:
        others = session.scalars(
            select(BankAccount.credit_code).where(
                BankAccount.account_no == account.account_no,
                BankAccount.credit_code != credit_code,
            )
        ).all()
        if others:
            flags.append(
                flag(
                    "shared_account",
                    f"收款账户与其他 {len(others)} 家企业相同",
                    f"bank account shared with {len(others)} other enterprise(s)",
                    others=sorted(others),
                )
            )
    own = session.scalars(select(Grant).where(Grant.credit_code == credit_code)).all()
    rejected = [g for g in own if g.status == GrantStatus.rejected]
    if rejected:
        flags.append(
            flag(
                "grant_rejected",
                f"曾有 {len(rejected)} 个免申即享项目被驳回",
                f"{len(rejected)} grant(s) rejected before",
                grants=[g.id for g in rejected],
            )
        )
    held = [g for g in own if any(f["code"] in HOLD_FLAGS for f in g.risk_flags or [])]
    if held:
        flags.append(
            flag(
                "grant_held",
                f"{len(held)} 个已批准项目因数据变化或不再符合条件待核实",
                f"{len(held)} decided grant(s) held: data changed or no longer eligible",
                grants=[g.id for g in held],
            )
        )
    return flags
