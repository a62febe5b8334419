"""The ranked list within budget (拟支持名单): who is awarded, who is cut, and why.

Legal basis: 甘工信发〔2020〕351号 (七) — the special fund is to be managed ("加强中小企业专项资金
管理"), so a call never awards more than its budget; the calls it funds — (二十三) rewards for
规下转规上 and 科技"小巨人", (二十四) 专精特新 support, (十三) IP-pledge loan rewards, (三十三)
export support — each award by merit within the money available.

The rule, the same for every call:

1. Applications that passed review are ranked by score (highest first); a tie goes to the
   earlier submission, then to the lower application number, so the order never depends on
   the database.
2. Each award is the amount requested (or computed, e.g. an interest subsidy), limited to the
   call's per-award cap.
3. Going down the list, an application is awarded while the quota (number of awards) and the
   budget left both allow its whole award. The first one that does not fit draws the cut line:
   it and everyone below it are cut — a lower-ranked applicant never receives money an
   applicant ranked above it could not — unless the call allows partial awards, when the one
   at the line receives what is left.
4. Applications scoring under the call's pass mark are cut whatever the budget.

Every cut line carries its reason in Chinese and English.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from huiqi.core.errors import Invalid
from huiqi.core.money import format_fen

LEGAL_BASIS = "甘工信发〔2020〕351号 (七)"


class AwardError(Invalid):
    """Award terms or candidates that cannot give a ranked list."""


class Outcome(StrEnum):
    """What the ranked list decides for one application."""

    awarded = "awarded"
    partial = "partial"  # awarded what was left of the budget (only when the call allows it)
    cut = "cut"


OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    Outcome.awarded: ("拟支持", "Awarded"),
    Outcome.partial: ("拟部分支持", "Partly awarded"),
    Outcome.cut: ("未入选", "Cut"),
}


@dataclass(frozen=True)
class Candidate:
    """An application that passed review, as the ranking sees it."""

    application_id: int
    score: Decimal
    submitted_at: datetime
    requested_fen: int
    label: str = ""  # enterprise name, for the list

    def __post_init__(self) -> None:
        if self.requested_fen < 0:
            raise AwardError(
                f"申请 #{self.application_id} 的申请金额不能为负",
                f"application #{self.application_id}: the amount requested cannot be negative",
            )


@dataclass(frozen=True)
class AwardTerms:
    """What the call says about awards."""

    budget_fen: int  # what is left of the call's budget (and of its fund line) for this list
    cap_per_award_fen: int | None = None
    quota: int | None = None  # most awards the call makes
    pass_mark: Decimal | None = None  # lowest score that may be awarded
    allow_partial: bool = False
    legal_basis: str = LEGAL_BASIS

    def __post_init__(self) -> None:
        if self.budget_fen < 0:
            raise AwardError(
                "可用预算不能为负", "the budget left cannot be negative", field="budget"
            )
        if self.cap_per_award_fen is not None and self.cap_per_award_fen <= 0:
            raise AwardError(
                "单项支持上限须大于 0", "the per-award cap must be above 0", field="cap"
            )
        if self.quota is not None and self.quota < 0:
            raise AwardError("名额不能为负", "the quota cannot be negative", field="quota")


@dataclass(frozen=True)
class RankedLine:
    """One line of the ranked list."""

    rank: int
    candidate: Candidate
    outcome: Outcome
    award_fen: int
    code: str  # awarded | capped | partial | pass_mark | quota | budget | below_line | nothing
    reason_zh: str
    reason_en: str

    @property
    def awarded(self) -> bool:
        """Whether the line receives money."""
        return self.outcome != Outcome.cut


@dataclass(frozen=True)
class RankedList:
    """The whole list with its totals; `sum(awards) ≤ budget` always."""

    lines: tuple[RankedLine, ...]
    terms: AwardTerms

    @property
    def total_fen(self) -> int:
        """Sum of the awards."""
        return sum(line.award_fen for line in self.lines)

    @property
    def left_fen(self) -> int:
        """Budget not awarded."""
        return self.terms.budget_fen - self.total_fen

    @property
    def awarded(self) -> tuple[RankedLine, ...]:
        """The lines that receive money."""
        return tuple(line for line in self.lines if line.awarded)

    @property
    def cut(self) -> tuple[RankedLine, ...]:
        """The lines that do not."""
        return tuple(line for line in self.lines if not line.awarded)

    @property
    def cut_rank(self) -> int | None:
        """The rank of the first line cut by budget or quota (the cut line), if any."""
        for line in self.lines:
            if line.code in ("quota", "budget", "partial"):
                return line.rank
        return None


def order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Highest score first; ties to the earlier submission, then the lower application number."""
    return sorted(candidates, key=lambda c: (-c.score, c.submitted_at, c.application_id))


def rank(candidates: Iterable[Candidate], terms: AwardTerms) -> RankedList:
    """The ranked list within the budget, the cap and the quota (see the module's rule)."""
    ranked = order(candidates)
    ids = [c.application_id for c in ranked]
    if len(set(ids)) != len(ids):
        raise AwardError("同一申请在名单中出现两次", "an application appears twice in the list")
    left = terms.budget_fen
    awarded = 0
    line_drawn: tuple[str, str, str] | None = None
    lines: list[RankedLine] = []
    for i, cand in enumerate(ranked, 1):
        want = cand.requested_fen
        capped = terms.cap_per_award_fen is not None and want > terms.cap_per_award_fen
        if capped and terms.cap_per_award_fen is not None:
            want = terms.cap_per_award_fen

        def cut(code: str, zh: str, en: str, i: int = i, cand: Candidate = cand) -> None:
            lines.append(RankedLine(i, cand, Outcome.cut, 0, code, zh, en))

        if terms.pass_mark is not None and cand.score < terms.pass_mark:
            cut(
                "pass_mark",
                f"得分 {cand.score} 低于及格线 {terms.pass_mark}",
                f"score {cand.score} below the pass mark {terms.pass_mark}",
            )
            continue
        if line_drawn is not None:
            cut(*line_drawn)
            continue
        if terms.quota is not None and awarded >= terms.quota:
            line_drawn = (
                "below_line",
                f"名额已满(本批次 {terms.quota} 个),位于分数线以下",
                f"below the cut line: the quota of {terms.quota} is filled",
            )
            cut("quota", *line_drawn[1:])
            continue
        if want == 0:
            cut("nothing", "申请金额为 0", "nothing requested")
            continue
        if want > left:
            if terms.allow_partial and left > 0:
                lines.append(
                    RankedLine(
                        i,
                        cand,
                        Outcome.partial,
                        left,
                        "partial",
                        f"预算仅余 {format_fen(left)},按余额部分支持(应支持 {format_fen(want)})",
                        f"partly awarded: {left} fen left of the {want} fen due",
                    )
                )
                awarded += 1
                left = 0
                line_drawn = (
                    "below_line",
                    "预算已用完,位于分数线以下",
                    "below the cut line: the budget is used up",
                )
                continue
            line_drawn = (
                "below_line",
                "预算不足,位于分数线以下",
                "below the cut line: the budget left does not cover the award",
            )
            cut(
                "budget",
                f"预算不足:仅余 {format_fen(left)},应支持 {format_fen(want)}(分数线)",
                f"the cut line: {left} fen left, {want} fen due",
            )
            continue
        reason_zh = f"按得分排名第 {i} 位,支持 {format_fen(want)}"
        reason_en = f"rank {i}: awarded {want} fen"
        if capped:
            reason_zh += f"(申请 {format_fen(cand.requested_fen)},超过单项上限,按上限计)"
            reason_en += f" (asked {cand.requested_fen} fen, limited to the per-award cap)"
        code = "capped" if capped else "awarded"
        lines.append(RankedLine(i, cand, Outcome.awarded, want, code, reason_zh, reason_en))
        left -= want
        awarded += 1
    result = RankedList(tuple(lines), terms)
    if result.total_fen > terms.budget_fen:  # the invariant the whole module exists for
        raise AwardError("拟支持金额超过预算", "the awards exceed the budget")
    return result
