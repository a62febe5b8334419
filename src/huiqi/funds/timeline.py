"""An application's timeline: recorded steps, messages to the enterprise, and where it stands —
submitted, each review stage, scored, 公示, approved, paid — with expected dates from the call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts.models import User
from huiqi.core import clock
from huiqi.core.dates import add_working_days
from huiqi.funds.models import FundApplication, FundApplicationEvent, FundCall, FundReview
from huiqi.funds.schemas import STAGE_LEVEL_LABELS, ApplicationStatus, EventKind, StageLevel

# Working days from approval to the money in the account: the payment file, the treasury's
# transfer and the bank's booking (an assumption shown as "expected", never as a promise).
PAYMENT_WORKING_DAYS = 10
APPLICATION_LINK = "/funds/applications/{id}"


def record_event(
    session: Session,
    app: FundApplication,
    kind: str,
    *,
    actor: User | None,
    status_from: str | None,
    detail: dict[str, Any] | None = None,
) -> FundApplicationEvent:
    """Append a step to the application's timeline."""
    row = FundApplicationEvent(
        application_id=app.id,
        kind=kind,
        status_from=status_from,
        status_to=app.status,
        stage_index=app.stage_index,
        actor=actor.username if actor else "system",
        actor_id=actor.id if actor else None,
        at=clock.now(),
        detail=detail or {},
    )
    session.add(row)
    session.flush()
    return row


def tell_enterprise(
    session: Session,
    app: FundApplication,
    event: FundApplicationEvent,
    subject: str,
    body: str,
    en: tuple[str, str],
) -> None:
    """Send a step of the application to the enterprise (inbox and its push channels), once;
    `en` is the English subject and body."""
    from huiqi.notify.models import Topic
    from huiqi.notify.service import enqueue

    enqueue(
        session,
        credit_code=app.credit_code,
        topic=Topic.funds,
        subject=subject,
        body=body,
        link=APPLICATION_LINK.format(id=app.id),
        dedupe_key=f"funds-app:{app.id}:{event.id}",
        deadline=app.return_deadline if app.status == ApplicationStatus.returned else None,
        subject_en=en[0],
        body_en=en[1],
    )


def events_of(session: Session, app_id: int) -> list[FundApplicationEvent]:
    """The application's recorded steps in order."""
    return list(
        session.scalars(
            select(FundApplicationEvent)
            .where(FundApplicationEvent.application_id == app_id)
            .order_by(FundApplicationEvent.at, FundApplicationEvent.id)
        )
    )


@dataclass(frozen=True)
class Milestone:
    """One step of the way to the money: when it happened, or when it is expected."""

    key: str
    zh: str
    en: str
    state: str  # done | current | upcoming | stopped
    done_on: date | None
    expected_on: date | None


def stage_names(call: FundCall) -> list[tuple[str, str, int]]:
    """(zh, en, working days) of each review stage of the call, in order."""
    out = []
    for raw in call.stages or []:
        level = StageLevel(str(raw.get("level", "province")))
        zh, en = STAGE_LEVEL_LABELS[level]
        out.append(
            (
                str(raw.get("name_zh") or zh),
                str(raw.get("name_en") or en),
                int(raw.get("days") or 10),
            )
        )
    return out


def _stage_done_days(session: Session, app_id: int) -> dict[int, date]:
    """The Beijing day each stage was passed (its last passing or scoring decision)."""
    rows = session.execute(
        select(FundReview.stage_index, FundReview.created_at).where(
            FundReview.application_id == app_id, FundReview.decision.in_(("pass", "score"))
        )
    )
    out: dict[int, date] = {}
    for index, at in rows:
        day = clock.beijing_day(at)
        out[int(index)] = max(day, out.get(int(index), day))
    return out


def _first(events: list[FundApplicationEvent], *kinds: str) -> date | None:
    found = [e.at for e in events if e.kind in kinds]
    return clock.beijing_day(min(clock.aware(a) for a in found)) if found else None


_ORDER = [
    ApplicationStatus.submitted,
    ApplicationStatus.in_review,
    ApplicationStatus.scored,
    ApplicationStatus.publicity,
    ApplicationStatus.approved,
    ApplicationStatus.awarded,
    ApplicationStatus.paid,
]


def milestones(session: Session, app: FundApplication) -> list[Milestone]:
    """Submitted, each stage, scored, 公示, approved and paid: done with its day, or expected."""
    call = app.call
    events = events_of(session, app.id)
    stages = stage_names(call)
    passed = _stage_done_days(session, app.id)
    status = ApplicationStatus(app.status)
    stopped = status in (ApplicationStatus.rejected, ApplicationStatus.withdrawn)
    submitted_on = _first(events, EventKind.submitted)
    # Review begins once the window has closed (or on submission after it).
    start = max(d for d in (submitted_on, clock.beijing_day(call.closes_at)) if d is not None)
    reached = _ORDER.index(status) if status in _ORDER else -1
    all_passed = reached >= _ORDER.index(ApplicationStatus.scored)
    out: list[Milestone] = []
    out.append(
        Milestone(
            "submitted",
            "已提交",
            "Submitted",
            "done" if submitted_on else ("stopped" if stopped else "current"),
            submitted_on,
            None if submitted_on else clock.beijing_day(call.closes_at),
        )
    )
    cursor = start
    for i, (zh, en, days) in enumerate(stages):
        done = passed.get(i) if (i < app.stage_index or all_passed) else None
        expected = add_working_days(cursor, days)
        cursor = done or expected
        if done:
            state = "done"
        elif stopped or status == ApplicationStatus.draft:
            state = "stopped" if stopped and i >= app.stage_index else "upcoming"
        elif i == app.stage_index and status in (
            ApplicationStatus.submitted,
            ApplicationStatus.in_review,
            ApplicationStatus.returned,
        ):
            state = "current"
        else:
            state = "upcoming" if not all_passed else "done"
        out.append(Milestone(f"stage-{i}", zh, en, state, done, None if done else expected))
    rest = [
        ("scored", "评审完成", "Scored", (EventKind.scored,), 0),
        ("publicity", "公示", "Publicity", (EventKind.publicity,), 1),
        (
            "approved",
            "批准立项",
            "Approved",
            (EventKind.approved, EventKind.awarded),
            call.objection_days,
        ),
        ("paid", "资金拨付", "Paid", (EventKind.paid,), PAYMENT_WORKING_DAYS),
    ]
    for key, zh, en, kinds, days in rest:
        done_on = _first(events, *kinds)
        expected = add_working_days(cursor, days) if days else cursor
        if key == "publicity" and call.publicity_from:
            expected = call.publicity_from
        if key == "approved" and call.publicity_to:
            expected = add_working_days(call.publicity_to, 1)
        index = {"scored": 2, "publicity": 3, "approved": 4, "paid": 6}[key]
        if done_on is None and reached >= index:
            done_on = (
                cursor  # passed without its own recorded step (e.g. scored with the last stage)
            )
        state = "done" if done_on else ("stopped" if stopped else "upcoming")
        if state == "upcoming" and reached == index - 1 and all_passed:
            state = "current"
        cursor = done_on or expected
        out.append(Milestone(key, zh, en, state, done_on, None if done_on else expected))
    return out


def beijing_text(moment: datetime | None) -> str:
    """A stored moment as Beijing wall-clock text (YYYY-MM-DD HH:MM)."""
    return "" if moment is None else clock.in_beijing(moment).strftime("%Y-%m-%d %H:%M")
