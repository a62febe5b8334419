"""Display names for what pages print: Beijing time, code values, field names, regions, industries.

Everything stored is UTC and coded; everything shown is Asia/Shanghai and named — in Chinese, or
in English in the English view. Templates reach these through the Jinja filters installed here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment, pass_context
from markupsafe import Markup

from huiqi.core.clock import in_beijing
from huiqi.grants.schemas import mask_account

# Code values shown to people, by kind: (Chinese, English).
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "mode": {
        "push": ("精准推送", "Push to eligible firms"),
        "auto_grant": ("免申即享", "Granted without application"),
        "apply": ("申报办理", "Apply to receive"),
    },
    "role": {
        "admin": ("系统管理员", "Administrator"),
        "officer": ("部门工作人员", "Department officer"),
        "enterprise": ("企业用户", "Enterprise user"),
        "bank": ("金融机构用户", "Bank / guarantee user"),
        "system": ("系统", "System"),
    },
    "audit": {
        "login.succeeded": ("登录成功", "Logged in"),
        "login.failed": ("登录失败", "Log-in failed"),
        "login.throttled": ("登录过于频繁,已暂停", "Log-in throttled"),
        "logout": ("退出登录", "Logged out"),
        "user.created": ("创建用户", "User created"),
        "user.role_changed": ("变更角色", "Role changed"),
        "token.created": ("创建接口令牌", "API token created"),
        "token.revoked": ("撤销接口令牌", "API token revoked"),
        "funds.review.pass": ("专项资金申报审核通过", "Application passed a stage"),
        "funds.review.score": ("专项资金申报评分", "Application scored"),
        "funds.review.return": ("专项资金申报退回修改", "Application returned"),
        "funds.review.reject": ("专项资金申报不予通过", "Application rejected"),
        "funds.conflict_declared": ("评审专家利益冲突声明", "Conflict of interest declared"),
        "funds.publicity": ("拟支持名单公示", "Awards put on publicity"),
        "funds.objection": ("公示异议", "Objection"),
        "funds.objection_resolved": ("公示异议处理", "Objection decided"),
        "funds.approved": ("批准立项", "Awards approved"),
        "funds.performance_reported": ("报送绩效", "Performance reported"),
        "funds.clawback": ("追回专项资金", "Clawback"),
        "token.reused": ("沿用接口令牌", "API token reused"),
        "login.burst": ("登录失败激增", "Burst of failed log-ins"),
        "user.assigned": ("分配事项", "Item assigned"),
        "user.unassigned": ("取消分配", "Assignment removed"),
        "user.password_changed": ("修改密码", "Password changed"),
        "user.password_change_refused": ("密码修改被拒绝", "Password change refused"),
        "user.region_changed": ("变更管辖地区", "Region changed"),
        "rule.submitted": ("提交规则", "Rule submitted"),
        "rule.reviewed": ("审核规则", "Rule reviewed"),
        "rule.published": ("发布规则", "Rule published"),
        "rule.rejected": ("退回规则", "Rule returned"),
        "rule.withdrawn": ("撤回规则", "Rule withdrawn"),
        "policy.interpretation_added": ("添加政策解读", "Interpretation added"),
        "policy.interpretation_removed": ("删除政策解读", "Interpretation removed"),
    },
    "audit_detail": {
        "call_id": ("申报通知", "Call"),
        "application_id": ("申报", "Application"),
        "awarded": ("拟支持", "Awarded"),
        "cut": ("未入选", "Cut"),
        "total_fen": ("合计(分)", "Total (fen)"),
        "budget_left_fen": ("可用预算(分)", "Budget left (fen)"),
        "amount_fen": ("金额(分)", "Amount (fen)"),
        "stage": ("环节", "Stage"),
        "reasons": ("理由", "Reasons"),
        "checks_failed": ("须注意的核查", "Checks to look at"),
        "has_conflict": ("存在利益冲突", "Conflict of interest"),
        "statement": ("说明", "Statement"),
        "objection_id": ("异议", "Objection"),
        "upheld": ("异议成立", "Upheld"),
        "text": ("内容", "Text"),
        "status": ("结果", "Outcome"),
        "role": ("角色", "Role"),
        "old": ("原角色", "Previous role"),
        "new": ("新角色", "New role"),
        "name": ("名称", "Name"),
        "actor": ("操作人", "By"),
        "reason": ("原因", "Reason"),
        "rule_id": ("规则", "Rule"),
        "rule_version": ("版本", "Version"),
        "department": ("部门", "Department"),
        "as_admin": ("以管理员身份", "As administrator"),
        "moved_from": ("原部门", "Moved from"),
        "review_reason": ("须第二人审核的原因", "Why a second person reviews"),
        "submitted_by": ("提交人", "Submitted by"),
        "reviewed_by": ("审核人", "Reviewed by"),
        "policy_id": ("政策编号", "Policy"),
        "article_number": ("条款", "Article"),
        "title": ("标题", "Title"),
        "account_no": ("收款账号", "Account number"),
        "disbursement_id": ("拨付批次", "Payment batch"),
        "input_hash": ("输入摘要", "Input digest"),
        "clawback_fen": ("追回金额(分)", "Clawback (fen)"),
        "ref": ("关联编号", "Reference"),
    },
    "review_reason": {
        "moved": ("改由其他部门负责", "moved to another department"),
        "new_auto_grant": ("新增免申即享规则", "a new no-application rule"),
        "cap_raised": ("上限提高或取消", "cap raised or removed"),
        "window_longer": ("有效期延长", "validity window longer"),
        "more_sources": ("接受更多数据来源", "more input sources accepted"),
        "more_qualify": ("符合条件的企业增加", "more enterprises qualify"),
        "amount_raised": ("有企业金额提高", "an enterprise's amount rises"),
    },
    "ledger": {
        "created": ("生成", "Created"),
        "recomputed": ("重新计算", "Recomputed"),
        "approved": ("批准", "Approved"),
        "approve": ("批准", "Approved"),
        "rejected": ("驳回", "Rejected"),
        "disbursed": ("拨付", "Disbursed"),
        "inputs_changed": ("批准后数据变化", "Data changed after approval"),
        "no_longer_eligible": ("已不再符合条件", "No longer eligible"),
        "change_confirmed": ("确认数据变化后仍维持", "Change confirmed"),
        "awarded": ("申报立项", "Awarded on application"),
        "clawback": ("追回资金", "Clawback"),
        "matching": ("匹配", "Matching"),
    },
    "rule_status": {
        "review": ("待审核", "Awaiting review"),
        "in_review": ("待审核", "Awaiting review"),
        "published": ("已发布", "Published"),
        "retired": ("已停用", "Retired"),
        "rejected": ("已退回", "Returned"),
        "withdrawn": ("已撤回", "Withdrawn"),
        "draft": ("草稿", "Draft"),
    },
    "grant_status": {
        "pending": ("待审核", "Pending review"),
        "approved": ("已批准", "Approved"),
        "rejected": ("已驳回", "Rejected"),
        "disbursed": ("已拨付", "Disbursed"),
    },
    "result": {
        "eligible": ("符合条件", "Eligible"),
        "unknown": ("待确认", "To confirm"),
        "ineligible": ("不符合", "Not eligible"),
        "near_miss": ("差一点", "Near miss"),
    },
    "source": {
        "self-reported": ("企业自报", "Self-reported"),
        "computed": ("系统计算", "Computed"),
        "registry": ("登记机关", "Registration authority"),
        "import": ("批量导入", "Bulk import"),
    },
    "flag": {
        "stale_data": ("数据过旧", "Stale data"),
        "high_amount": ("金额较大", "Large amount"),
        "no_bank_account": ("未登记银行账户", "No bank account"),
        "shared_account": ("收款账户与他企相同", "Shared bank account"),
        "yoy_jump": ("年度数据异常变化", "Year-on-year jump"),
        "self_reported": ("依据企业自报数据", "Relies on self-reported data"),
        "inputs_changed": ("批准后数据变化", "Data changed after approval"),
        "no_longer_eligible": ("已不再符合条件", "No longer eligible"),
        "inputs_changed_confirmed": ("数据变化已确认", "Change confirmed"),
        "no_longer_eligible_confirmed": ("不再符合已确认", "Change confirmed"),
    },
}


def label(kind: str, code: object, lang: str = "zh") -> str:
    """The display name of a code value (the code itself when none is declared)."""
    if code is None:
        return ""
    if kind == "field":
        return field_label(str(code), lang)
    names = LABELS.get(kind, {}).get(str(code))
    if names is None:
        return str(code)
    return names[1] if lang == "en" else names[0]


def field_label(name: str, lang: str = "zh") -> str:
    """The display name of a registry field or rule input (as the forms label it)."""
    from huiqi.enterprise.catalogue import catalogue

    try:
        f = catalogue()[name]
    except KeyError:
        return name
    return f.en if lang == "en" else f.zh


def field_value(name: str, value: Any) -> str:
    """A registry value as people read it (money in 万元, enum values by name)."""
    from huiqi.enterprise.catalogue import catalogue, display

    try:
        f = catalogue()[name]
    except KeyError:
        return "—" if value is None else str(value)
    return display(f, value)


def to_beijing(moment: datetime) -> datetime:
    """A stored moment in Beijing time; naive values are UTC (SQLite drops the zone)."""
    return in_beijing(moment)


def beijing(moment: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M", zone: bool = False) -> str:
    """Format a stored moment as Beijing time; with zone=True the zone is named (北京时间)."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.isoformat()
    text = to_beijing(moment).strftime(fmt)
    return f"{text} (北京时间)" if zone else text


def region_markup(code: str | None, lang: str = "zh") -> Markup:
    """A region code as its name, with the code on hover."""
    from huiqi.core.codes import region_name

    if not code:
        return Markup("")
    name = region_name(code) or code
    return Markup('<abbr class="code-name" title="{}">{}</abbr>').format(code, name)


def industry_markup(code: str | None, lang: str = "zh") -> Markup:
    """An industry code (GB/T 4754) as its name, with the code on hover."""
    from huiqi.core.codes import industry_name

    if not code:
        return Markup("")
    return Markup('<abbr class="code-name" title="{}">{}</abbr>').format(code, industry_name(code))


def self_reportable(name: str) -> bool:
    """Whether an enterprise may supply a registry field itself (its self-report form has it)."""
    from huiqi.enterprise.catalogue import catalogue

    f = catalogue().fields.get(name)
    return f is not None and f.self_report


def field_source(name: str) -> str:
    """The department a registry field comes from (科技, 工信, …), empty when unknown."""
    from huiqi.enterprise.catalogue import catalogue

    f = catalogue().fields.get(name)
    return f.source if f is not None and f.source not in ("computed", "self-reported") else ""


def readable_detail(detail: dict[str, Any] | None, lang: str = "zh") -> str:
    """An audit or ledger detail as 'label: value' text instead of JSON."""
    if not detail:
        return ""
    parts = []
    for key, value in detail.items():
        name = label("audit_detail", key, lang)
        if name == key:
            name = label("field", key, lang)
        if key == "account_no":
            # officers see a receiving account by its last digits; only the four-eyes payment
            # file carries the whole number
            value = mask_account(str(value)) if value else ""
        elif key in ("role", "old", "new"):
            value = label("role", value, lang)
        elif key in LABELS:
            value = label(key, value, lang)
        elif isinstance(value, bool):
            value = ("yes" if value else "no") if lang == "en" else ("是" if value else "否")
        elif isinstance(value, str):
            value = one_language(value, lang)
        elif key == "flags" and isinstance(value, list):
            name = "风险提示" if lang != "en" else "Risk flags"
            value = "、".join(label("flag", v, lang) for v in value) or "—"
        elif isinstance(value, list):
            value = "、".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ";".join(
                f"{label('field', k, lang)} {field_value(k, v)}" for k, v in value.items()
            )
        if value in ("", None):
            continue
        parts.append(f"{name}:{value}")
    return ";".join(parts)


def name_fields(text: str, lang: str = "zh") -> str:
    """Text with the registry field names it mentions replaced by their display names."""
    from huiqi.enterprise.catalogue import name_fields as named

    return named(text, lang)


def one_language(text: str, lang: str = "zh") -> str:
    """The Chinese or English half of a 'Chinese / English' text (the whole when not bilingual, or
    when it joins several such texts, where a split would lose what follows)."""
    if text.count(" / ") != 1:
        return text
    zh, _sep, en = text.partition(" / ")
    return en.strip() if lang == "en" else zh.strip()


def install(env: Environment) -> None:
    """Register the display filters on a Jinja environment (language taken from the page)."""

    def lang_of(ctx: Any) -> str:
        return str(ctx.get("lang") or "zh")

    @pass_context
    def _label(ctx: Any, code: object, kind: str) -> str:
        return label(kind, code, lang_of(ctx))

    @pass_context
    def _region(ctx: Any, code: str | None) -> Markup:
        return region_markup(code, lang_of(ctx))

    @pass_context
    def _industry(ctx: Any, code: str | None) -> Markup:
        return industry_markup(code, lang_of(ctx))

    @pass_context
    def _detail(ctx: Any, detail: dict[str, Any] | None) -> str:
        return readable_detail(detail, lang_of(ctx))

    @pass_context
    def _beijing(ctx: Any, moment: Any, fmt: str = "%Y-%m-%d %H:%M", zone: bool = False) -> str:
        text = beijing(moment, fmt)
        if zone and text:
            text += " (Beijing time)" if lang_of(ctx) == "en" else "(北京时间)"
        return text

    @pass_context
    def _fieldnames(ctx: Any, text: str) -> str:
        return name_fields(text, lang_of(ctx))

    @pass_context
    def _bilingual(ctx: Any, text: str) -> str:
        return one_language(text, lang_of(ctx))

    env.filters["fieldnames"] = _fieldnames
    env.filters["field_source"] = field_source
    env.tests["self_reportable"] = self_reportable
    env.filters["bilingual"] = _bilingual
    env.filters["label"] = _label
    env.filters["fieldvalue"] = lambda value, name: field_value(name, value)
    env.filters["region"] = _region
    env.filters["industry"] = _industry
    env.filters["readable"] = _detail
    env.filters["bj"] = _beijing
