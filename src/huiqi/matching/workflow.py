"""The rule publish workflow: rules belong to departments; auto_grant versions need a second person.

One path serves every change of a published rule (draft → review → published):

- only an officer of the rule's department, or an administrator (recorded as such in the audit
  log), may submit, approve, reject or withdraw it;
- a version naming another department is a move: the owning department submits it and an officer
  of the receiving department must approve it;
- a version of an ``auto_grant`` rule that can pay anyone more than the version in force (a new
  rule, a raised amount or cap, more enterprises or a longer window qualifying, more kinds of input
  accepted) waits in review until a second officer of the department — never the submitter —
  records the review; only then is it published and only then does it reach any grant;
- other versions (lowering amounts or caps, narrowing who qualifies, texts) an officer of the
  department publishes at once, still recorded in the audit log and the grant ledger.

Publishing re-matches the rule with the acting officer as the actor, so the grant ledger entries it
causes name who changed which rule version. Services never commit; the request commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, get_args

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import can_access, scope_of
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.db import utcnow
from huiqi.core.errors import Conflict, Forbidden
from huiqi.enterprise.service import current_frame
from huiqi.matching.models import RuleVersion
from huiqi.matching.run import match, rematch_rule
from huiqi.matching.stored import holders
from huiqi.matching.versions import MatchingError, new_version, rule_of_version
from huiqi.policy.service import registry_for
from huiqi.rules.batch import run_batch
from huiqi.rules.compiler import Rule
from huiqi.rules.evaluate import amount
from huiqi.rules.plan import compile_plan
from huiqi.rules.schema import SourceKind

REVIEW = "review"
_ALL_SOURCES = get_args(SourceKind)


class RuleAccessError(Forbidden):
    """The user may not change this rule (another department's, or their own submission)."""


class WorkflowError(Conflict):
    """The version's state does not allow the step (not in review, nothing changed, no reason)."""


@dataclass
class Outcome:
    """What a workflow step did: the version and whether it now takes effect."""

    version: RuleVersion
    published: bool


def department_key(session: Session, name: str | None) -> str | None:
    """A department name normalised through the policy registry (省人社厅 = 甘肃省人力资源和社会保障厅)."""
    if not name or not name.strip():
        return None
    resolved = registry_for(session).resolve(name)
    return str(resolved.code or resolved.name)


def may_act(session: Session, user: User, department: str) -> bool:
    """Whether the user may act for rules of this department (administrators for every one)."""
    if user.role not in (Role.officer, Role.admin):
        return False
    return can_access(
        scope_of(user),
        department=department,
        same_department=lambda a, b: department_key(session, a) == department_key(session, b),
    )


def _require(session: Session, user: User, department: str) -> None:
    if not may_act(session, user, department):
        raise RuleAccessError(
            f"只有{department}的工作人员可以处理该规则",
            f"only officers of {department} may act on this rule",
        )


def _audit(session: Session, event: str, user: User, version: RuleVersion, **detail: Any) -> None:
    """Record the step; an administrator acting outside a department is marked as such."""
    as_admin = user.role == Role.admin and not (
        user.department
        and department_key(session, user.department) == department_key(session, version.department)
    )
    audit(
        session,
        event,
        user=user,
        actor=user,
        rule_id=version.rule_id,
        rule_version=version.version,
        department=version.department,
        as_admin=as_admin,
        **detail,
    )


def published_version(session: Session, rule_id: str) -> RuleVersion | None:
    """The version of a rule now in force, if any."""
    return session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule_id, RuleVersion.status == "published")
    ).first()


def pending_reviews(session: Session, user: User) -> list[RuleVersion]:
    """Versions waiting for review that this user may decide (not their own submissions)."""
    waiting = session.scalars(
        select(RuleVersion).where(RuleVersion.status == REVIEW).order_by(RuleVersion.submitted_at)
    ).all()
    return [v for v in waiting if may_act(session, user, v.department)]


def _cap_on(rule: Rule, on: date) -> Any:
    """The rule's cap in fen on a date (None: no cap)."""
    return rule.cap if rule.cap_param is None else rule.params[rule.cap_param].value_on(on)


def _registry_raise(session: Session, old: Rule, new: Rule, on: date) -> str | None:
    """Whether, on the recorded registry, the new version pays any enterprise more or qualifies more.

    Amounts are compared on every enterprise whose inputs both formulas can compute (qualifying or
    not, so a raise waiting for a future qualification shows too); eligibility and "to confirm"
    under the new version must already hold under the old one.
    """
    frame = current_frame(session)
    if frame.height == 0:
        return None
    batch = run_batch(compile_plan([old, new], on), frame)
    before, after = batch.codes(0), batch.codes(1)
    if np.any(((after != 0) & (before == 0)) | ((after == 1) & (before == 2))):
        return "more_qualify"
    for row in frame.iter_rows(named=True):
        paid_before = amount(old, row, on)[0]
        paid_after = amount(new, row, on)[0]
        if paid_after is not None and (paid_before is None or paid_after > paid_before):
            return "amount_raised"
    return None


def raise_reason(
    session: Session, rule: Rule, current: RuleVersion | None, on: date | None = None
) -> str | None:
    """Why this auto_grant version could pay more than the one in force (None: it cannot).

    A new no-application rule, a removed or higher cap, a longer validity window, more kinds of
    input accepted, more enterprises qualifying or any recorded enterprise's amount rising are raises.
    """
    if rule.doc.mode != "auto_grant":
        return None
    if current is None or current.mode != "auto_grant":
        return "new_auto_grant"
    on = on or clock.today()
    old = rule_of_version(current)
    old_cap, new_cap = _cap_on(old, on), _cap_on(rule, on)
    if old_cap is not None and (new_cap is None or new_cap > old_cap):
        return "cap_raised"
    if rule.doc.valid_from < old.doc.valid_from or (
        old.doc.valid_to is not None
        and (rule.doc.valid_to is None or rule.doc.valid_to > old.doc.valid_to)
    ):
        return "window_longer"
    accepted_before = set(old.doc.accept_sources or _ALL_SOURCES)
    if not set(rule.doc.accept_sources or _ALL_SOURCES) <= accepted_before:
        return "more_sources"
    return _registry_raise(session, old, rule, on)


def review_reason(
    session: Session, rule: Rule, current: RuleVersion | None, moved: bool, on: date | None = None
) -> str | None:
    """Why the version waits for a second person: a move, or an auto_grant raise (None: it does not)."""
    return "moved" if moved else raise_reason(session, rule, current, on)


def submit(
    session: Session, rule: Rule, user: User, note: str = "", on: date | None = None
) -> Outcome:
    """Submit a checked rule: published at once, or stored for review when it needs a second person."""
    current = published_version(session, rule.id)
    owner = current.department if current is not None else rule.doc.department
    _require(session, user, owner)
    if current is not None and current.hash == rule.hash:
        raise WorkflowError("与现行版本相同,无需提交", "identical to the published version")
    moved = current is not None and department_key(session, current.department) != department_key(
        session, rule.doc.department
    )
    waiting = session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule.id, RuleVersion.status == REVIEW)
    ).all()
    for old in waiting:  # a newer submission replaces one still waiting
        old.status = "rejected"
        old.review_note = f"被 {user.username} 的新提交取代 / superseded by a newer submission"
    now = utcnow()
    version = new_version(
        session,
        rule,
        status=REVIEW,
        created_at=now,
        created_by=user.username,
        submitted_by=user.username,
        submitted_at=now,
        review_note=note or None,
        moved_from=current.department if moved and current is not None else None,
    )
    session.add(version)
    session.flush()
    reason = review_reason(session, rule, current, moved, on)
    _audit(
        session,
        "rule.submitted",
        user,
        version,
        moved_from=version.moved_from,
        review_reason=reason,
    )
    if reason is not None:
        return Outcome(version, False)
    _publish(session, version, user, on)
    return Outcome(version, True)


def _get(session: Session, version_id: int) -> RuleVersion:
    version = session.get(RuleVersion, version_id)
    if version is None:
        raise MatchingError(f"no rule version {version_id}")
    return version


def approve(
    session: Session, version_id: int, user: User, note: str = "", on: date | None = None
) -> Outcome:
    """Record the review of a waiting version by a second person of its department and publish it."""
    version = _get(session, version_id)
    if version.status != REVIEW:
        raise WorkflowError(
            f"版本状态为 {version.status},不在审核中", f"version is {version.status}, not in review"
        )
    # a move is approved by the receiving department: the version names it
    _require(session, user, version.department)
    if user.username == version.submitted_by:
        raise RuleAccessError(
            "须由提交人以外的第二人审核", "a second person, not the submitter, must review it"
        )
    version.reviewed_by = user.username
    version.reviewed_at = utcnow()
    if note:
        version.review_note = note
    _audit(session, "rule.reviewed", user, version, submitted_by=version.submitted_by)
    _publish(session, version, user, on)
    return Outcome(version, True)


def reject(session: Session, version_id: int, user: User, note: str) -> RuleVersion:
    """Turn a waiting version down with a reason."""
    version = _get(session, version_id)
    if version.status != REVIEW:
        raise WorkflowError(
            f"版本状态为 {version.status},不在审核中", f"version is {version.status}, not in review"
        )
    _require(session, user, version.department)
    if not note.strip():
        raise WorkflowError("退回须填写理由", "a rejection needs a reason")
    version.status = "rejected"
    version.reviewed_by = user.username
    version.reviewed_at = utcnow()
    version.review_note = note
    _audit(session, "rule.rejected", user, version)
    return version


def _publish(session: Session, version: RuleVersion, user: User, on: date | None = None) -> None:
    """Make the version the one in force and re-match with the acting user as the ledger's actor."""
    current = published_version(session, version.rule_id)
    if current is not None and current.id != version.id:
        current.status = "retired"
    version.status = "published"
    version.published_by = user.username
    version.published_at = utcnow()
    session.flush()
    _audit(session, "rule.published", user, version, reviewed_by=version.reviewed_by)
    rematch_rule(session, version.rule_id, on, actor=user.username)


def withdraw(
    session: Session, rule_id: str, user: User, reason: str, on: date | None = None
) -> RuleVersion:
    """Withdraw a published rule: its results end and its pending grants are flagged."""
    version = published_version(session, rule_id)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    _require(session, user, version.department)
    if not reason.strip():
        raise WorkflowError("撤回须填写理由", "a withdrawal needs a reason")
    version.status = "withdrawn"
    version.withdrawn_by = user.username
    version.withdrawn_at = utcnow()
    version.review_note = reason
    affected = holders(session, rule_id)
    _audit(session, "rule.withdrawn", user, version, reason=reason)
    session.flush()
    if affected:
        # re-laid out without the rule, their results of it end (published as ineligible)
        match(session, affected, on=on or clock.today(), actor=user.username)
    return version
