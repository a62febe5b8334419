"""The officers' grant review queue: filter, sort and page grants; select a whole filtered set;
summarise a batch decision in plain words and ask enterprises for what a grant still needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Integer, String, bindparam, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from huiqi.core.errors import Invalid
from huiqi.grants.models import Grant, GrantStatus
from huiqi.grants.review import ReviewReport
from huiqi.grants.scope import Scope, scoped

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
SORTS = {
    "newest": (Grant.id.desc(),),
    "amount_desc": (Grant.amount_fen.desc(), Grant.id.desc()),
    "amount_asc": (Grant.amount_fen.asc(), Grant.id.desc()),
    "name": (Grant.enterprise_name.asc(), Grant.id.desc()),
}
SORT_LABELS: dict[str, tuple[str, str]] = {
    "newest": ("最新生成", "Newest"),
    "amount_desc": ("金额从高到低", "Amount, highest first"),
    "amount_asc": ("金额从低到高", "Amount, lowest first"),
    "name": ("企业名称", "Enterprise name"),
}
NO_FLAG = "none"

# Why a grant was skipped in a batch, as the review service says it, mapped to a short code.
SKIP_CODES = {
    "no bank account": "no_bank_account",
    "risk flags not acknowledged": "risk_not_acknowledged",
    "no longer eligible": "no_longer_eligible",
    "not found": "not_found",
    "to confirm: an input's source is not accepted": "to_confirm",
}
SKIP_LABELS: dict[str, tuple[str, str]] = {
    "no_bank_account": ("未登记银行账户", "no bank account on file"),
    "risk_not_acknowledged": (
        "有风险提示、未勾选“已核实风险提示”",
        "risk flags not acknowledged",
    ),
    "no_longer_eligible": ("已不再符合条件", "no longer eligible"),
    "not_found": ("项目不存在", "not found"),
    "to_confirm": (
        "待核实:有输入数据的来源不被本政策认可(如企业自报)",
        "to confirm: an input comes from a source the rule does not accept",
    ),
    "not_pending": ("已审核过,不在待审核状态", "already decided"),
    "other": ("其他原因", "other reasons"),
}


class QueueFilterError(Invalid):
    """A filter value that cannot be used (named in Chinese and English)."""


@dataclass(frozen=True)
class QueueFilter:
    """What the officer narrowed the queue to."""

    status: str = GrantStatus.pending
    flag: str = ""
    region: str = ""
    min_yuan: Decimal | None = None
    max_yuan: Decimal | None = None
    q: str = ""

    @classmethod
    def parse(
        cls,
        *,
        status: str = "pending",
        flag: str = "",
        region: str = "",
        min_yuan: str = "",
        max_yuan: str = "",
        q: str = "",
    ) -> QueueFilter:
        """Read the filter from query or form text; bad amounts raise QueueFilterError."""
        statuses = {s.value for s in GrantStatus}
        if status and status not in statuses:
            raise QueueFilterError("状态无效 / unknown status")
        region = region.strip()
        if region and not (region.isdigit() and len(region) in (2, 4, 6)):
            raise QueueFilterError("地区须为行政区划代码 / region must be a division code")
        return cls(
            status=status,
            flag=flag.strip(),
            region=region,
            min_yuan=_yuan(min_yuan, "最低金额", "minimum amount"),
            max_yuan=_yuan(max_yuan, "最高金额", "maximum amount"),
            q=q.strip()[:100],
        )

    def query_args(self) -> dict[str, str]:
        """The filter as query parameters (empty ones left out)."""
        args = {
            "status": self.status,
            "flag": self.flag,
            "region": self.region,
            "min_yuan": "" if self.min_yuan is None else f"{self.min_yuan:f}",
            "max_yuan": "" if self.max_yuan is None else f"{self.max_yuan:f}",
            "q": self.q,
        }
        return {k: v for k, v in args.items() if v}


def _yuan(raw: str, zh: str, en: str) -> Decimal | None:
    text = (raw or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise QueueFilterError(f"{zh}须为数字(元) / {en} must be a number of yuan") from None
    if value < 0 or not value.is_finite():
        raise QueueFilterError(f"{zh}不能为负数 / {en} must not be negative")
    return value


class HasFlag(FunctionElement[bool]):
    """Whether a JSON list of risk flags holds one with this code, read with the database's JSON
    functions (a text match on the JSON would depend on how it was serialised, and would match
    a "code" key inside a flag's detail)."""

    type = Boolean()
    inherit_cache = True
    name = "has_flag"


class FlagCount(FunctionElement[int]):
    """How many risk flags a JSON list holds (0 for SQL NULL or JSON null)."""

    type = Integer()
    inherit_cache = True
    name = "flag_count"


@compiles(HasFlag, "sqlite")
def _has_flag_sqlite(element: HasFlag, compiler: Any, **kw: Any) -> str:
    # both parts are compiled SQL: the column and a bound parameter
    flags, code = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"EXISTS (SELECT 1 FROM json_each({flags}) AS f "  # noqa: S608
        f"WHERE f.type = 'object' AND json_extract(f.value, '$.code') = {code})"
    )


@compiles(HasFlag, "postgresql")
def _has_flag_postgresql(element: HasFlag, compiler: Any, **kw: Any) -> str:
    flags, code = (compiler.process(c, **kw) for c in element.clauses)
    return (
        "EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof("  # noqa: S608
        f"{flags}) = 'array' THEN {flags} ELSE '[]'::json END) AS f(v) "
        f"WHERE json_typeof(f.v) = 'object' AND f.v ->> 'code' = {code})"
    )


@compiles(FlagCount, "sqlite")
def _flag_count_sqlite(element: FlagCount, compiler: Any, **kw: Any) -> str:
    (flags,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"coalesce(json_array_length({flags}), 0)"


@compiles(FlagCount, "postgresql")
def _flag_count_postgresql(element: FlagCount, compiler: Any, **kw: Any) -> str:
    (flags,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CASE WHEN json_typeof({flags}) = 'array' THEN json_array_length({flags}) ELSE 0 END)"


def _filtered(flt: QueueFilter, departments: Scope) -> Any:
    from huiqi.enterprise.models import enterprise_current

    q = scoped(select(Grant), departments)
    if flt.status:
        q = q.where(Grant.status == flt.status)
    if flt.flag == NO_FLAG:
        q = q.where(FlagCount(Grant.risk_flags) == 0)
    elif flt.flag:
        q = q.where(HasFlag(Grant.risk_flags, bindparam("flag_code", flt.flag, type_=String)))
    if flt.region:
        q = q.where(
            Grant.credit_code.in_(
                select(enterprise_current.c.credit_code).where(
                    enterprise_current.c.region_code.like(f"{flt.region}%")
                )
            )
        )
    if flt.min_yuan is not None:
        q = q.where(Grant.amount_fen >= int(flt.min_yuan * 100))
    if flt.max_yuan is not None:
        q = q.where(Grant.amount_fen <= int(flt.max_yuan * 100))
    if flt.q:
        like = f"%{_escape_like(flt.q)}%"
        q = q.where(
            Grant.enterprise_name.like(like, escape="\\")
            | Grant.credit_code.like(like.upper(), escape="\\")
        )
    return q


def _escape_like(text: str) -> str:
    """Text matched literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace('"', "")


@dataclass
class QueuePage:
    """One page of the queue and what the page needs to link onward."""

    rows: list[Grant]
    total: int
    total_fen: int
    page: int
    pages: int
    regions: dict[str, str] = field(default_factory=dict)


def queue_page(
    session: Session,
    flt: QueueFilter,
    *,
    departments: Scope,
    sort: str = "newest",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> QueuePage:
    """One page of grants matching the filter, with the count and amount of the whole set."""
    from huiqi.enterprise.models import enterprise_current

    per_page = max(1, min(per_page, MAX_PAGE_SIZE))
    base = _filtered(flt, departments)
    sub = base.subquery()
    total, total_fen = session.execute(
        select(func.count(), func.coalesce(func.sum(sub.c.amount_fen), 0))
    ).one()
    pages = max(1, -(-int(total) // per_page))
    page = max(1, min(page, pages))
    rows = list(
        session.scalars(
            base.order_by(*SORTS.get(sort, SORTS["newest"]))
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    codes = [g.credit_code for g in rows]
    regions = {
        str(c): str(r)
        for c, r in session.execute(
            select(enterprise_current.c.credit_code, enterprise_current.c.region_code).where(
                enterprise_current.c.credit_code.in_(codes)
            )
        )
        if r
    }
    return QueuePage(rows, int(total), int(total_fen), page, pages, regions)


def filtered_ids(session: Session, flt: QueueFilter, *, departments: Scope) -> list[int]:
    """Ids of every pending grant matching the filter (select-all on the filtered set)."""
    pending = QueueFilter(
        status=GrantStatus.pending,
        flag=flt.flag,
        region=flt.region,
        min_yuan=flt.min_yuan,
        max_yuan=flt.max_yuan,
        q=flt.q,
    )
    q = _filtered(pending, departments).with_only_columns(Grant.id).order_by(Grant.id)
    return [int(i) for i in session.scalars(q)]


def flag_counts(session: Session, *, status: str, departments: Scope) -> Counter[str]:
    """How many grants of a status carry each risk flag (for the filter's choices)."""
    q = scoped(select(Grant.risk_flags), departments).where(Grant.status == status)
    counts: Counter[str] = Counter()
    for flags in session.scalars(q):
        codes = {f["code"] for f in flags or []}
        counts.update(codes or {NO_FLAG})
    return counts


def skip_code(reason: str) -> str:
    """The short code of a reason the review service gave for skipping a grant."""
    if reason.startswith("status is"):
        return "not_pending"
    return SKIP_CODES.get(reason, "other")


@dataclass(frozen=True)
class BatchSummary:
    """What a batch decision did, in counts, for the page that reports it."""

    decision: str
    done: int
    skipped: dict[str, int]
    notified: int

    def level(self) -> str:
        """success when nothing was skipped, warning when some were, error when none was done."""
        if not self.skipped:
            return "ok"
        return "warn" if self.done else "error"

    def text(self, lang: str) -> str:
        """The summary sentence: 已批准 120 项;跳过 3 项:未登记银行账户 3 项 — 已通知企业补充。"""
        en = lang == "en"
        verb = {"approve": ("已批准", "Approved"), "reject": ("已驳回", "Rejected")}[self.decision]
        parts = [f"{verb[1]} {self.done}" if en else f"{verb[0]} {self.done} 项"]
        if self.skipped:
            n = sum(self.skipped.values())
            reasons = []
            for code, count in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
                zh, eng = SKIP_LABELS.get(code, SKIP_LABELS["other"])
                item = f"{eng} {count}" if en else f"{zh} {count} 项"
                if code == "no_bank_account" and self.notified:
                    item += (
                        " — enterprises asked to add their account" if en else " — 已通知企业补充"
                    )
                reasons.append(item)
            joined = ("; " if en else ";").join(reasons)
            parts.append(f"skipped {n}: {joined}" if en else f"跳过 {n} 项:{joined}")
        return ("; ".join(parts) + ".") if en else (";".join(parts) + "。")

    def query(self) -> dict[str, str]:
        """The summary as query parameters for the redirect after the POST."""
        return {
            "done": str(self.done),
            "decision": self.decision,
            "notified": str(self.notified),
            "skipped": ",".join(f"{k}:{v}" for k, v in sorted(self.skipped.items())),
        }

    @classmethod
    def from_query(cls, args: dict[str, str]) -> BatchSummary | None:
        """Read a summary back from the redirect's query (None when there is none)."""
        decision = args.get("decision", "")
        if decision not in ("approve", "reject"):
            return None
        skipped: dict[str, int] = {}
        for part in args.get("skipped", "").split(","):
            code, _, count = part.partition(":")
            if code in SKIP_LABELS and count.isdigit():
                skipped[code] = int(count)
        done = args.get("done", "0")
        notified = args.get("notified", "0")
        return cls(
            decision,
            int(done) if done.isdigit() else 0,
            skipped,
            int(notified) if notified.isdigit() else 0,
        )


def summarise(decision: str, report: ReviewReport, notified: int) -> BatchSummary:
    """Count a review report's outcomes by reason."""
    skipped = Counter(skip_code(why) for _gid, why in report.skipped)
    return BatchSummary(decision, len(report.done), dict(skipped), notified)


def ask_for_bank_accounts(session: Session, report: ReviewReport) -> int:
    """Tell each enterprise whose grant was held for want of a bank account what to supply.

    One message per grant (deduplicated): approving the batch again does not repeat it.
    Returns how many enterprises were told (now or before).
    """
    from huiqi.core.money import format_fen, format_fen_en
    from huiqi.events import GrantDecided, publish

    told: set[str] = set()
    for gid, why in report.skipped:
        if skip_code(why) != "no_bank_account":
            continue
        grant = session.get(Grant, gid)
        if grant is None:
            continue
        # the notifying domain tells the enterprise, once per grant (grant:<id>:need-account)
        publish(
            session,
            GrantDecided(
                grant_id=grant.id,
                credit_code=grant.credit_code,
                status="need-account",
                subject=f"请登记收款账户,以便拨付「{grant.rule_title}」{format_fen(grant.amount_fen)}",
                body="\n".join(
                    [
                        f"{grant.enterprise_name or '贵企业'}:",
                        f"贵企业符合「{grant.rule_title}」(政策依据:{grant.legal_basis}),"
                        f"{grant.period} 年度金额 {format_fen(grant.amount_fen)},无需申请。",
                        "审核时发现贵企业尚未登记收款银行账户,资金暂无法拨付。",
                        "怎么办:登录后在“免申即享”页面填写开户银行、户名和账号,保存后即进入下一批审核。",
                    ]
                ),
                link="/grants/mine#account",
                rule_id=grant.rule_id,
                rule_version=grant.rule_version,
                subject_en=(
                    f"Register a bank account to receive “{grant.rule_title}”"
                    f" ({format_fen_en(grant.amount_fen)})"
                ),
                body_en="\n".join(
                    [
                        f"{grant.enterprise_name or 'Dear enterprise'}:",
                        f"Your enterprise qualifies for “{grant.rule_title}” (legal basis:"
                        f" {grant.legal_basis}): {format_fen_en(grant.amount_fen)} for"
                        f" {grant.period}, with no application needed.",
                        "The review found no bank account registered for your enterprise, so"
                        " the money cannot be paid yet.",
                        "What to do: log in and enter the bank, account name and number on the"
                        " “No-application benefits” page; once saved, the grant joins the next"
                        " review batch.",
                    ]
                ),
            ),
        )
        told.add(grant.credit_code)
    return len(told)
