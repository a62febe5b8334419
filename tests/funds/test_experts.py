"""Experts review only the applications assigned to them, and only after declaring no conflict
of interest; with a conflict the file stays closed; the stage completes when every assigned
expert without a conflict has scored, with the mean as the stage's score."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from huiqi.funds import review
from huiqi.funds.review import Decision
from huiqi.funds.schemas import ApplicationStatus, ReviewDecision
from tests.funds.officer_fixtures import World, build, make_call, submit, user

TODAY = date(2025, 4, 1)
EXPERT_STAGES = [
    {"key": "county", "level": "county", "days": 5},
    {"key": "expert", "level": "expert", "days": 10},
    {"key": "province", "level": "province", "days": 10},
]


@pytest.fixture
def world(db_session: Session) -> World:
    return build(db_session)


def test_experts_declare_then_score_only_what_they_were_given(world: World) -> None:
    s, u = world.session, world.users
    call = make_call(
        s, world.fund, world.line, budget_fen=1_000_000, stages=EXPERT_STAGES, title="专家评审批次"
    )
    from tests.funds.officer_fixtures import A, B

    app = submit(s, call, A, "兰州甲机械有限公司", requested_fen=100_000)
    other = submit(s, call, B, "兰州乙科技有限公司", requested_fen=100_000)
    for a in (app, other):
        review.decide(s, u["county"], a.id, Decision(ReviewDecision.passed), today=TODAY)
    second = user(s, "expert-li", department="专家库")
    conflicted = user(s, "expert-zhao", department="专家库")
    # only the province assigns; a county officer may not
    with pytest.raises(review.ReviewForbidden):
        review.assign_expert(s, u["county"], app.id, u["expert"])
    for e in (u["expert"], second, conflicted):
        review.assign_expert(s, u["province"], app.id, e)
    # before the declaration: listed (to declare) but the file is closed and nothing is decided
    assert [a.id for a in review.queue(s, u["expert"])] == [app.id]
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, u["expert"], app.id)
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, u["expert"], other.id)  # never assigned
    scores = Decision(ReviewDecision.scored, "创新突出", {"innovation": "50", "growth": "30"})
    with pytest.raises(review.ReviewNotFound):
        review.decide(s, u["expert"], app.id, scores)
    # a conflict closes the file for good and needs a statement
    with pytest.raises(review.ReviewError, match="须填写理由"):
        review.declare(s, conflicted, app.id, has_conflict=True, statement="")
    review.declare(s, conflicted, app.id, has_conflict=True, statement="曾任该企业技术顾问")
    with pytest.raises(review.ReviewConflict):
        review.declare(s, conflicted, app.id, has_conflict=False, statement="")
    with pytest.raises(review.ReviewNotFound):
        review.get_for(s, conflicted, app.id)
    assert review.queue(s, conflicted) == []
    # the two others declare and score; experts do not simply pass
    review.declare(s, u["expert"], app.id, has_conflict=False, statement="")
    review.declare(s, second, app.id, has_conflict=False, statement="")
    assert review.get_for(s, u["expert"], app.id) is app
    with pytest.raises(review.ReviewError, match="评分标准"):
        review.decide(s, u["expert"], app.id, Decision(ReviewDecision.passed))
    review.decide(s, u["expert"], app.id, scores, today=TODAY)
    assert (
        app.stage_index == 1 and app.status == ApplicationStatus.in_review
    )  # waits for the second
    review.decide(
        s,
        second,
        app.id,
        Decision(ReviewDecision.scored, "成长性一般", {"innovation": "40", "growth": "20"}),
        today=TODAY,
    )
    assert app.stage_index == 2 and app.score_x100 == 7000  # mean of 80 and 60
    # the county reviewer cannot score at its own stage
    with pytest.raises(review.ReviewError, match="评分在专家评审或省级审定环节"):
        review.decide(s, u["county"], world.apps["A"].id, scores)
