"""The officer half end to end on the service layer: county → city → province with one
application returned for correction, scoring, the ranked list within a budget that does not
cover everyone, 公示 with an objection, approval into the grant ledger, payment by a second
person, performance reports and a clawback — with the access checks between regions and roles."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import AuditEvent
from huiqi.funds import awarding, outcomes, review
from huiqi.funds.models import BudgetLine, PerformanceTarget
from huiqi.funds.models import FundApplicationEvent as Event
from huiqi.funds.review import Decision
from huiqi.funds.schemas import ApplicationStatus, CallStatus, PerformanceStatus, ReviewDecision
from huiqi.grants import service as grants
from huiqi.grants.schemas import BankAccountInput, GrantFourEyes
from huiqi.notify.models import Notification
from tests.funds.officer_fixtures import A, B, C, World, build

TODAY = date(2025, 4, 1)
PASS = Decision(ReviewDecision.passed, "材料齐全,数据一致")


@pytest.fixture
def world(db_session: Session) -> World:
    return build(db_session)


def ids(apps: list[object]) -> set[int]:
    return {a.id for a in apps}  # type: ignore[attr-defined]


def score(world: World, key: str, innovation: int, growth: int) -> None:
    review.decide(
        world.session,
        world.users["province"],
        world.apps[key].id,
        Decision(
            ReviewDecision.scored, "按评分标准评分", {"innovation": innovation, "growth": growth}
        ),
        today=TODAY,
    )


def test_the_whole_officer_path(world: World) -> None:
    s, u, apps = world.session, world.users, world.apps
    # each county reviewer sees only its county; the city and the province nothing yet
    assert ids(review.queue(s, u["county"])) == {apps["A"].id, apps["B"].id}
    assert ids(review.queue(s, u["county_qz"])) == {apps["C"].id}
    assert review.queue(s, u["city"]) == [] and review.queue(s, u["province"]) == []
    # county: A passes, B is returned for correction with a deadline, C passes in 秦州区
    review.decide(s, u["county"], apps["A"].id, PASS, today=TODAY)
    review.decide(
        s,
        u["county"],
        apps["B"].id,
        Decision(ReviewDecision.returned, "请补充近一年的审计报告", return_days=5),
        today=TODAY,
    )
    assert apps["B"].status == ApplicationStatus.returned
    assert apps["B"].return_deadline == date(2025, 4, 9)  # 5 working days, 清明 (4 Apr) skipped
    assert apps["B"].decision_reason == "请补充近一年的审计报告"
    review.decide(s, u["county_qz"], apps["C"].id, PASS, today=TODAY)
    # the enterprise corrects and resubmits (the enterprise half); the same stage sees it again
    apps["B"].status = ApplicationStatus.submitted
    s.flush()
    review.decide(s, u["county"], apps["B"].id, PASS, today=TODAY)
    # city level: each city its own
    assert ids(review.queue(s, u["city"])) == {apps["A"].id, apps["B"].id}
    assert ids(review.queue(s, u["city_ts"])) == {apps["C"].id}
    for key, who in (("A", "city"), ("B", "city"), ("C", "city_ts")):
        review.decide(s, u[who], apps[key].id, PASS, today=TODAY)
    # province scores by the criteria; the total is recorded in hundredths
    assert ids(review.queue(s, u["province"])) == {a.id for a in apps.values()}
    score(world, "A", 55, 35)
    score(world, "B", 50, 35)
    score(world, "C", 45, 35)
    assert [apps[k].status for k in "ABC"] == [ApplicationStatus.scored] * 3
    assert [apps[k].score_x100 for k in "ABC"] == [9000, 8500, 8000]
    # the ranked list: 450 万 budget, 200 万 each → A and B in, C below the cut line
    plan = awarding.plan(s, world.call)
    assert [line.candidate.application_id for line in plan.ranked.awarded] == [
        apps["A"].id,
        apps["B"].id,
    ]
    assert plan.ranked.cut_rank == 3 and plan.ranked.total_fen == 4_000_000
    # 公示, an objection (dismissed with a reason), approval only after the period
    awarding.start_publicity(s, u["province"], world.call.id, today=TODAY)
    assert world.call.status == CallStatus.publicity and world.call.publicity_to == date(2025, 4, 9)
    objection = awarding.object_to(
        s, u["enterprise_a"], apps["B"].id, "该企业项目与往年重复", today=TODAY
    )
    with pytest.raises(awarding.AwardingError, match="期满后"):
        awarding.approve(s, u["province"], world.call.id, today=TODAY)
    after = world.call.publicity_to + timedelta(days=1)
    with pytest.raises(awarding.AwardingConflict, match="异议未处理"):
        awarding.approve(s, u["province"], world.call.id, today=after)
    awarding.resolve_objection(
        s, u["province"], objection.id, upheld=False, reason="经核实为不同项目"
    )
    grants.set_bank_account(
        s,
        A,
        BankAccountInput.parse("甘肃银行", "兰州甲机械有限公司", "6217001234567890"),
        actor="t",
    )
    grants.set_bank_account(
        s,
        B,
        BankAccountInput.parse("兰州银行", "兰州乙科技有限公司", "6217009876543210"),
        actor="t",
    )
    report = awarding.approve(s, u["province"], world.call.id, today=after)
    assert report.awarded == [apps["A"].id, apps["B"].id] and report.cut == [apps["C"].id]
    assert apps["C"].status == ApplicationStatus.rejected and "分数线" in (
        apps["C"].decision_reason or ""
    )
    line = s.get(BudgetLine, world.line.id, populate_existing=True)
    assert line is not None and line.consumed_fen == 4_000_000
    with pytest.raises(awarding.AwardingConflict):
        awarding.approve(s, u["province"], world.call.id, today=after)
    # payment: the approver may not build the payment file; a colleague does
    grant_ids = report.grant_ids
    with pytest.raises(GrantFourEyes):
        grants.create_disbursement(s, actor="province", grant_ids=grant_ids)
    grants.create_disbursement(s, actor="province-cashier", grant_ids=grant_ids)
    assert [apps[k].status for k in "AB"] == [ApplicationStatus.paid] * 2
    assert world.call.status == CallStatus.paid
    # performance: A reports on time and fails nothing; B never reports and is flagged late
    rows = s.scalars(
        select(PerformanceTarget).where(PerformanceTarget.application_id == apps["A"].id)
    ).all()
    assert len(rows) == 1 and rows[0].due_on == date(2026, 4, 10)
    assert rows[0].targets[0]["target"] == "3000"
    with pytest.raises(outcomes.OutcomeError, match="营业收入"):
        outcomes.submit_report(s, u["enterprise_a"], rows[0].id, {}, today=date(2026, 4, 10))
    outcomes.submit_report(
        s, u["enterprise_a"], rows[0].id, {"revenue": "2400"}, "项目已完工", today=date(2026, 4, 10)
    )
    assert rows[0].status == PerformanceStatus.on_time  # 2400 ≥ 80% of 3000
    flagged = outcomes.flag_overdue(s, date(2026, 6, 1))
    assert [r.application_id for r in flagged] == [apps["B"].id]
    standing = outcomes.standing(s, apps["B"])
    assert standing.late and standing.failed and standing.proposed_clawback_fen == 2_000_000
    outcomes.clawback(s, u["province"], apps["B"].id, 2_000_000, "结项报告逾期未报")
    assert grants.clawbacks_fen(s, apps["B"].grant_id or 0) == 2_000_000
    assert grants.verify_ledger(s, grant_ids) == []
    # every decision left who and why: audit, the timeline and a message to the enterprise
    audited = {e.event for e in s.scalars(select(AuditEvent))}
    assert {
        "funds.review.pass",
        "funds.review.return",
        "funds.review.score",
        "funds.publicity",
    } <= audited
    assert {
        "funds.approved",
        "funds.objection",
        "funds.objection_resolved",
        "funds.clawback",
    } <= audited
    kinds = [e.kind for e in s.scalars(select(Event).where(Event.application_id == apps["B"].id))]
    for kind in (
        "returned",
        "reviewed",
        "scored",
        "publicity",
        "objection",
        "approved",
        "awarded",
        "paid",
        "clawback",
    ):
        assert kind in kinds, kind
    subjects = [
        n.subject for n in s.scalars(select(Notification).where(Notification.credit_code == B))
    ]
    assert any("退回修改" in x for x in subjects) and any("已批准立项" in x for x in subjects)
    assert any("已拨付" in x for x in subjects) and any("追回" in x for x in subjects)
    subjects_c = [
        n.subject for n in s.scalars(select(Notification).where(Notification.credit_code == C))
    ]
    assert any("评审结果" in x for x in subjects_c)


def test_access_between_regions_levels_and_roles(world: World) -> None:
    s, u, apps = world.session, world.users, world.apps
    # another county's reviewer cannot see, let alone decide
    with pytest.raises(review.ReviewNotFound):
        review.decide(s, u["county_qz"], apps["A"].id, PASS)
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, u["county_qz"], apps["A"].id)
    # the city of the county may see the file but not decide at the county stage
    assert review.get_for(s, u["city"], apps["A"].id) is apps["A"]
    with pytest.raises(review.ReviewForbidden, match="不属于您的审核范围"):
        review.decide(s, u["city"], apps["A"].id, PASS)
    # another department's provincial officer sees nothing of this fund
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, u["other_dept"], apps["A"].id)
    with pytest.raises(review.ReviewForbidden):
        awarding.start_publicity(s, u["other_dept"], world.call.id)
    # enterprises never review
    assert review.queue(s, u["enterprise_a"]) == []
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, u["enterprise_a"], apps["A"].id)


def test_rejection_needs_a_reason_and_scores_stay_in_range(world: World) -> None:
    s, u, apps = world.session, world.users, world.apps
    with pytest.raises(review.ReviewError, match="须填写理由"):
        review.decide(s, u["county"], apps["A"].id, Decision(ReviewDecision.rejected, "  "))
    review.decide(s, u["county"], apps["A"].id, Decision(ReviewDecision.rejected, "不属于支持范围"))
    assert apps["A"].status == ApplicationStatus.rejected
    with pytest.raises(review.ReviewConflict):
        review.decide(s, u["county"], apps["A"].id, PASS)
    with pytest.raises(review.ReviewError, match="0 到 60"):
        review.score_total(world.call, {"innovation": "61", "growth": "1"})
    with pytest.raises(review.ReviewError, match="成长性"):
        review.score_total(world.call, {"innovation": "1"})
    assert review.score_total(world.call, {"innovation": "50.5", "growth": "30"}) == (
        {"innovation": "50.5", "growth": "30"},
        8050,
    )


def test_checks_find_changed_data_duplicates_and_risk(world: World) -> None:
    from huiqi.enterprise import service as registry
    from tests.funds.officer_fixtures import submit

    s, apps = world.session, world.apps
    registry.apply_changes(
        s, A, {"revenue": 1_800 * 1_000_000}, source="税务", as_of=date(2025, 3, 1), year=2024
    )
    apps["A"].project_code = "GX-2025-001"
    other_call = world.call
    dup = submit(
        s, other_call, A, "兰州甲机械有限公司", requested_fen=1, project_code="GX-2025-001"
    )
    checks = {c["code"]: c for c in review.run_checks(s, apps["A"]) if not c["ok"]}
    changed = checks["data_changed"]
    assert changed["field"] == "revenue@2024" and "企业库现为" in changed["zh"]
    assert changed["at_submission"] == "2500 万元" and changed["now"] == "1800 万元"
    assert checks["duplicate_funding"]["application_id"] == dup.id
    assert "risk_no_bank_account" in checks


def test_a_missed_target_fails_the_project_and_proposes_the_clawback(world: World) -> None:
    from huiqi.funds.models import PerformanceTarget as Row

    s, apps = world.session, world.apps
    app = apps["A"]
    app.status, app.award_fen = ApplicationStatus.paid, 2_000_000
    s.flush()
    awarding.schedule_reports(s, world.call, app, date(2025, 5, 6))
    (row,) = s.scalars(select(Row).where(Row.application_id == app.id)).all()
    outcomes.submit_report(
        s, world.users["enterprise_a"], row.id, {"revenue": "2399"}, today=date(2026, 5, 6)
    )
    assert row.status == PerformanceStatus.failed and "未达标" in row.note
    standing = outcomes.standing(s, app)
    assert standing.failed and standing.proposed_clawback_fen == 2_000_000
    with pytest.raises(outcomes.OutcomeError, match="已报送"):
        outcomes.submit_report(s, world.users["enterprise_a"], row.id, {"revenue": "3000"})
