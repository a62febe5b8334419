"""Loan interest subsidy (贷款贴息), exact to the fen.

Legal basis: 甘工信发〔2020〕351号 (七) — the provincial SME special fund supports enterprises
"采取贷款贴息、奖励、补助、股权投资等多种形式"; (十三) — an incentive mechanism for
intellectual-property pledge loans ("建立知识产权质押贷款激励奖励机制…将商标质押贷款列入奖补范围").
The formula is the one every subsidy notice states:

    subsidy = principal × annual rate × interest days ÷ day-count basis × subsidised share

- *annual rate* is the loan's contract rate, limited to the call's rate ceiling when it has one
  (notices cap the subsidised rate, e.g. at the LPR of the loan's date);
- *interest days* are counted the way banks count them, 算头不算尾: the first day counts, the
  repayment day does not, and only days inside the call's subsidy window count;
- *day-count basis* is 360 or 365, as the call states (banks quote a daily rate as the annual
  rate ÷ 360; some notices use 365);
- *subsidised share* is the part of the interest the fund pays (e.g. 50%).

Each loan's subsidy is computed exactly with `Fraction` and rounded once to whole fen with the
call's stated rounding (四舍五入 ``ROUND_HALF_UP`` unless the call says otherwise); the per-loan
and per-enterprise caps of the call are then applied to the rounded amounts, so the total is the
sum of the lines a reviewer sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

from huiqi.core.errors import Invalid
from huiqi.core.money import format_fen

BASES = (360, 365)
ROUNDINGS = {
    "half_up": ROUND_HALF_UP,  # 四舍五入 (the usual rule for amounts paid out)
    "down": ROUND_DOWN,  # 舍去分以下 (some notices: never pay a fraction up)
    "half_even": ROUND_HALF_EVEN,  # 银行家舍入
}
LEGAL_BASIS = "甘工信发〔2020〕351号 (七)、(十三)"


class InterestError(Invalid):
    """Loan or subsidy terms that cannot give an exact subsidy."""


@dataclass(frozen=True)
class SubsidyTerms:
    """What a call says about interest subsidies (贴息条款)."""

    window_start: date  # first day of interest the fund subsidises
    window_end: date  # last day of interest the fund subsidises (inclusive)
    day_count_basis: int = 360
    share: Decimal = Decimal("1")  # part of the interest paid, 0 < share ≤ 1
    rate_ceiling: Decimal | None = None  # highest annual rate subsidised, e.g. Decimal("0.0385")
    cap_per_loan_fen: int | None = None
    cap_per_enterprise_fen: int | None = None
    rounding: str = "half_up"
    legal_basis: str = LEGAL_BASIS

    def __post_init__(self) -> None:
        if self.day_count_basis not in BASES:
            raise InterestError(
                f"计息基数须为 360 或 365 天:{self.day_count_basis}",
                f"the day-count basis must be 360 or 365: {self.day_count_basis}",
                field="day_count_basis",
            )
        if not Decimal(0) < self.share <= Decimal(1):
            raise InterestError(
                f"贴息比例须大于 0 且不超过 100%:{self.share}",
                f"the subsidised share must be above 0 and at most 1: {self.share}",
                field="share",
            )
        if self.window_end < self.window_start:
            raise InterestError(
                "贴息期间的结束日早于开始日",
                "the subsidy window ends before it starts",
                field="window_end",
            )
        if self.rate_ceiling is not None and self.rate_ceiling <= 0:
            raise InterestError(
                "贴息利率上限须大于 0", "the rate ceiling must be above 0", field="rate_ceiling"
            )
        for name, cap in (
            ("cap_per_loan_fen", self.cap_per_loan_fen),
            ("cap_per_enterprise_fen", self.cap_per_enterprise_fen),
        ):
            if cap is not None and cap < 0:
                raise InterestError(
                    "贴息上限不能为负", "a subsidy cap cannot be negative", field=name
                )
        if self.rounding not in ROUNDINGS:
            raise InterestError(
                f"未知的舍入方式:{self.rounding}",
                f"unknown rounding {self.rounding!r} (half_up, down, half_even)",
                field="rounding",
            )


@dataclass(frozen=True)
class Loan:
    """One loan record entered with an application (by the enterprise or the lender)."""

    ref: str  # contract number
    principal_fen: int
    annual_rate: Decimal  # e.g. Decimal("0.0435") for 4.35%
    start: date  # value date (放款日)
    end: date  # repayment date, or the day interest stops (not counted)

    def __post_init__(self) -> None:
        if self.principal_fen <= 0:
            raise InterestError(
                f"贷款 {self.ref}:本金须大于 0",
                f"loan {self.ref}: the principal must be above 0",
                field="principal",
            )
        if not Decimal(0) <= self.annual_rate < Decimal(1):
            raise InterestError(
                f"贷款 {self.ref}:年利率须在 0 与 100% 之间:{self.annual_rate}",
                f"loan {self.ref}: the annual rate must be between 0 and 1: {self.annual_rate}",
                field="annual_rate",
            )
        if self.end < self.start:
            raise InterestError(
                f"贷款 {self.ref}:到期日早于放款日",
                f"loan {self.ref}: repaid before it was lent",
                field="end",
            )


@dataclass(frozen=True)
class SubsidyLine:
    """One loan's subsidy with the numbers that give it, for the reviewer and the enterprise."""

    ref: str
    principal_fen: int
    rate: Decimal  # the rate subsidised (after the ceiling)
    days: int
    exact_fen: Fraction  # before rounding
    computed_fen: int  # rounded
    fen: int  # after the per-loan cap
    capped: bool


@dataclass(frozen=True)
class Subsidy:
    """The subsidy of one application: its loans' lines and the capped total."""

    lines: tuple[SubsidyLine, ...]
    before_cap_fen: int
    total_fen: int
    capped: bool
    terms: SubsidyTerms


def interest_days(start: date, end: date, window_start: date, window_end: date) -> int:
    """Days of interest inside the window, 算头不算尾 (first day counted, repayment day not)."""
    first = max(start, window_start)
    # interest accrues up to the day before repayment; the window's last day is inclusive
    stop = min(end, date.fromordinal(window_end.toordinal() + 1))
    return max(0, (stop - first).days)


def round_fen(value: Fraction, rounding: str = "half_up") -> int:
    """Round an exact, non-negative amount in fen to whole fen by the stated rule."""
    if rounding not in ROUNDINGS:
        raise InterestError(f"未知的舍入方式:{rounding}", f"unknown rounding {rounding!r}")
    if value < 0:
        raise InterestError("贴息金额不能为负", "a subsidy cannot be negative")
    floor = value.numerator // value.denominator
    rest = value - floor
    mode = ROUNDINGS[rounding]
    if rest == 0 or mode == ROUND_DOWN or rest < Fraction(1, 2):
        return floor
    if rest > Fraction(1, 2) or mode == ROUND_HALF_UP:
        return floor + 1
    return floor if floor % 2 == 0 else floor + 1  # ROUND_HALF_EVEN on an exact half


def subsidy_line(loan: Loan, terms: SubsidyTerms) -> SubsidyLine:
    """One loan's subsidy under the call's terms."""
    rate = loan.annual_rate
    if terms.rate_ceiling is not None and rate > terms.rate_ceiling:
        rate = terms.rate_ceiling
    days = interest_days(loan.start, loan.end, terms.window_start, terms.window_end)
    exact = (
        Fraction(loan.principal_fen)
        * Fraction(rate)
        * days
        / terms.day_count_basis
        * Fraction(terms.share)
    )
    computed = round_fen(exact, terms.rounding)
    fen = computed
    capped = terms.cap_per_loan_fen is not None and computed > terms.cap_per_loan_fen
    if capped and terms.cap_per_loan_fen is not None:
        fen = terms.cap_per_loan_fen
    return SubsidyLine(loan.ref, loan.principal_fen, rate, days, exact, computed, fen, capped)


def subsidy(loans: Iterable[Loan], terms: SubsidyTerms) -> Subsidy:
    """The subsidy of an application's loans: per-loan lines, then the per-enterprise cap."""
    loans = list(loans)
    refs = [loan.ref for loan in loans]
    dupes = sorted({r for r in refs if refs.count(r) > 1})
    if dupes:
        raise InterestError(
            f"同一笔贷款不能重复申报贴息:{'、'.join(dupes)}",
            f"the same loan cannot be claimed twice: {', '.join(dupes)}",
            field="loans",
        )
    lines = tuple(subsidy_line(loan, terms) for loan in loans)
    before = sum(line.fen for line in lines)
    cap = terms.cap_per_enterprise_fen
    total = before if cap is None else min(before, cap)
    return Subsidy(lines, before, total, total < before, terms)


def explain(result: Subsidy) -> Sequence[str]:
    """The computation in Chinese, one line per loan and one for the total."""
    t = result.terms
    share = f"{(t.share * 100).normalize():f}%"
    out = [
        f"贷款 {line.ref}:本金 {format_fen(line.principal_fen)} × 年利率 {line.rate} × "
        f"{line.days} 天 ÷ {t.day_count_basis} × {share} = {format_fen(line.computed_fen)}"
        + (f",超过单笔上限,按 {format_fen(line.fen)} 计" if line.capped else "")
        for line in result.lines
    ]
    total = f"贴息合计 {format_fen(result.total_fen)}"
    if result.capped:
        total += f"(超过每户上限,按上限计;未封顶为 {format_fen(result.before_cap_fen)})"
    out.append(f"{total} — 依据 {t.legal_basis}")
    return out
