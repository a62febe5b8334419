"""Publishing a call: it becomes a document of the policy library and a message to every
enterprise its rule fits (eligible, or to confirm with data), with the deadline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from huiqi.accounts.models import User
from huiqi.accounts.service import audit
from huiqi.core import clock
from huiqi.core.money import format_fen
from huiqi.funds.calls import ensure_manages, get_call
from huiqi.funds.errors import FundsConflict
from huiqi.funds.models import FundCall
from huiqi.funds.schemas import CallStatus
from huiqi.funds.timeline import beijing_text, stage_names

CALL_LINK = "/funds/calls/{id}"


@dataclass(frozen=True)
class Published:
    """What publishing did: the library document and how many enterprises were told."""

    call: FundCall
    policy_id: int | None
    eligible: int
    to_confirm: int


def call_text(call: FundCall) -> str:
    """The call as a plain-text notice the policy parser files (title, number, sections)."""
    lines = [call.title, ""]
    if call.doc_number:
        lines += [call.doc_number, ""]
    lines += [f"{call.fund.department}:", ""]
    if call.summary:
        lines += [call.summary, ""]
    lines += [
        "一、申报依据",
        "",
        call.legal_basis,
        "",
        "二、申报时间",
        "",
        f"{beijing_text(call.opens_at)} 至 {beijing_text(call.closes_at)}(北京时间),逾期不予受理。",
        "",
        "三、支持标准",
        "",
        f"本批次安排资金 {format_fen(call.budget_fen)}"
        + (f",单个项目支持不超过 {format_fen(call.award_cap_fen)}" if call.award_cap_fen else "")
        + (f",申报名额 {call.quota} 个" if call.quota else "")
        + "。",
        "",
        "四、申报材料",
        "",
    ]
    for i, m in enumerate(call.materials or [], 1):
        need = "必需" if m.get("required") else "可选"
        lines.append(
            f"{i}. {m['name_zh']}({need};{'/'.join(m['types']).upper()},不超过 {m['max_mb']} MB)"
        )
    lines += ["", "五、评审程序", ""]
    for i, (zh, _en, days) in enumerate(stage_names(call), 1):
        lines.append(f"{i}. {zh}(约 {days} 个工作日)")
    lines += [
        f"评审结果公示 {call.objection_days} 个工作日,公示无异议后下达资金。",
        "",
        "六、申报方式",
        "",
        "通过惠企平台“快申快享”在线申报,企业基本信息由平台根据登记数据自动填写。",
    ]
    return "\n".join(lines) + "\n"


def publish_call(session: Session, actor: User, call_id: int) -> Published:
    """Open a draft call: file it in the policy library and tell the enterprises its rule fits."""
    from huiqi.policy.ingest import SourceText
    from huiqi.policy.service import import_source

    call = get_call(session, call_id, actor)
    ensure_manages(session, actor, call.fund.department)
    if call.status != CallStatus.draft:
        raise FundsConflict("该申报通知已发布", "the call is already published")
    if clock.now() >= clock.aware(call.closes_at):
        raise FundsConflict("申报截止时间已过,不能发布", "the call's deadline has passed")
    source = SourceText(f"funds-call-{call.id}.txt", "text", "utf-8", call_text(call))
    result = import_source(session, source, publish=True, user_id=actor.id)
    call.published_policy_id = result.policy.id
    call.status = CallStatus.open
    call.published_at = clock.now()
    call.updated_at = call.published_at
    eligible, to_confirm = push_call(session, call)
    audit(
        session,
        "funds.call_published",
        user=actor,
        actor=actor,
        call=call.id,
        policy=result.policy.id,
        eligible=eligible,
        to_confirm=to_confirm,
    )
    return Published(call, result.policy.id, eligible, to_confirm)


def push_call(session: Session, call: FundCall) -> tuple[int, int]:
    """Queue the call's message to every enterprise its rule fits, once each; (eligible, to confirm)."""
    if not call.rule_id:
        return 0, 0
    from huiqi.matching.fits import fitting_enterprises
    from huiqi.notify.models import Topic
    from huiqi.notify.service import NoteSpec, queue_notes

    deadline = clock.beijing_day(call.closes_at)
    specs = []
    counts = {"eligible": 0, "unknown": 0}
    for code, result in fitting_enterprises(session, call.rule_id):
        counts[result] += 1
        if result == "eligible":
            fit = "根据登记数据,贵企业符合申报条件。"
            fit_en = "By its registered data, your enterprise meets the call's conditions."
        else:
            fit = "贵企业可能符合申报条件,申报时请补充所缺数据。"
            fit_en = (
                "Your enterprise may meet the call's conditions; supply the missing data when"
                " applying."
            )
        specs.append(
            NoteSpec(
                credit_code=code,
                topic=Topic.funds,
                subject=f"申报通知:{call.title}(截止 {deadline.isoformat()})",
                body=(
                    f"{fit}申报截止时间:{beijing_text(call.closes_at)}(北京时间)。"
                    "企业信息已按登记数据预先填写,点击即可在线申报。"
                ),
                link=CALL_LINK.format(id=call.id),
                dedupe_key=f"funds-call:{call.id}:{code}",
                rule_id=call.rule_id,
                deadline=deadline,
                subject_en=f"Call for applications: {call.title} (closes {deadline.isoformat()})",
                body_en=(
                    f"{fit_en} Applications close at {beijing_text(call.closes_at)} (Beijing"
                    " time). The form is filled in from your registered data; apply online in"
                    " one click."
                ),
            )
        )
    queue_notes(session, specs)
    return counts["eligible"], counts["unknown"]
