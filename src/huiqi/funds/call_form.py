"""The officer's form for a new call, read into CallTerms: one line per material, stage and
criterion, so a call is set up in a browser without writing JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from huiqi.core import clock
from huiqi.core.money import to_fen
from huiqi.funds.calls import CallTerms
from huiqi.funds.errors import FundsError

EXAMPLE_MATERIALS = "plan|项目实施方案|pdf,docx|10|必需\nlicense|营业执照|pdf,jpg,png|5|必需"
EXAMPLE_STAGES = "county|5\ncity|5\nprovince|10"
EXAMPLE_CRITERIA = "innovation|创新能力|60\ngrowth|成长性|40"


def _lines(text: str) -> list[list[str]]:
    return [[p.strip() for p in line.split("|")] for line in text.splitlines() if line.strip()]


def materials(text: str) -> list[dict[str, Any]]:
    """``key|名称|types|max MB|必需 or 可选`` per line."""
    out = []
    for parts in _lines(text):
        if len(parts) < 3:
            raise FundsError(
                f"材料行格式为 代码|名称|类型|大小上限MB|必需:{'|'.join(parts)}",
                "a material line is key|name|types|max MB|required",
                field="materials",
            )
        out.append(
            {
                "key": parts[0],
                "name_zh": parts[1],
                "types": [t.strip() for t in parts[2].split(",") if t.strip()],
                "max_mb": int(parts[3]) if len(parts) > 3 and parts[3].isdigit() else 10,
                "required": not (len(parts) > 4 and parts[4] in ("可选", "optional", "no")),
            }
        )
    return out


def stages(text: str) -> list[dict[str, Any]]:
    """``level|working days`` per line, in review order."""
    out = []
    for parts in _lines(text):
        days = parts[1] if len(parts) > 1 else ""
        if not days.isdigit():
            raise FundsError(
                f"评审环节行格式为 层级|工作日:{'|'.join(parts)}",
                "a stage line is level|working days",
                field="stages",
            )
        out.append({"key": parts[0], "level": parts[0], "days": int(days)})
    return out


def criteria(text: str) -> list[dict[str, Any]]:
    """``key|名称|max points`` per line."""
    out = []
    for parts in _lines(text):
        if len(parts) < 3 or not parts[2].isdigit():
            raise FundsError(
                f"评分项行格式为 代码|名称|分值:{'|'.join(parts)}",
                "a criterion line is key|name|points",
                field="criteria",
            )
        out.append({"key": parts[0], "name_zh": parts[1], "max_points": int(parts[2]), "weight": 1})
    return out


def beijing_moment(text: str, field: str) -> datetime:
    """A form's ``YYYY-MM-DDTHH:MM`` read as Beijing time."""
    try:
        local = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FundsError(
            f"时间格式有误:{text}", f"not a date and time: {text}", field=field
        ) from None
    return local.replace(tzinfo=clock.BEIJING) if local.tzinfo is None else local


def yuan(text: str, field: str, *, required: bool) -> int | None:
    """An amount in yuan as fen (None when left empty and not required)."""
    raw = (text or "").strip().replace(",", "")
    if not raw:
        if required:
            raise FundsError("请填写金额", "an amount is required", field=field)
        return None
    try:
        return to_fen(raw, "yuan")
    except ValueError:
        raise FundsError(f"金额格式有误:{raw}", f"not an amount: {raw}", field=field) from None


def terms(form: dict[str, str]) -> CallTerms:
    """CallTerms from the form's fields (every check of create_call still applies)."""
    fund_line = form.get("fund_line", "")
    fund_id, _, line_id = fund_line.partition(":")
    if not fund_id.isdigit() or not line_id.isdigit():
        raise FundsError(
            "请选择专项资金和预算科目", "choose a fund and a budget line", field="fund_line"
        )
    quota = (form.get("quota") or "").strip()
    if quota and not quota.isdigit():
        raise FundsError("申报名额须为正整数", "the quota must be a whole number", field="quota")
    return CallTerms(
        fund_id=int(fund_id),
        budget_line_id=int(line_id),
        title=form.get("title", ""),
        legal_basis=form.get("legal_basis", ""),
        opens_at=beijing_moment(form.get("opens_at", ""), "opens_at"),
        closes_at=beijing_moment(form.get("closes_at", ""), "closes_at"),
        budget_fen=yuan(form.get("budget_yuan", ""), "budget_yuan", required=True) or 0,
        award_cap_fen=yuan(form.get("cap_yuan", ""), "cap_yuan", required=False),
        quota=int(quota) if quota else None,
        rule_id=(form.get("rule_id") or "").strip() or None,
        doc_number=form.get("doc_number") or None,
        summary=form.get("summary", ""),
        materials=materials(form.get("materials", "")),
        stages=stages(form.get("stages", "")),
        criteria=criteria(form.get("criteria", "")),
        objection_days=int(form["objection_days"])
        if (form.get("objection_days") or "").isdigit()
        else 5,
    )
