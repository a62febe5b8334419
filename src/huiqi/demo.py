"""Demo data for `make run`: accounts for each role, then each domain's sample data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.accounts import service as accounts
from huiqi.accounts.models import Role, User
from huiqi.accounts.scopes import set_region_prefix


@dataclass(frozen=True)
class DemoAccount:
    """A demo log-in printed by `make run`."""

    username: str
    password: str
    role: str
    display_name: str
    department: str | None = None
    credit_code: str | None = None
    institution: str | None = None
    region_prefix: str | None = None  # a county (6 digits) or city (4 digits) reviewer


# A valid code (GB 32100-2015 check character) used until the demo population provides one.
FALLBACK_CREDIT_CODE = "91620102MA72H8K3X0"

DEMO_ACCOUNTS = (
    DemoAccount("admin", "huiqi-admin-2020", "admin", "系统管理员"),
    DemoAccount(
        "officer",
        "huiqi-officer-2020",
        "officer",
        "省工信厅 张科长",
        department="甘肃省工业和信息化厅",
    ),
    # Two officers of the graduate subsidy's department: one approves grants, the other builds
    # the payment file (four-eyes: one person may not do both).
    DemoAccount(
        "officer-hr",
        "huiqi-officer-2020",
        "officer",
        "省人社厅 赵科长",
        department="甘肃省人力资源和社会保障厅",
    ),
    DemoAccount(
        "officer-hr2",
        "huiqi-officer-2020",
        "officer",
        "省人社厅 孙会计(拨付经办)",
        department="甘肃省人力资源和社会保障厅",
    ),
    # Reviewers of the special funds (快申快享): a county and a city reviewer of 省工信厅's funds,
    # an expert (reviews only the applications assigned to it, after declaring no conflict of
    # interest) and a second officer who builds the payment file of approved awards (four-eyes).
    DemoAccount(
        "reviewer-county",
        "huiqi-officer-2020",
        "officer",
        "城关区 刘干事(专项资金县级初审)",
        department="甘肃省工业和信息化厅",
        region_prefix="620102",
    ),
    DemoAccount(
        "reviewer-city",
        "huiqi-officer-2020",
        "officer",
        "兰州市 陈科长(专项资金市级复审)",
        department="甘肃省工业和信息化厅",
        region_prefix="6201",
    ),
    DemoAccount(
        "expert",
        "huiqi-officer-2020",
        "officer",
        "评审专家 周教授",
        department="甘肃省中小企业发展专家库",
    ),
    DemoAccount(
        "officer-gx2",
        "huiqi-officer-2020",
        "officer",
        "省工信厅 吴会计(拨付经办)",
        department="甘肃省工业和信息化厅",
    ),
    DemoAccount(
        "enterprise",
        "huiqi-enterprise-2020",
        "enterprise",
        "企业经办人 李会计",
        credit_code=FALLBACK_CREDIT_CODE,
    ),
    DemoAccount(
        "bank", "huiqi-bank-2020", "bank", "甘肃银行 王经理", institution="甘肃银行股份有限公司"
    ),
)


def load_accounts(session: Session, enterprise_credit_code: str | None = None) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet (idempotent) and return them all."""
    for acct in DEMO_ACCOUNTS:
        existing = session.scalar(select(User).where(User.username == acct.username))
        credit_code = enterprise_credit_code or acct.credit_code
        if existing is None:
            created = accounts.create_user(
                session,
                username=acct.username,
                password=acct.password,
                role=acct.role,
                display_name=acct.display_name,
                department=acct.department,
                credit_code=credit_code if acct.role == Role.enterprise else None,
                institution=acct.institution,
                # The demo log-ins are public by design (README, `make run`): they would not
                # pass the password policy, which keeps guessable passwords off real accounts.
                check_policy=False,
            )
            if acct.region_prefix:
                set_region_prefix(session, created, acct.region_prefix)
        elif acct.role == Role.enterprise and credit_code and existing.credit_code != credit_code:
            existing.credit_code = credit_code
    return list(DEMO_ACCOUNTS)


DEMO_POPULATION = 3000
DEMO_SEED = 2020


def pick_demo_enterprise(session: Session, prefer: str | None = None) -> str | None:
    """A Lanzhou enterprise with much to show: eligible policies, a 免申即享 grant, a policy
    waiting for data it may report itself (待确认) and near misses (差一点), ``prefer`` first
    (the population's showcase firm); else the one with most eligible."""

    from huiqi.enterprise.catalogue import catalogue
    from huiqi.enterprise.models import enterprise_current
    from huiqi.grants.models import Grant
    from huiqi.matching.models import MatchState
    from huiqi.matching.service import my_policies

    candidates = [
        str(code)
        for (code,) in session.execute(
            select(enterprise_current.c.credit_code)
            .join(MatchState, MatchState.enterprise_id == enterprise_current.c.id)
            .where(
                enterprise_current.c.region_code.like("6201%"),
                MatchState.eligible > 0,
            )
            .order_by(MatchState.eligible.desc(), enterprise_current.c.credit_code)
            .limit(60)
        )
    ]
    with_grant = set(
        session.scalars(select(Grant.credit_code).where(Grant.credit_code.in_(candidates)))
    )
    if prefer is not None:
        candidates.insert(0, prefer)
        with_grant |= set(
            session.scalars(select(Grant.credit_code).where(Grant.credit_code == prefer))
        )
    for code in candidates:
        if code not in with_grant:
            continue
        mine = my_policies(session, code)
        own = any(
            (f := catalogue().fields.get(name)) is not None and f.self_report
            for _version, exp in mine.to_confirm
            for name in exp.missing
        )
        if own and mine.near_misses:
            return code
    return candidates[0] if candidates else None


# Each domain's demo has a time budget (seconds, default population, 2 cores) so that `make run`
# serves a healthy /healthz within 90 s of its install step: about 7 s for the migrations and
# 10 s for the server to start leave 73 s for the demo; `huiqi demo load` flags a step over it.
STEP_BUDGETS: dict[str, float] = {
    "policy": 5,
    "enterprise": 8,
    "finance": 3,
    "matching": 30,
    "notify": 3,
    "grants": 15,
    "funds": 9,
}


def load_all(
    session: Session,
    *,
    population: int = DEMO_POPULATION,
    seed: int = DEMO_SEED,
    progress: Callable[[str, float], None] | None = None,
) -> list[DemoAccount]:
    """Load every domain's demo data, then the accounts bound to it (idempotent).

    ``progress`` is told each step as it starts, with the step's time budget in seconds.
    """
    from huiqi.core.clock import today as today_cn
    from huiqi.enterprise import population as enterprises
    from huiqi.finance import demo as finance
    from huiqi.funds import demo as funds
    from huiqi.grants import demo as grants
    from huiqi.matching import service as matching
    from huiqi.notify.service import sync_subscriptions_from_registry
    from huiqi.policy import service as policy

    say = progress or (lambda _step, _budget: None)
    budget = STEP_BUDGETS
    say(
        "政策库:导入种子文件 甘工信发〔2020〕351号 / policy library: the seed document",
        budget["policy"],
    )
    policy.load_demo(session)
    say(
        f"企业库:生成 {population} 家甘肃企业 / enterprise registry: {population} enterprises",
        budget["enterprise"],
    )
    enterprises.load_demo(session, size=population, seed=seed)
    say("融资产品 / financing products", budget["finance"])
    finance.load_demo(session)
    say(
        "规则与匹配(含免申即享资助与推送) / rules, matching, grants and notifications",
        budget["matching"],
    )
    matching.load_demo(session)
    # After matching: the first wave stays in the inboxes; later changes also go out by the
    # channels the registry's consented contacts give.
    say(
        "推送订阅(据企业库中已同意的联系方式) / push subscriptions from consented contacts",
        budget["notify"],
    )
    sync_subscriptions_from_registry(session)
    demo_code = pick_demo_enterprise(session, enterprises.showcase_code(population, seed))
    say(
        "免申即享:收款账户与企业自报数据 / grants: bank accounts and self-reported figures",
        budget["grants"],
    )
    grants.load_demo(session, keep_without_account=demo_code, today=today_cn())
    demo_accounts = load_accounts(session, demo_code)
    say(
        "专项资金:资金、申报通知、各环节的申报与立项拨付 / special funds: calls, review, awards",
        budget["funds"],
    )
    funds.load_demo(session, today=today_cn())
    return demo_accounts
