"""States and kinds of special funds, calls and applications, with Chinese and English labels."""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """Where a call for applications stands; paid is final."""

    draft = "draft"  # being prepared, not visible to enterprises
    open = "open"  # published; applications accepted until closes_at
    closed = "closed"  # the window has ended; review not yet begun
    in_review = "in_review"
    publicity = "publicity"  # 公示 of the proposed awards, objections possible
    awarded = "awarded"  # awards approved and handed to the grant ledger
    paid = "paid"


CALL_STATUS_LABELS: dict[str, tuple[str, str]] = {
    CallStatus.draft: ("草稿", "Draft"),
    CallStatus.open: ("申报中", "Open"),
    CallStatus.closed: ("已截止", "Closed"),
    CallStatus.in_review: ("评审中", "In review"),
    CallStatus.publicity: ("公示中", "Publicity"),
    CallStatus.awarded: ("已立项", "Awarded"),
    CallStatus.paid: ("已拨付", "Paid"),
}


class ApplicationStatus(StrEnum):
    """Where an application stands; rejected, paid and withdrawn are final."""

    draft = "draft"
    submitted = "submitted"  # waiting for the first review stage
    returned = "returned"  # sent back for correction, with a deadline
    rejected = "rejected"
    in_review = "in_review"  # at the stage ``stage_index`` of the call's stages
    scored = "scored"  # passed every stage, total score recorded
    publicity = "publicity"  # on the 公示 list
    approved = "approved"  # award approved after 公示
    awarded = "awarded"  # award written to the grant ledger
    paid = "paid"
    withdrawn = "withdrawn"


APPLICATION_STATUS_LABELS: dict[str, tuple[str, str]] = {
    ApplicationStatus.draft: ("草稿", "Draft"),
    ApplicationStatus.submitted: ("已提交", "Submitted"),
    ApplicationStatus.returned: ("退回修改", "Returned for correction"),
    ApplicationStatus.rejected: ("未通过", "Rejected"),
    ApplicationStatus.in_review: ("审核中", "In review"),
    ApplicationStatus.scored: ("已评分", "Scored"),
    ApplicationStatus.publicity: ("公示中", "Publicity"),
    ApplicationStatus.approved: ("已批准", "Approved"),
    ApplicationStatus.awarded: ("已立项", "Awarded"),
    ApplicationStatus.paid: ("已拨付", "Paid"),
    ApplicationStatus.withdrawn: ("已撤回", "Withdrawn"),
}

FINAL_APPLICATION_STATUSES = frozenset(
    {ApplicationStatus.rejected, ApplicationStatus.paid, ApplicationStatus.withdrawn}
)
# States in which the enterprise may still edit the application.
EDITABLE_APPLICATION_STATUSES = frozenset({ApplicationStatus.draft, ApplicationStatus.returned})


class StageLevel(StrEnum):
    """Who reviews at a stage: officers by region level, or assigned experts."""

    county = "county"  # officers whose region_prefix is a 6-digit county code
    city = "city"  # officers whose region_prefix is a 4-digit city code
    province = "province"  # officers of the fund's department without a region prefix
    expert = "expert"  # users assigned the application (user_assignment kind funds_application)


STAGE_LEVEL_LABELS: dict[str, tuple[str, str]] = {
    StageLevel.county: ("县级初审", "County review"),
    StageLevel.city: ("市级复审", "City review"),
    StageLevel.province: ("省级审定", "Provincial review"),
    StageLevel.expert: ("专家评审", "Expert review"),
}

# The assignment kind that limits an expert to the applications it was given.
EXPERT_ASSIGNMENT_KIND = "funds_application"


class ReviewDecision(StrEnum):
    """A reviewer's decision at a stage."""

    passed = "pass"
    returned = "return"
    rejected = "reject"
    scored = "score"


REVIEW_DECISION_LABELS: dict[str, tuple[str, str]] = {
    ReviewDecision.passed: ("通过", "Passed"),
    ReviewDecision.returned: ("退回修改", "Returned for correction"),
    ReviewDecision.rejected: ("不予通过", "Rejected"),
    ReviewDecision.scored: ("评分", "Scored"),
}


class EventKind(StrEnum):
    """Kinds of steps on an application's timeline."""

    created = "created"
    saved = "saved"
    material_added = "material_added"
    material_removed = "material_removed"
    corrected = "corrected"  # a registry value self-reported
    submitted = "submitted"
    resubmitted = "resubmitted"
    reviewed = "reviewed"  # a stage decision (detail: stage, decision)
    returned = "returned"
    rejected = "rejected"
    scored = "scored"
    publicity = "publicity"
    objection = "objection"
    approved = "approved"
    awarded = "awarded"
    paid = "paid"
    withdrawn = "withdrawn"
    performance = "performance"
    clawback = "clawback"


EVENT_LABELS: dict[str, tuple[str, str]] = {
    EventKind.created: ("创建草稿", "Draft created"),
    EventKind.saved: ("保存草稿", "Draft saved"),
    EventKind.material_added: ("上传材料", "Material uploaded"),
    EventKind.material_removed: ("删除材料", "Material removed"),
    EventKind.corrected: ("更正数据(自报)", "Data corrected (self-reported)"),
    EventKind.submitted: ("提交申报", "Submitted"),
    EventKind.resubmitted: ("修改后重新提交", "Resubmitted after correction"),
    EventKind.reviewed: ("审核", "Reviewed"),
    EventKind.returned: ("退回修改", "Returned for correction"),
    EventKind.rejected: ("未通过", "Rejected"),
    EventKind.scored: ("评分完成", "Scored"),
    EventKind.publicity: ("进入公示", "On publicity"),
    EventKind.objection: ("公示异议", "Objection"),
    EventKind.approved: ("批准", "Approved"),
    EventKind.awarded: ("立项", "Awarded"),
    EventKind.paid: ("拨付", "Paid"),
    EventKind.withdrawn: ("撤回", "Withdrawn"),
    EventKind.performance: ("绩效", "Performance"),
    EventKind.clawback: ("追回资金", "Clawback"),
}


class PerformanceStatus(StrEnum):
    """How an awarded project stands against its targets."""

    pending = "pending"  # not yet due, nothing reported
    on_time = "on_time"  # reported by the due date and the targets met
    late = "late"  # due date passed without a report, or reported after it
    failed = "failed"  # reported, targets not met


PERFORMANCE_STATUS_LABELS: dict[str, tuple[str, str]] = {
    PerformanceStatus.pending: ("待报送", "Pending"),
    PerformanceStatus.on_time: ("按期达标", "On time"),
    PerformanceStatus.late: ("逾期", "Late"),
    PerformanceStatus.failed: ("未达标", "Failed"),
}


class AwardKind(StrEnum):
    """How a call's award is computed."""

    grant = "grant"  # a sum decided in review, at most the call's per-award cap
    interest_subsidy = "interest_subsidy"  # 贷款贴息 from the application's loans


AWARD_KIND_LABELS: dict[str, tuple[str, str]] = {
    AwardKind.grant: ("资金补助/奖励", "Grant or reward"),
    AwardKind.interest_subsidy: ("贷款贴息", "Interest subsidy"),
}
