"""The enterprise half of special funds: publish a call, push it to the enterprises its rule
fits, apply pre-filled, correct by self-report, upload checked materials and submit once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.funds import service as funds
from huiqi.funds.errors import FundsConflict, FundsError, FundsForbidden, FundsNotFound
from huiqi.funds.models import FundApplication, FundApplicationEvent
from huiqi.funds.schemas import ApplicationStatus, CallStatus
from huiqi.funds.todo import todo
from huiqi.notify.models import Notification
from huiqi.policy.models import Policy
from tests.funds.enterprise_world import (
    ELIGIBLE,
    NOW,
    ON,
    OUTSIDER,
    PDF,
    PNG,
    TO_CONFIRM,
    World,
    build,
)


@pytest.fixture
def world(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, engine: object, tmp_path: Path
) -> World:
    return build(db_session, monkeypatch, tmp_path)


def ready(world: World, user: object, key: str = "k1") -> int:
    """A complete draft of the user's enterprise, submitted; returns its id."""
    s = world.session
    app = funds.start(s, user, world.call.id)  # type: ignore[arg-type]
    funds.save(s, user, app.id, funds.Details(project_name="扩产项目", requested_fen=300_000))  # type: ignore[arg-type]
    funds.add_material(s, user, app.id, "plan", "方案.pdf", PDF, data_dir=world.data_dir)  # type: ignore[arg-type]
    funds.submit(s, user, app.id, declared=True, idempotency_key=key)  # type: ignore[arg-type]
    return app.id


def test_publishing_files_the_call_and_pushes_to_fitting_enterprises(world: World) -> None:
    s = world.session
    done = funds.publish_call(s, world.officer, world.call.id)
    assert done.call.status == CallStatus.open
    assert (done.eligible, done.to_confirm) == (1, 1)
    policy = s.get(Policy, done.policy_id)
    assert policy is not None and policy.title == world.call.title
    notes = s.scalars(select(Notification).where(Notification.topic == "funds")).all()
    assert sorted(n.credit_code for n in notes) == sorted([ELIGIBLE, TO_CONFIRM])
    assert all(n.deadline == clock.beijing_day(world.call.closes_at) for n in notes)
    assert all("截止" in n.subject and n.link == f"/funds/calls/{world.call.id}" for n in notes)
    # publishing again is refused; the push is never repeated
    with pytest.raises(FundsConflict):
        funds.publish_call(s, world.officer, world.call.id)


def test_only_the_funds_department_sets_up_and_publishes(world: World) -> None:
    # another department's officer does not even see the draft
    with pytest.raises(FundsNotFound):
        funds.publish_call(world.session, world.other_officer, world.call.id)
    with pytest.raises(FundsForbidden):
        funds.add_budget_line(world.session, world.other_officer, world.fund, "另一科目", 1)
    # the budget lines never exceed the fund's annual budget
    with pytest.raises(FundsError):
        funds.add_budget_line(world.session, world.officer, world.fund, "超支科目", 90_000_000)


def test_application_is_prefilled_with_sources_and_eligibility(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.eligible, world.call.id)
    assert app.status == ApplicationStatus.draft and app.eligibility == "eligible"
    assert app.prefill["name"]["value"] == "兰州甲机械制造有限公司"
    assert app.prefill["name"]["source"] == "市场监管"
    assert app.prefill["revenue@2024"]["source"] == "税务"
    assert app.prefill["revenue@2024"]["as_of"] == "2025-05-31"
    assert app.region_code == "620102" and app.size_class == "small"
    assert {r["condition"] for r in app.eligibility_reasons} >= {"industrial", "is_sme"}
    # opening the call again finds the same draft
    assert funds.start(s, world.eligible, world.call.id).id == app.id


def test_to_confirm_enterprise_supplies_data_by_self_report(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.to_confirm, world.call.id)
    assert app.eligibility == "unknown"
    assert "employees@2024" not in app.prefill
    funds.correct(s, world.to_confirm, app.id, {"employees": "60"}, year=2024)
    assert app.eligibility == "eligible"
    assert app.prefill["employees@2024"]["self_reported"] is True
    assert app.corrections[-1]["field"] == "employees" and app.corrections[-1]["previous"] is None
    kinds = [e.kind for e in funds.events_of(s, app.id)]
    assert kinds == ["created", "corrected"]


def test_submission_is_idempotent_and_tells_the_enterprise(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app_id = ready(world, world.eligible, "same-key")
    app = funds.own_application(s, world.eligible, app_id)
    assert app.status == ApplicationStatus.submitted and app.declared_by == "ent-eligible"
    again = funds.submit(s, world.eligible, app_id, declared=True, idempotency_key="same-key")
    assert again.id == app_id
    submitted = s.scalars(
        select(FundApplicationEvent).where(
            FundApplicationEvent.application_id == app_id, FundApplicationEvent.kind == "submitted"
        )
    ).all()
    assert len(submitted) == 1
    note = s.scalar(
        select(Notification).where(Notification.link == f"/funds/applications/{app_id}")
    )
    assert note is not None and "申报已提交" in note.subject
    # without a key, a second submission of a submitted application is refused, not repeated
    with pytest.raises(FundsConflict):
        funds.submit(s, world.eligible, app_id, declared=True)


def test_refused_after_the_deadline(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.eligible, world.call.id)
    funds.save(s, world.eligible, app.id, funds.Details(project_name="项目", requested_fen=1000))
    funds.add_material(s, world.eligible, app.id, "plan", "方案.pdf", PDF, data_dir=world.data_dir)
    monkeypatch.setattr(clock, "now", lambda: world.call.closes_at + timedelta(seconds=1))
    with pytest.raises(FundsConflict) as err:
        funds.submit(s, world.eligible, app.id, declared=True)
    assert "截止" in err.value.message_zh and "北京时间" in err.value.message_zh
    assert app.status == ApplicationStatus.draft


def test_refused_over_the_quota(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, engine: object, tmp_path: Path
) -> None:
    world = build(db_session, monkeypatch, tmp_path, quota=1)
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    ready(world, world.eligible)
    funds.correct(
        s,
        world.to_confirm,
        funds.start(s, world.to_confirm, world.call.id).id,
        {"employees": "60"},
        year=2024,
    )
    with pytest.raises(FundsConflict) as err:
        ready(world, world.to_confirm, "k2")
    assert "名额" in err.value.message_zh


def test_materials_are_checked_by_content_and_size(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.eligible, world.call.id)
    # a PNG named .pdf is still a PNG: refused for the plan, accepted as the photo
    with pytest.raises(FundsError) as err:
        funds.add_material(
            s, world.eligible, app.id, "plan", "方案.pdf", PNG, data_dir=world.data_dir
        )
    assert "文件类型不符合要求" in err.value.message_zh and "PNG" in err.value.message_zh
    with pytest.raises(FundsError):
        funds.add_material(
            s,
            world.eligible,
            app.id,
            "plan",
            "a.pdf",
            PDF + b"0" * (1024 * 1024),
            data_dir=world.data_dir,
        )
    with pytest.raises(FundsError):
        funds.add_material(
            s, world.eligible, app.id, "plan", "a.exe", b"MZ\x90\x00", data_dir=world.data_dir
        )
    photo = funds.add_material(
        s, world.eligible, app.id, "photo", "site.pdf", PNG, data_dir=world.data_dir
    )
    assert photo.content_type == "image/png" and photo.size_bytes == len(PNG)
    assert photo.stored_path.startswith(f"funds/{app.id}/")
    # the required plan is missing: the submission names it
    funds.save(s, world.eligible, app.id, funds.Details(project_name="项目", requested_fen=1000))
    with pytest.raises(FundsError) as err:
        funds.submit(s, world.eligible, app.id, declared=True)
    assert "项目实施方案" in err.value.message_zh


def test_declaration_is_required(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.eligible, world.call.id)
    with pytest.raises(FundsError) as err:
        funds.submit(s, world.eligible, app.id, declared=False)
    assert "承诺" in err.value.message_zh


def test_an_enterprise_sees_only_its_own_applications(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app_id = ready(world, world.eligible)
    with pytest.raises(FundsNotFound):
        funds.own_application(s, world.to_confirm, app_id)
    with pytest.raises(FundsNotFound):
        funds.add_material(
            s, world.to_confirm, app_id, "plan", "x.pdf", PDF, data_dir=world.data_dir
        )
    assert funds.my_applications(s, world.to_confirm) == []
    assert [a.id for a in funds.my_applications(s, world.eligible)] == [app_id]


def test_ineligible_enterprise_is_told_why(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.start(s, world.outsider, world.call.id)
    assert app.credit_code == OUTSIDER and app.eligibility == "ineligible"
    funds.save(s, world.outsider, app.id, funds.Details(project_name="项目", requested_fen=1000))
    funds.add_material(s, world.outsider, app.id, "plan", "p.pdf", PDF, data_dir=world.data_dir)
    with pytest.raises(FundsError) as err:
        funds.submit(s, world.outsider, app.id, declared=True)
    assert "国民经济行业代码" in err.value.message_zh


def test_timeline_expects_each_stage_from_the_call(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app = funds.own_application(s, world.eligible, ready(world, world.eligible))
    steps = funds.milestones(s, app)
    assert [m.key for m in steps] == [
        "submitted",
        "stage-0",
        "stage-1",
        "stage-2",
        "scored",
        "publicity",
        "approved",
        "paid",
    ]
    assert steps[0].state == "done" and steps[0].done_on == clock.beijing_day(NOW)
    assert steps[1].state == "current"
    expected = [m.expected_on for m in steps[1:]]
    assert all(e is not None for e in expected) and expected == sorted(expected)  # type: ignore[type-var]
    # county review is expected 5 working days after the window closes
    close = clock.beijing_day(world.call.closes_at)
    assert steps[1].expected_on is not None and (steps[1].expected_on - close).days >= 5


def test_withdrawn_draft_frees_the_call_for_a_new_one(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    first = funds.start(s, world.eligible, world.call.id)
    funds.withdraw(s, world.eligible, first.id)
    assert funds.start(s, world.eligible, world.call.id).id != first.id


def _return_for_correction(world: World, app_id: int, days: int = 5) -> None:
    """What a county reviewer's return leaves behind (the review module's job)."""
    app = world.session.get(FundApplication, app_id)
    assert app is not None
    app.status = ApplicationStatus.returned
    app.decision_reason = "请补充现场照片"
    app.return_deadline = clock.today() + timedelta(days=days)


def test_a_returned_application_is_corrected_and_resubmitted_at_its_stage(world: World) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app_id = ready(world, world.eligible)
    app = funds.own_application(s, world.eligible, app_id)
    app.status, app.stage_index = ApplicationStatus.in_review, 1
    _return_for_correction(world, app_id)
    assert [i.zh for i in todo(s, world.eligible) if i.count] == ["被退回、需修改后重新提交的申报"]
    funds.add_material(s, world.eligible, app_id, "photo", "p.png", PNG, data_dir=world.data_dir)
    funds.submit(s, world.eligible, app_id, declared=True, idempotency_key="again")
    assert (app.status, app.stage_index, app.return_deadline) == (
        ApplicationStatus.in_review,
        1,
        None,
    )
    assert [e.kind for e in funds.events_of(s, app_id)][-1] == "resubmitted"


def test_a_correction_after_its_deadline_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    app_id = ready(world, world.eligible)
    _return_for_correction(world, app_id, days=2)
    monkeypatch.setattr(clock, "today", lambda: ON + timedelta(days=3))
    monkeypatch.setattr(clock, "now", lambda: NOW + timedelta(days=3))
    with pytest.raises(FundsConflict) as err:
        funds.submit(s, world.eligible, app_id, declared=True, idempotency_key="late")
    assert "修改期限" in err.value.message_zh


def test_drafts_near_the_deadline_are_a_to_do(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.session
    funds.publish_call(s, world.officer, world.call.id)
    funds.start(s, world.eligible, world.call.id)
    assert not any(i.count for i in todo(s, world.eligible))  # 14 days left
    monkeypatch.setattr(clock, "now", lambda: world.call.closes_at - timedelta(days=2))
    items = [i for i in todo(s, world.eligible) if i.count]
    assert [(i.count, i.href, i.urgent) for i in items] == [(1, "/funds/mine", True)]
    assert todo(s, world.officer) == []
