"""Officer dashboards of the special funds: applications per call and stage, days spent at
each stage, approval rates by city, budget used per fund line, awards by size class and
industry. Read-only counts over the funds tables (seed (四十): follow the policy before, during
and after); every chart has its table, and each bar links to its row."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.codes import (
    CodeError,
    industry_name,
    industry_section,
    region_name,
    region_prefecture,
)
from huiqi.funds.models import BudgetLine, Fund
from huiqi.funds.models import FundApplication as Application
from huiqi.funds.models import FundApplicationEvent as ApplicationEvent
from huiqi.funds.models import FundCall as Call
from huiqi.funds.review import stages
from huiqi.funds.schemas import APPLICATION_STATUS_LABELS, ApplicationStatus

APPROVED = (ApplicationStatus.approved, ApplicationStatus.awarded, ApplicationStatus.paid)
DECIDED = (*APPROVED, ApplicationStatus.rejected)
SIZE_LABELS = {
    "large": "大型",
    "medium": "中型",
    "small": "小型",
    "micro": "微型",
    "unknown": "未知",
}


@dataclass
class CallRow:
    """Applications of one call, per state (and per stage while in review)."""

    call_id: int
    title: str
    status: str
    per_state: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Applications submitted (drafts left out)."""
        return sum(self.per_state.values())


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows; `chart` is its JSON data block."""

    calls: list[CallRow]
    columns: list[tuple[str, str]]  # (key, label) of the per-state columns
    stage_days: list[tuple[str, Decimal, int]]  # (stage, mean days, decisions)
    regions: list[tuple[str, str, int, int]]  # (city code, name, approved, decided)
    budget: list[tuple[str, str, int, int]]  # (fund, line, budget fen, consumed fen)
    by_size: list[tuple[str, int, int]]  # (size label, awards, fen)
    by_industry: list[tuple[str, int, int]]  # (section, awards, fen)

    def chart(self) -> dict[str, Any]:
        """The data the page's charts draw (ids match the table rows)."""
        return {
            "calls": {
                "names": [c.title for c in self.calls],
                "rows": [f"call-{c.call_id}" for c in self.calls],
                "series": [
                    {"name": label, "data": [c.per_state.get(key, 0) for c in self.calls]}
                    for key, label in self.columns
                ],
            },
            "stages": {
                "names": [s for s, _d, _n in self.stage_days],
                "rows": [f"stage-{i}" for i, _ in enumerate(self.stage_days)],
                "data": [float(d) for _s, d, _n in self.stage_days],
            },
            "regions": {
                "names": [name for _c, name, _a, _d in self.regions],
                "rows": [f"region-{code}" for code, *_ in self.regions],
                "data": [round(100 * a / d, 1) if d else 0 for _c, _n, a, d in self.regions],
            },
            "budget": {
                "names": [f"{f} · {line}" for f, line, _b, _c in self.budget],
                "rows": [f"line-{i}" for i, _ in enumerate(self.budget)],
                "used": [c / 1_000_000 for _f, _l, _b, c in self.budget],
                "left": [(b - c) / 1_000_000 for _f, _l, b, c in self.budget],
            },
            "sizes": {
                "names": [s for s, _n, _f in self.by_size],
                "rows": [f"size-{i}" for i, _ in enumerate(self.by_size)],
                "data": [f / 1_000_000 for _s, _n, f in self.by_size],
            },
            "industries": {
                "names": [s for s, _n, _f in self.by_industry],
                "rows": [f"industry-{i}" for i, _ in enumerate(self.by_industry)],
                "data": [f / 1_000_000 for _s, _n, f in self.by_industry],
            },
        }


def _per_state_key(app: Application, call: Call) -> str:
    if app.status in (ApplicationStatus.submitted, ApplicationStatus.in_review):
        all_ = stages(call)
        if 0 <= app.stage_index < len(all_):
            return f"stage:{all_[app.stage_index].key}"
    return f"status:{app.status}"


def _moment(value: datetime) -> datetime:
    return clock.aware(value)


def stage_durations(
    events: Iterable[ApplicationEvent], submitted_at: datetime | None = None
) -> list[tuple[str, Decimal]]:
    """(stage, days) of each stage an application left by a decision, from its timeline: a
    stage begins at submission, resubmission or the previous stage's pass."""
    out: list[tuple[str, Decimal]] = []
    entered = _moment(submitted_at) if submitted_at else None
    for e in events:
        detail = e.detail or {}
        if e.kind in ("submitted", "resubmitted"):
            entered = _moment(e.at)
        elif detail.get("decision") in ("pass", "score", "return", "reject") and entered:
            if detail.get("advanced") or detail.get("decision") in ("return", "reject"):
                seconds = (_moment(e.at) - entered).total_seconds()
                out.append(
                    (str(detail.get("stage_zh") or detail.get("stage")), Decimal(seconds) / 86_400)
                )
                entered = _moment(e.at) if detail.get("advanced") else None
    return out


def build(session: Session, *, department_calls: Iterable[int] | None = None) -> Dashboard:
    """The dashboard over the given calls (None: every call)."""
    q = select(Call).order_by(Call.id)
    if department_calls is not None:
        q = q.where(Call.id.in_(list(department_calls)))
    calls = session.scalars(q).all()
    call_ids = [c.id for c in calls]
    by_id = {c.id: c for c in calls}
    apps = session.scalars(
        select(Application).where(
            Application.call_id.in_(call_ids), Application.status != ApplicationStatus.draft
        )
    ).all()
    columns: dict[str, str] = {}
    for call in calls:
        for st in stages(call):
            columns.setdefault(f"stage:{st.key}", st.name_zh)
    for status in ApplicationStatus:
        if status not in (
            ApplicationStatus.draft,
            ApplicationStatus.submitted,
            ApplicationStatus.in_review,
        ):
            columns[f"status:{status}"] = APPLICATION_STATUS_LABELS[status][0]
    rows = {c.id: CallRow(c.id, c.title, c.status) for c in calls}
    for app in apps:
        rows[app.call_id].per_state[_per_state_key(app, by_id[app.call_id])] += 1
    used_columns = [
        (k, v) for k, v in columns.items() if any(r.per_state.get(k) for r in rows.values())
    ]
    # time at each stage
    per_app: dict[int, list[ApplicationEvent]] = defaultdict(list)
    app_ids = [a.id for a in apps]
    for start in range(0, len(app_ids), 5000):
        for e in session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id.in_(app_ids[start : start + 5000]))
            .order_by(ApplicationEvent.application_id, ApplicationEvent.id)
        ):
            per_app[e.application_id].append(e)
    spent: dict[str, list[Decimal]] = defaultdict(list)
    submitted = {a.id: a.submitted_at for a in apps}
    for app_id, events in per_app.items():
        for stage, days in stage_durations(events, submitted.get(app_id)):
            spent[stage].append(days)
    stage_days = [
        (name, (sum(v, Decimal(0)) / len(v)).quantize(Decimal("0.1")), len(v))
        for name, v in spent.items()
    ]
    # approval rate by city
    approved: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    for app in apps:
        if app.status not in DECIDED or not app.region_code:
            continue
        city = region_prefecture(app.region_code)
        decided[city] += 1
        if app.status in APPROVED:
            approved[city] += 1
    regions = [(c, region_name(c), approved[c], decided[c]) for c in sorted(decided)]
    # budget used per fund line
    lines = session.execute(
        select(
            Fund.name, Fund.year, BudgetLine.name, BudgetLine.budget_fen, BudgetLine.consumed_fen
        )
        .join(Fund, Fund.id == BudgetLine.fund_id)
        .order_by(Fund.id, BudgetLine.id)
    ).all()
    budget = [(f"{name}({year})", line, int(b), int(c)) for name, year, line, b, c in lines]
    # awards by size class and industry section
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    sections: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for app in apps:
        if app.status not in APPROVED or not app.award_fen:
            continue
        size = SIZE_LABELS.get(app.size_class or "unknown", app.size_class or "未知")
        sizes[size][0] += 1
        sizes[size][1] += int(app.award_fen)
        try:
            code = industry_section(app.industry_code or "")
            section = f"{code} {industry_name(code)}"
        except CodeError:
            section = "—"
        sections[section][0] += 1
        sections[section][1] += int(app.award_fen)
    return Dashboard(
        calls=list(rows.values()),
        columns=used_columns,
        stage_days=stage_days,
        regions=regions,
        budget=budget,
        by_size=[(k, n, f) for k, (n, f) in sorted(sizes.items())],
        by_industry=[(k, n, f) for k, (n, f) in sorted(sections.items())],
    )
