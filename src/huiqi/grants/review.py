"""Officers approve or reject grants in batches and confirm changes after approval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.grants.bank import bank_account
from huiqi.grants.disbursement import check_ledger_before_payment
from huiqi.grants.ledger import append_ledger
from huiqi.grants.models import Grant, GrantStatus
from huiqi.grants.risk import HOLD_FLAGS
from huiqi.grants.schemas import (
    GrantError,
    GrantForbidden,
)
from huiqi.grants.scope import Scope, can_review
from huiqi.grants.sources import CONFIRM_FLAGS


@dataclass
class ReviewReport:
    """What a batch review did, and which grants it skipped and why."""

    done: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def review(
    session: Session,
    grant_ids: Sequence[int],
    decision: str,
    *,
    actor: str,
    reason: str = "",
    ack_risk: bool = False,
    departments: Scope = None,
) -> ReviewReport:
    """Approve or reject pending grants in a batch.

    Rejection needs a reason. Flagged grants are approved only when the officer acknowledges
    the flags; a grant without a bank account cannot be approved. An approved grant that was
    flagged afterwards may still be rejected (with a reason) before disbursement. A grant of
    a rule outside `departments` refuses the whole batch (GrantForbidden) before any change.
    """
    if decision not in ("approve", "reject"):
        raise GrantError("decision must be approve or reject")
    reason = reason.strip()
    if decision == "reject" and not reason:
        raise GrantError("驳回必须填写理由 / a rejection needs a reason")
    if len(reason) > 1000:
        raise GrantError("理由最多 1000 字 / reason: at most 1000 characters")
    asked = session.scalars(select(Grant).where(Grant.id.in_(list(set(grant_ids))))).all()
    foreign = [g.id for g in asked if not can_review(session, g, departments)]
    if foreign:
        raise GrantForbidden(
            "只能审核本部门政策的项目 / only grants of your department's rules: "
            + ", ".join(f"#{gid}" for gid in sorted(foreign))
        )
    # a decision is taken on the amount the ledger proves, never on an edited row
    check_ledger_before_payment(session, asked, ("拒绝审核", "review refused"))
    report = ReviewReport()
    for gid in dict.fromkeys(grant_ids):
        grant = session.get(Grant, gid)
        if grant is None:
            report.skipped.append((gid, "not found"))
            continue
        before = grant.status
        flagged_after = grant.status == GrantStatus.approved and any(
            f["code"] in HOLD_FLAGS for f in grant.risk_flags or []
        )
        if grant.status != GrantStatus.pending and not (decision == "reject" and flagged_after):
            report.skipped.append((gid, f"status is {grant.status}"))
            continue
        if decision == "approve":
            if any(f["code"] == "no_longer_eligible" for f in grant.risk_flags or []):
                report.skipped.append((gid, "no longer eligible"))
                continue
            if any(f["code"] in CONFIRM_FLAGS for f in grant.risk_flags or []):
                report.skipped.append((gid, "to confirm: an input's source is not accepted"))
                continue
            account = bank_account(session, grant.credit_code)
            if account is None:
                report.skipped.append((gid, "no bank account"))
                continue
            if grant.risk_flags and not ack_risk:
                report.skipped.append((gid, "risk flags not acknowledged"))
                continue
            grant.status = GrantStatus.approved
            grant.bank_name, grant.account_name = account.bank_name, account.account_name
            grant.account_no = account.account_no
        else:
            grant.status = GrantStatus.rejected
        grant.reviewed_by, grant.reviewed_at = actor, utcnow()
        grant.review_reason = reason or None
        grant.updated_at = utcnow()
        append_ledger(
            session,
            grant,
            "approved" if decision == "approve" else "rejected",
            actor=actor,
            status_from=before,
            detail={
                "reason": reason,
                "flags": [f["code"] for f in grant.risk_flags or []],
                # the account the payment file must use; verified before every batch
                **({"account_no": grant.account_no} if decision == "approve" else {}),
            },
        )
        report.done.append(gid)
    session.flush()
    return report


def acknowledge_change(
    session: Session, grant_id: int, *, actor: str, reason: str, departments: Scope = None
) -> Grant:
    """Keep an approved grant whose inputs changed: the officer confirms it with a reason."""
    grant = session.get(Grant, grant_id)
    if grant is not None and not can_review(session, grant, departments):
        raise GrantForbidden("只能处理本部门政策的项目 / only grants of your department's rules")
    if grant is None or grant.status != GrantStatus.approved:
        raise GrantError("only approved grants can be confirmed")
    if not reason.strip():
        raise GrantError("确认须填写理由 / a confirmation needs a reason")
    held = [f for f in grant.risk_flags or [] if f["code"] in HOLD_FLAGS]
    if not held:
        raise GrantError("this grant has no change to confirm")
    grant.risk_flags = [
        {**f, "acknowledged_by": actor} if f["code"] in HOLD_FLAGS else f for f in grant.risk_flags
    ]
    grant.risk_flags = [f for f in grant.risk_flags if f["code"] not in HOLD_FLAGS] + [
        {**f, "code": f"{f['code']}_confirmed"} for f in held
    ]
    append_ledger(
        session,
        grant,
        "change_confirmed",
        actor=actor,
        status_from=grant.status,
        detail={"reason": reason.strip(), "flags": [f["code"] for f in held]},
    )
    return grant
