"""What the workbenches and the cockpit show: per-role figures gathered from the domains."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from huiqi.accounts.models import Role, User
from huiqi.enterprise import repository as ent_repo


@dataclass
class Figure:
    """A headline number with its label and where it leads."""

    zh: str
    en: str
    value: str
    href: str = ""


@dataclass
class EnterpriseHome:
    """The enterprise's own summary."""

    name: str
    size_class: str | None
    region_code: str | None
    industry_code: str | None
    figures: list[Figure] = field(default_factory=list)
    # (date, Chinese text, English text, link)
    deadlines: list[tuple[date, str, str, str]] = field(default_factory=list)


def enterprise_home(session: Session, user: User) -> EnterpriseHome:
    """Company, its policy counts and money at stake, messages, grants, applications, deadlines."""
    from huiqi.core.money import format_fen
    from huiqi.enterprise.models import enterprise_current
    from huiqi.finance.models import Application, AppStatus
    from huiqi.grants.models import Grant, GrantStatus
    from huiqi.matching.service import MatchingError, my_policies
    from huiqi.notify.models import Notification
    from huiqi.notify.service import unread_count_for

    code = user.credit_code or ""
    row = (
        session.execute(select(enterprise_current).where(enterprise_current.c.credit_code == code))
        .mappings()
        .first()
    )
    home = EnterpriseHome(
        name=str(row["name"]) if row and row["name"] else user.display_name,
        size_class=row["size_class"] if row else None,
        region_code=row["region_code"] if row else None,
        industry_code=row["industry_code"] if row else None,
    )
    try:
        mine = my_policies(session, code)
        eligible, confirm, near = mine.eligible, mine.to_confirm, mine.near_misses
    except MatchingError:
        eligible, confirm, near = [], [], []
    at_stake = sum(e.amount_fen or 0 for _v, e in eligible)
    within_reach = sum((e.near_miss.amount_fen or 0) for _v, e in near if e.near_miss)
    pending_grants = session.scalar(
        select(func.count())
        .select_from(Grant)
        .where(Grant.credit_code == code, Grant.status == GrantStatus.pending)
    )
    open_apps = session.scalar(
        select(func.count())
        .select_from(Application)
        .where(
            Application.credit_code == code,
            Application.status.in_([AppStatus.submitted, AppStatus.accepted]),
        )
    )
    home.figures = [
        Figure(
            "符合条件的政策", "Eligible policies", str(len(eligible)), "/matching/mine#eligible"
        ),
        Figure("待确认(需补充数据)", "To confirm", str(len(confirm)), "/matching/mine#to-confirm"),
        Figure("差一点符合", "Near misses", str(len(near)), "/matching/mine#near-misses"),
        Figure(
            "可享金额(估算)", "Money at stake (estimate)", format_fen(at_stake), "/matching/mine"
        ),
        Figure(
            "差一点可享", "Within reach", format_fen(within_reach), "/matching/mine#near-misses"
        ),
        Figure(
            "未读消息", "Unread messages", str(unread_count_for(session, user)), "/notify/inbox"
        ),
        Figure(
            "审核中的免申即享", "Benefits under review", str(pending_grants or 0), "/grants/mine"
        ),
        Figure("办理中的融资申请", "Financing in progress", str(open_apps or 0), "/finance"),
    ]
    for due, text, text_en, link in session.execute(
        select(
            Notification.deadline, Notification.subject, Notification.subject_en, Notification.link
        )
        .where(Notification.credit_code == code, Notification.deadline.is_not(None))
        .order_by(Notification.deadline)
        .limit(5)
    ):
        if due is not None:
            home.deadlines.append(
                (due, str(text), str(text_en or text), str(link or "/notify/inbox"))
            )
    for due, app_id in session.execute(
        select(Application.due_on, Application.id).where(
            Application.credit_code == code,
            Application.due_on.is_not(None),
            Application.status.in_([AppStatus.submitted, AppStatus.accepted]),
        )
    ):
        if due is not None:
            link = f"/finance/applications/{app_id}"
            home.deadlines.append(
                (due, f"融资申请 #{app_id} 办理时限", f"Financing application #{app_id} due", link)
            )
    home.deadlines.sort(key=lambda d: d[0])
    return home


def officer_figures(session: Session, user: User) -> list[Figure]:
    """Key figures for the officer's department (all departments for the administrator)."""
    from huiqi.core.money import format_fen
    from huiqi.grants import service as grants
    from huiqi.matching.models import RuleVersion
    from huiqi.policy.models import Policy
    from huiqi.reports.funnel import eligible_counts

    scope = grants.review_scope(
        session,
        role=Role(user.role),
        department=user.department,
        region_prefix=user.region_prefix,
    )
    totals = grants.totals_by_status(session, departments=scope)
    paid = sum(totals.get(s, (0, 0))[1] for s in ("approved", "disbursed"))
    rules = select(RuleVersion.rule_id).where(RuleVersion.status == "published")
    if user.role != Role.admin and user.department:
        from huiqi.grants.service import department_key

        mine = department_key(session, user.department)
        departments = [
            d
            for d in session.scalars(select(RuleVersion.department).distinct())
            if department_key(session, d) == mine
        ]
        rules = rules.where(RuleVersion.department.in_(departments))
    mine_rules = set(session.scalars(rules))
    published = len(mine_rules)
    matched = sum(eligible_counts(session, mine_rules, within=user.region_prefix).values())
    policies = session.scalar(
        select(func.count()).select_from(Policy).where(Policy.status == "published")
    )
    return [
        Figure(
            "已发布规则" if user.role == Role.admin else "本部门已发布规则",
            "Published rules",
            str(published),
            "/rules",
        ),
        Figure(
            "符合条件的企业·政策",
            "Eligible enterprise–policy pairs",
            str(matched),
            "/rules",
        ),
        Figure(
            "待审核免申即享", "Grants to review", str(totals.get("pending", (0, 0))[0]), "/grants"
        ),
        Figure("已批准及拨付金额", "Approved and paid", format_fen(paid), "/grants/disbursements"),
        Figure("政策库已发布文件", "Published policies", str(policies or 0), "/policy"),
    ]


def bank_figures(session: Session, user: User) -> list[Figure]:
    """The lender's applications by status and its products."""
    from huiqi.finance.models import STATUS_LABELS, Application, Product

    counts = dict(
        session.execute(
            select(Application.status, func.count())
            .where(Application.institution == user.institution)
            .group_by(Application.status)
        ).all()
    )
    products = session.scalar(
        select(func.count()).select_from(Product).where(Product.institution == user.institution)
    )
    out = [Figure("本机构融资产品", "Our products", str(products or 0), "/finance/products")]
    for status, (zh, en) in STATUS_LABELS.items():
        out.append(
            Figure(
                f"申请·{zh}",
                f"Applications · {en}",
                str(counts.get(status, 0)),
                "/finance#applications",
            )
        )
    return out


@dataclass
class AdminHome:
    """Users by role, the latest audit events and the system's health."""

    users: dict[str, int]
    events: list[Any]
    database: str
    version: str
    migrations: str


def _pending(session: Session) -> set[str]:
    """Shipped revisions the database lacks, read through the request's own connection (a
    second connection would wait on this one's SQLite lock)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from huiqi.core.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    heads = MigrationContext.configure(session.connection()).get_current_heads()
    applied = (
        {r.revision for r in script.iterate_revisions(tuple(heads), "base")} if heads else set()
    )
    return {r.revision for r in script.walk_revisions()} - applied


def admin_home(session: Session) -> AdminHome:
    """Users, audit and health for the administrator."""
    import huiqi
    from huiqi.accounts.models import AuditEvent

    users = dict(session.execute(select(User.role, func.count()).group_by(User.role)).all())
    events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(8)))
    bind = session.get_bind()
    try:
        migrations = "current" if not _pending(session) else "pending"
    except Exception:  # health reporting must not take the page down
        migrations = "unknown"
    return AdminHome(
        users={str(k): int(v) for k, v in users.items()},
        events=events,
        database=bind.dialect.name,
        version=huiqi.__version__,
        migrations=migrations,
    )


@dataclass
class Cockpit:
    """Headline figures and per-city series for the leaders' cockpit (驾驶舱)."""

    figures: list[Figure]
    cities: list[str]
    series: dict[str, list[int]]


def cockpit(session: Session, within: str | None = None) -> Cockpit:
    """Province-wide figures and, per 市州, enterprises, eligible matches and grant amounts;
    `within` (a city or county officer's region prefix) counts only enterprises registered
    there and shows only the 市州 it lies in."""
    from huiqi.core.codes import gansu_prefectures
    from huiqi.core.money import format_fen
    from huiqi.enterprise.models import enterprise_current
    from huiqi.finance.models import Application
    from huiqi.grants.models import Grant
    from huiqi.matching.models import MatchState
    from huiqi.policy.models import Policy

    t = enterprise_current
    pref = func.substr(t.c.region_code, 1, 4)
    here = t.c.region_code.like(f"{within}%") if within else true()
    firms: dict[str, int] = dict(
        session.execute(select(pref, func.count()).where(here).group_by(pref)).all()
    )
    matched: dict[str, int] = dict(
        session.execute(
            select(pref, func.count())
            .join(MatchState, MatchState.enterprise_id == t.c.id)
            .where(MatchState.eligible > 0, here)
            .group_by(pref)
        ).all()
    )
    granted: dict[str, int] = dict(
        session.execute(
            select(pref, func.coalesce(func.sum(Grant.amount_fen), 0))
            .join(Grant, Grant.credit_code == t.c.credit_code)
            .where(here)
            .group_by(pref)
        ).all()
    )
    prefs = [
        p
        for p in gansu_prefectures()
        if not within or p.code.startswith(within) or within.startswith(p.code[:4])
    ]
    total_firms = sum(firms.values())
    reached = sum(matched.values())
    grant_q = select(func.coalesce(func.sum(Grant.amount_fen), 0))
    loan_q = select(func.coalesce(func.sum(Application.disbursed_amount_fen), 0))
    if within:
        grant_q = grant_q.where(Grant.credit_code.in_(ent_repo.codes_in_region(within)))
        loan_q = loan_q.where(Application.credit_code.in_(ent_repo.codes_in_region(within)))
    grant_total = session.scalar(grant_q) or 0
    loans = session.scalar(loan_q) or 0
    policies = (
        session.scalar(select(func.count()).select_from(Policy).where(Policy.status == "published"))
        or 0
    )
    return Cockpit(
        figures=[
            Figure("在库企业", "Enterprises in the registry", f"{total_firms:,}", "/enterprise"),
            Figure("已精准匹配企业", "Enterprises matched to a policy", f"{reached:,}", "/rules"),
            Figure("已发布政策", "Published policies", str(policies), "/policy"),
            Figure(
                "免申即享测算金额",
                "No-application benefits computed",
                format_fen(grant_total),
                "/grants",
            ),
            Figure("融资放款金额", "Loans disbursed", format_fen(loans), "/finance/stats"),
        ],
        cities=[p.name for p in prefs],
        series={
            "firms": [int(firms.get(p.code[:4], 0)) for p in prefs],
            "matched": [int(matched.get(p.code[:4], 0)) for p in prefs],
            "granted_yuan": [int(granted.get(p.code[:4], 0)) // 100 for p in prefs],
        },
    )
