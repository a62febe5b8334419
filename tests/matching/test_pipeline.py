"""The matching pipeline at scale: batches that commit and resume, set-based propagation with
exactly-once notifications, pushes under caps and digests, and incremental re-evaluation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.enterprise import service as registry
from huiqi.enterprise.population import generate, load_rows
from huiqi.grants.models import Grant
from huiqi.matching import run as matching_run
from huiqi.matching import service
from huiqi.matching.models import MatchRun, MatchState
from huiqi.notify import service as notify
from huiqi.notify.models import Notification, OutboxMessage, OutboxStatus
from huiqi.notify.schemas import SettingsInput
from huiqi.reports import funnel
from huiqi.rules.batch import run_batch
from huiqi.rules.library import load_library
from huiqi.rules.plan import compile_plan

ON = date(2025, 6, 30)


def count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def province(db_session: Session) -> Session:
    """120 generated enterprises (contacts with consent included), then the rule library."""
    load_rows(db_session, generate(120, seed=7), today=ON)
    service.load_rules(db_session)
    return db_session


class Killed(Exception):
    """Stands for kill -9 between two batches."""


def expected_state(session: Session) -> dict[str, int]:
    """What a complete run must leave, computed independently with the batch engine."""
    pairs = service.published_rules(session)
    frame = registry.current_frame(session)
    batch = run_batch(compile_plan([r for _, r in pairs], ON), frame)
    stored = sum(
        batch.counts(r)["eligible"] + batch.counts(r)["unknown"] for r in range(len(pairs))
    )
    return {"results": stored}


def test_killed_run_resumes_to_the_same_final_state(province: Session) -> None:
    session = province
    batches: list[int] = []

    def checkpoint() -> None:
        batches.append(1)
        if len(batches) == 3:
            raise Killed  # before the third batch commits
        session.commit()

    with pytest.raises(Killed):
        service.match(session, on=ON, batch_size=25, checkpoint=checkpoint)
    session.rollback()
    # two batches of 25 enterprises were committed, with their grants and notifications
    done_codes = set(session.scalars(select(MatchState.credit_code)))
    assert 0 < len(done_codes) <= 50
    notes_before = count(session, Notification)
    assert notes_before > 0

    resumed = service.match(session, on=ON, batch_size=25, checkpoint=session.commit)
    # the finished batches are skipped by their input hashes; only the other 70 are evaluated
    assert (resumed.batches, resumed.skipped) == (5, 50)
    assert resumed.evaluated == 70 * len(service.published_rules(session))
    assert resumed.changes > 0
    stored = service.stored_results(session)
    assert len(stored) == expected_state(session)["results"]
    assert count(session, MatchState) == 120  # one packed row per enterprise
    news: dict[str, int] = {}
    for m in stored:
        if m.result == "eligible" or m.missing:
            news[m.credit_code] = news.get(m.credit_code, 0) + 1
    # one message per news up to three per enterprise, one summary beyond: none twice
    wanted = sum(n if n <= notify.SINGLES_UP_TO else 1 for n in news.values())
    assert count(session, Notification, Notification.credit_code.is_not(None)) == wanted
    assert count(session, Notification) == len(
        set(session.scalars(select(Notification.dedupe_key)))
    )
    # every notification got exactly the outbox rows its enterprise's channels call for
    per_note = dict(
        session.execute(
            select(OutboxMessage.notification_id, func.count()).group_by(
                OutboxMessage.notification_id
            )
        ).all()
    )
    subs = notify.subscriptions_for(
        session, sorted(set(session.scalars(select(Notification.credit_code))))
    )
    for note in session.scalars(select(Notification)):
        sub = subs.get(note.credit_code or "")
        channels = (
            0
            if sub is None or note.topic in (sub.muted_topics or [])
            else len(notify.active_channels(sub))
        )
        assert per_note.get(note.id, 0) == channels, note.dedupe_key
    grants = count(session, Grant)
    assert grants == sum(
        1
        for m in stored
        if m.rule_id == "gs351-22-graduate-social-insurance"
        and m.result == "eligible"
        and m.amount_fen is not None
    )
    # a third run finds nothing to do
    again = service.match(session, on=ON, batch_size=25)
    assert (again.changes, again.inserted, again.updated, again.skipped) == (0, 0, 0, 120)
    assert count(session, Notification) == wanted and count(session, Grant) == grants
    assert service.stale_results(session, ON) == []


def test_first_run_sends_one_summary_under_the_cap_and_digest(db_session: Session) -> None:
    code = "91620102MA72H8K3X0"
    registry.apply_changes(
        db_session,
        code,
        {"name": "兰州测试有限公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    notify.save_settings(
        db_session,
        code,
        SettingsInput.parse(email="boss@example.com", consent_email=True, daily_cap="1"),
        actor="test",
    )
    lib = load_library()
    base = lib.rules["gs351-10-procurement-small-micro"].source
    # twelve rules an enterprise in Gansu fits at once, as when a deployment starts
    for i in range(12):
        text = base.replace(
            "id: gs351-10-procurement-small-micro", f"id: gansu-wide-{i:02d}"
        ).replace("value: [small, micro]", "value: [large, medium, small, micro]")
        service.publish_rule(db_session, lib.parse_rule(text, f"r{i}.yaml"))
    registry.apply_changes(
        db_session,
        code,
        {"employees": 40, "revenue": 20_000_000_000},
        source="税务",
        as_of=date(2024, 5, 31),
        year=2023,
    )
    eligible = {m.rule_id for m in service.stored_results(db_session, results=["eligible"])}
    assert len(eligible) >= 12
    notes = db_session.scalars(select(Notification)).all()
    assert len(notes) == 1  # one summary, not one message per rule
    summary = notes[0]
    assert set(summary.covers or []) == eligible and summary.link == "/matching/mine"
    assert f"{len(eligible)} 项" in summary.subject and "「" in summary.body
    pushes = db_session.scalars(select(OutboxMessage)).all()
    assert [(m.channel, m.status) for m in pushes] == [("email", OutboxStatus.pending)]
    # the push funnel counts the summary for every rule it announced
    rows = {(r.rule_id, r.channel): r for r in funnel.funnel(db_session)}
    assert all(rows[(rid, "all")].notified == 1 for rid in eligible)
    assert all(rows[(rid, "email")].notified == 1 for rid in eligible)

    # one more rule later: a single message, over the daily cap of 1, so held for the digest
    extra = base.replace("id: gs351-10-procurement-small-micro", "id: gansu-wide-late").replace(
        "value: [small, micro]", "value: [large, medium, small, micro]"
    )
    service.publish_rule(db_session, lib.parse_rule(extra, "late.yaml"))
    service.rematch_rule(db_session, "gansu-wide-late", ON)
    late = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.not_in([m.id for m in pushes]))
    ).all()
    assert [m.status for m in late] == [OutboxStatus.held]
    digests = notify.build_digests(db_session, now=datetime.now(UTC) + timedelta(days=1))
    assert len(digests) == 1 and late[0].digest_id == digests[0].id


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[service.RunReport]:
    reports: list[service.RunReport] = []
    real = service.match

    def spy(*args: Any, **kwargs: Any) -> service.RunReport:
        report = real(*args, **kwargs)
        reports.append(report)
        return report

    # every re-match (registry change, rule change, parameter change) goes through matching_run.match
    monkeypatch.setattr(matching_run, "match", spy)
    return reports


def test_each_kind_of_change_evaluates_only_what_it_touches(
    province: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = province
    rules = len(service.published_rules(session))
    first = service.match(session, on=ON)
    assert first.evaluated == 120 * rules
    reports = _spy(monkeypatch)
    code = session.scalars(select(MatchState.credit_code).limit(1)).one()

    # a registry change re-matches that enterprise only, through the EnterpriseChanged event
    registry.apply_changes(
        session, code, {"employees": 7}, source="人社", as_of=date(2025, 6, 1), year=2024
    )
    assert [r.evaluated for r in reports] == [1 * rules]

    # asked again with nothing changed, every enterprise is skipped after one hash comparison
    # but the one the event re-matched as of today (its layout is of another date), for which
    # only the rules that read differently on the two dates are evaluated
    reports.clear()
    service.rematch_rule(session, "gs351-10-procurement-small-micro", ON)
    assert [r.skipped for r in reports] == [119] and 0 < reports[0].evaluated < rules

    # a rule change re-evaluates that rule for every enterprise, and every rule for those whose
    # codes it changed; only they are rewritten, the others move with their layout
    reports.clear()
    lib = load_library()
    source = lib.rules["gs351-10-procurement-small-micro"].source
    edited = lib.parse_rule(source.replace("[small, micro]", "[medium, small, micro]"), "x")
    before = dict(service.codes_of_rule(session, edited.id))
    last_note = session.scalar(select(func.max(Notification.id))) or 0
    service.publish_rule(session, edited)
    service.rematch_rule(session, edited.id, ON)
    (report,) = reports
    assert report.evaluated == 120 + report.updated * rules and report.inserted == 0
    assert 0 < report.changes and 0 < report.updated < 120
    assert report.updated + report.moved == 120
    # only enterprises whose result changed hear of it; the new version alone is no news
    after = dict(service.codes_of_rule(session, edited.id))
    moved = {c for c in after if after[c] != before.get(c, 0)}
    told = set(session.scalars(select(Notification.credit_code).where(Notification.id > last_note)))
    kept = {c for c in after if after[c] == before.get(c, 0) and after[c] != 0}
    assert moved and kept and told and told <= moved and report.changes == len(moved)
    assert {c.rule_id for c in service.stale_results(session, ON)} == set()

    # a parameter change re-evaluates (a parameter the rules read changes their layout)
    reports.clear()
    readers = service.rules_reading_parameters(session, {"small_profit_taxable_income_max"})
    assert readers and len(readers) < rules
    service.rematch_parameters(session, {"small_profit_taxable_income_max"}, ON)
    assert [r.skipped for r in reports] == [120]


def test_officer_page_shows_the_latest_run(
    client: TestClient, login_as: Any, db_session: Session
) -> None:
    run = MatchRun(
        status="running",
        phase="store",
        done=40_000,
        total=100_000,
        evaluated=12_000_000,
        written=51_000,
        changes=48_000,
        seconds={"evaluate": 3.2, "store": 1.1},
        started_at=datetime.now(UTC),
        heartbeat_at=datetime.now(UTC),
    )
    db_session.add(run)
    db_session.flush()
    login_as("officer")
    page = client.get("/rules/run-status")
    assert page.status_code == 200
    assert 'hx-trigger="every 2s"' in page.text and "40000 / 100000" in page.text
    assert "保存结果" in page.text
    run.status = "done"
    db_session.flush()
    assert "hx-trigger" not in client.get("/rules/run-status").text
    assert client.get("/rules").status_code == 200
