"""The special funds as new users would try them, through both halves: publish a call and see it
pushed to the fitting enterprises; apply as two enterprises (one to confirm, which supplies its
data); review county → city → province with one returned for correction and resubmitted; 公示;
award within a budget that does not cover everyone; pay (another person builds the payment
file); report performance — and the access checks between regions and roles on the way."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import scopes
from huiqi.accounts import service as accounts
from huiqi.funds import awarding, outcomes, review
from huiqi.funds import service as funds
from huiqi.funds.models import BudgetLine, PerformanceTarget
from huiqi.funds.review import Decision
from huiqi.funds.schemas import ApplicationStatus, CallStatus, PerformanceStatus, ReviewDecision
from huiqi.grants import service as grants
from huiqi.grants.schemas import BankAccountInput, GrantFourEyes
from huiqi.notify.models import Notification
from tests.funds.enterprise_world import DEPT, ELIGIBLE, ON, PASSWORD, PDF, TO_CONFIRM, build


def officer(session: Session, name: str, prefix: str | None = None) -> object:
    user = accounts.create_user(
        session, username=name, password=PASSWORD, role="officer", department=DEPT
    )
    if prefix:
        scopes.set_region_prefix(session, user, prefix)
    return user


def test_publish_apply_review_award_pay_and_report(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    world = build(db_session, monkeypatch, tmp_path)
    s = world.session
    # the budget covers one full award of the two: the ranking decides
    world.call.budget_fen = 800_000
    world.call.performance = {
        "reports": 1,
        "interval_months": 12,
        "pass_ratio": "0.9",
        "targets": [{"key": "revenue", "name_zh": "营业收入", "unit": "万元"}],
    }
    published = funds.publish_call(s, world.officer, world.call.id)
    assert (published.eligible, published.to_confirm) == (1, 1)
    pushed = {
        n.credit_code for n in s.scalars(select(Notification).where(Notification.topic == "funds"))
    }
    assert pushed == {ELIGIBLE, TO_CONFIRM}
    # two enterprises apply; the one to confirm supplies its head count first
    ids = {}
    for user, key in ((world.eligible, "a"), (world.to_confirm, "b")):
        app = funds.start(s, user, world.call.id)
        if user is world.to_confirm:
            assert app.eligibility == "unknown"
            funds.correct(s, user, app.id, {"employees": "60"}, year=2024)
            assert app.eligibility == "eligible"
        funds.save(
            s,
            user,
            app.id,
            funds.Details(
                project_name="扩产项目", requested_fen=500_000, targets={"revenue": "3000"}
            ),
        )
        funds.add_material(s, user, app.id, "plan", "方案.pdf", PDF, data_dir=world.data_dir)
        funds.submit(s, user, app.id, declared=True, idempotency_key=key)
        ids[key] = app.id
    a, b = (
        funds.own_application(s, u, ids[k])
        for u, k in ((world.eligible, "a"), (world.to_confirm, "b"))
    )
    county_lz, county_ts = officer(s, "county-lz", "620102"), officer(s, "county-ts", "620502")
    city_lz, city_ts = officer(s, "city-lz", "6201"), officer(s, "city-ts", "6205")
    province, cashier = world.officer, officer(s, "cashier")
    assert cashier is not province
    # regions: each county sees only its own; another department sees nothing
    assert [x.id for x in review.queue(s, county_lz)] == [a.id]  # type: ignore[arg-type]
    assert [x.id for x in review.queue(s, county_ts)] == [b.id]  # type: ignore[arg-type]
    with pytest.raises(review.ReviewNotFound):
        review.decide(s, county_lz, b.id, Decision(ReviewDecision.passed))  # type: ignore[arg-type]
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, world.other_officer, a.id)
    # county: a passes; b is returned for correction, corrected and resubmitted, then passes
    review.decide(s, county_lz, a.id, Decision(ReviewDecision.passed), today=ON)  # type: ignore[arg-type]
    review.decide(
        s,
        county_ts,
        b.id,  # type: ignore[arg-type]
        Decision(ReviewDecision.returned, "请上传加盖公章的项目实施方案", return_days=5),
        today=ON,
    )
    assert b.status == ApplicationStatus.returned and b.return_deadline is not None
    funds.add_material(
        s, world.to_confirm, b.id, "plan", "方案(盖章).pdf", PDF, data_dir=world.data_dir
    )
    funds.submit(s, world.to_confirm, b.id, declared=True, idempotency_key="b2")
    assert b.status == ApplicationStatus.in_review and b.stage_index == 0
    assert [x.id for x in review.queue(s, county_ts)] == [b.id]  # type: ignore[arg-type]
    review.decide(s, county_ts, b.id, Decision(ReviewDecision.passed), today=ON)  # type: ignore[arg-type]
    # city, then the province scores
    review.decide(s, city_lz, a.id, Decision(ReviewDecision.passed), today=ON)  # type: ignore[arg-type]
    review.decide(s, city_ts, b.id, Decision(ReviewDecision.passed), today=ON)  # type: ignore[arg-type]
    review.decide(
        s, province, a.id, Decision(ReviewDecision.scored, "增长快", {"growth": "88"}), today=ON
    )
    review.decide(
        s, province, b.id, Decision(ReviewDecision.scored, "增长稳", {"growth": "91"}), today=ON
    )
    # the ranked list: b (91) first, a (88) below the cut line
    plan = awarding.plan(s, world.call)
    assert [line.candidate.application_id for line in plan.ranked.awarded] == [b.id]
    assert plan.ranked.cut_rank == 2
    # 公示, then approval after the period: the award enters the grant ledger
    world.call.status = CallStatus.in_review  # the window has closed
    awarding.start_publicity(s, province, world.call.id, today=ON)
    grants.set_bank_account(
        s,
        TO_CONFIRM,
        BankAccountInput.parse("天水农商银行", "天水乙材料有限公司", "6230001234567890"),
        actor="t",
    )
    after = (world.call.publicity_to or ON) + timedelta(days=1)
    report = awarding.approve(s, province, world.call.id, today=after)
    assert report.awarded == [b.id] and report.cut == [a.id]
    line = s.get(BudgetLine, world.call.budget_line_id, populate_existing=True)
    assert line is not None and line.consumed_fen == 500_000 <= line.budget_fen
    assert a.status == ApplicationStatus.rejected and "分数线" in (a.decision_reason or "")
    # pay: not by the approver; by a second person
    with pytest.raises(GrantFourEyes):
        grants.create_disbursement(s, actor=province.username, grant_ids=report.grant_ids)
    grants.create_disbursement(s, actor="cashier", grant_ids=report.grant_ids)
    assert b.status == ApplicationStatus.paid and world.call.status == CallStatus.paid
    # the enterprise sees each step on its timeline, with a message each time
    kinds = [e.kind for e in funds.events_of(s, b.id)]
    for kind in ("submitted", "returned", "resubmitted", "scored", "publicity", "awarded", "paid"):
        assert kind in kinds, kind
    # performance: reported on time against the committed target
    (row,) = s.scalars(select(PerformanceTarget).where(PerformanceTarget.application_id == b.id))
    outcomes.submit_report(s, world.to_confirm, row.id, {"revenue": "2800"}, today=row.due_on)
    assert row.status == PerformanceStatus.on_time
    # the other enterprise cannot report for it
    with pytest.raises(outcomes.OutcomeNotFound):
        outcomes.submit_report(s, world.eligible, row.id, {"revenue": "1"}, today=date(2026, 1, 1))
