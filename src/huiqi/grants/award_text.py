"""What an enterprise is told when the award of its application (快申快享) is paid."""

from __future__ import annotations

from huiqi.core.money import format_fen, format_fen_en
from huiqi.grants.models import Grant
from huiqi.grants.schemas import mask_account

# The snapshot kind of grants entered from the award of an application.
AWARD_KIND = "award"


def award_message(grant: Grant) -> tuple[str, str]:
    """What an enterprise is told when the award of its application is paid."""
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "贵企业:",
        f"贵企业申报的「{grant.rule_title}」(政策依据:{grant.legal_basis})已立项并拨付。",
        f"金额:{format_fen(grant.amount_fen)}",
        f"收款账户:{grant.bank_name or ''} {mask_account(grant.account_no)}",
    ]
    lines += [f"计算方式:{line}" for line in grant.snapshot.get("explain") or []]
    lines.append(
        f"怎么办:请按申报通知的要求按期报送绩效情况。如有疑问,请联系{grant.department or '主管部门'}。"
    )
    return f"「{grant.rule_title}」{format_fen(grant.amount_fen)} 已拨付", "\n".join(lines)


def award_message_en(grant: Grant) -> tuple[str, str]:
    """The same message in English (the computation is explained on the grant page)."""
    lines = [
        f"{grant.enterprise_name}:" if grant.enterprise_name else "Dear enterprise:",
        f"Your application for “{grant.rule_title}” (legal basis: {grant.legal_basis})"
        " was approved and paid.",
        f"Amount: {format_fen_en(grant.amount_fen)}",
        f"Paid to: {grant.bank_name or ''} {mask_account(grant.account_no)}",
        "What to do: report on the project's performance as the call requires. With questions,"
        f" contact {grant.department or 'the department in charge'}.",
    ]
    return f"“{grant.rule_title}”: {format_fen_en(grant.amount_fen)} paid", "\n".join(lines)
