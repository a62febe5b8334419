"""notify_results on real matching output: one notification per (enterprise, rule, rule
version, result, stored state replaced); a rerun creates none."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.events import NO_PREVIOUS, ChangeSet, ResultChange, RuleFacts, of_mode
from huiqi.matching import service as matching
from huiqi.notify import service
from huiqi.notify.models import Notification
from tests.grants.conftest import GRAD_RULE, ON, A, matched  # noqa: F401  (fixture)


def test_results_notify_exactly_once(db_session: Session, matched: list[ResultChange]) -> None:  # noqa: F811
    created = service.notify_results(db_session, matched)
    wanted = [c for c in matched if c.result == "eligible" or (c.result == "unknown" and c.missing)]
    assert len(created) == len(wanted) > 0
    grad = next(n for n in created if n.credit_code == A and n.rule_id == GRAD_RULE)
    assert grad.topic == "policy_match" and grad.rule_version == "1"
    assert "免申即享" in grad.subject and "36,450.00 元" in grad.body
    assert "甘工信发〔2020〕351号 (二十二)" in grad.body and grad.link == f"/notify/inbox/{grad.id}"
    unknown = next(n for n in created if n.topic == "data_request")
    assert "缺少的数据" in unknown.body
    # the same results again, and a rerun of matching, add nothing
    assert service.notify_results(db_session, matched) == []
    assert service.notify_results(db_session, matching.run_matching(db_session, ON)) == []
    count = db_session.scalar(select(func.count()).select_from(Notification))
    assert count == len(created)
    # a new rule version is news again
    bumped = [ResultChange(A, GRAD_RULE, "2", "eligible", mode="auto_grant")]
    assert len(service.notify_results(db_session, bumped)) == 1


def test_matching_run_creates_notifications_and_grants_in_its_transaction(
    db_session: Session,
) -> None:
    from huiqi.grants.models import Grant
    from tests.grants.conftest import B, C, add

    add(db_session, A, "兰州甲机械有限公司", 40, 2500, 3)
    add(db_session, B, "兰州乙科技有限公司", 8, 200, 8)
    add(db_session, C, "天水丙制造有限公司", 500, 30000, 2)
    matching.load_rules(db_session)
    changed = matching.run_matching(db_session, ON)
    wanted = [c for c in changed if c.result == "eligible" or (c.result == "unknown" and c.missing)]
    per_code: dict[str, int] = {}
    for c in wanted:
        per_code[c.credit_code] = per_code.get(c.credit_code, 0) + 1
    # up to three news per enterprise come one by one, more as one summary
    expected = sum(n if n <= service.SINGLES_UP_TO else 1 for n in per_code.values())
    notes = db_session.scalar(select(func.count()).select_from(Notification))
    assert notes == expected > 0
    granted = set(db_session.scalars(select(Grant.credit_code)))
    assert granted == {A, B}
    # Matching again changes nothing, so nothing new is created.
    assert matching.run_matching(db_session, ON) == []
    assert db_session.scalar(select(func.count()).select_from(Notification)) == notes


def test_a_change_set_is_told_as_its_changes_are() -> None:
    """Column-wise news (a matching run's) give the very messages, keys and covers the same
    news as objects give: singles for few, one summary for many, capped in length."""
    rules = tuple(
        RuleFacts(f"rule-{r:02d}", "2", f"政策{r}", "auto_grant" if r == 0 else "push", "依据")
        for r in range(14)
    )
    few = [(0, r, 1, "") for r in (0, 3)] + [(0, 5, 2, "revenue")]
    many = [(1, r, 1, "") for r in range(12)] + [(1, 12, 2, "revenue,employees"), (1, 13, 2, "")]
    rows = few + many
    changes = ChangeSet(
        rules,
        (("91620102MA72H8K3X0", "甲公司"), ("91620102MA72H8K4X8", "")),
        np.asarray([e for e, _, _, _ in rows], dtype=np.int32),
        np.asarray([r for _, r, _, _ in rows], dtype=np.int32),
        np.asarray([x for _, _, x, _ in rows], dtype=np.int8),
        np.full(len(rows), NO_PREVIOUS, dtype=np.int8),
        np.asarray([m for _, _, _, m in rows], dtype=object),
        {0: 1_000_000},
    )
    as_set = service.grouped_result_notes(changes)
    as_objects = service.grouped_result_notes(list(changes))
    assert as_set == as_objects and len(as_set) == 4  # three singles and one summary
    summary = as_set[-1]
    assert summary.dedupe_key.startswith("matchset:91620102MA72H8K4X8:")
    assert summary.covers == tuple(f"rule-{r:02d}" for r in range(12))
    assert "……等共 12 项" in summary.body and "「政策12」缺少:营业收入、从业人员" in summary.body
    assert "政策13" not in summary.body  # unknown without missing data asks nothing
    assert changes[0].amount_fen == 1_000_000 and changes[2].missing == ("revenue",)
    assert [c.rule_id for c in of_mode(changes, "auto_grant")] == ["rule-00", "rule-00"]
    # the stored states the news replace are in every key, singles' and summaries' alike
    stamped = dataclasses.replace(changes, since=("18f3a", "18f3b"))
    notes = service.grouped_result_notes(stamped)
    assert notes == service.grouped_result_notes(list(stamped))
    assert all(n.dedupe_key.endswith("@18f3a") for n in notes[:3])
    assert notes[-1].dedupe_key != summary.dedupe_key


def test_a_changed_amount_is_told_once_each_time_it_changes(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 免申即享 amount that changes under the same rule version is news: told once (the
    same batch run again finds its key), and again when it changes back."""
    from huiqi import events
    from huiqi.enterprise import service as registry
    from huiqi.events import EnterpriseChanged
    from tests.grants.conftest import PER_GRADUATE_FEN, add

    add(db_session, A, "兰州甲机械有限公司", 40, 2500, 3)
    matching.load_rules(db_session)
    matching.run_matching(db_session, ON)
    # the registry change is matched below on ON, not by the change's own handler on today
    monkeypatch.setitem(events.bus.handlers, EnterpriseChanged, [])

    def hires(n: int) -> list[Notification]:
        registry.apply_changes(
            db_session,
            A,
            {"graduate_hires": n, "graduate_insurance_paid": n * PER_GRADUATE_FEN},
            source="税务",
            as_of=date(2024, 6, 1),
            year=2023,
        )
        before = db_session.scalar(select(func.max(Notification.id))) or 0
        # a run that dies before its commit, then the run again: the same message, once
        attempt = db_session.begin_nested()
        matching.run_matching(db_session, ON)
        lost = db_session.scalars(select(Notification.dedupe_key).where(Notification.id > before))
        lost_keys = sorted(lost)
        attempt.rollback()
        matching.run_matching(db_session, ON)
        told = db_session.scalars(
            select(Notification).where(Notification.id > before).order_by(Notification.id)
        ).all()
        assert sorted(n.dedupe_key for n in told) == lost_keys
        return list(told)

    more = hires(4)
    assert [(n.rule_id, n.rule_version) for n in more] == [(GRAD_RULE, "1")]
    assert "48,600.00 元" in more[0].body and "@" in more[0].dedupe_key
    back = hires(3)
    assert [n.rule_id for n in back] == [GRAD_RULE] and "36,450.00 元" in back[0].body
    assert back[0].dedupe_key != more[0].dedupe_key
    # nothing changed: nothing told
    assert matching.run_matching(db_session, ON) == []
    assert db_session.scalar(select(func.max(Notification.id))) == back[0].id
