"""Who a rule fits, from the stored results: the audience of a push about that rule."""

from __future__ import annotations

from sqlalchemy.orm import Session

from huiqi.matching.state import RESULT_CODES
from huiqi.matching.stored import codes_of_rule
from huiqi.rules.plan import RESULT_NAMES

FITTING = ("eligible", "unknown")


def fitting_enterprises(session: Session, rule_id: str) -> list[tuple[str, str]]:
    """(credit code, result) of every enterprise a rule fits: eligible, or unknown for want of data."""
    wanted = {RESULT_CODES[r] for r in FITTING}
    return sorted(
        (code, RESULT_NAMES[x]) for code, x in codes_of_rule(session, rule_id) if x in wanted
    )
