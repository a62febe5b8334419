"""The ranked list within budget: order, cut line, caps, quota, and the budget invariant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huiqi.funds.award import AwardError, AwardTerms, Candidate, Outcome, order, rank

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def cand(i: int, score: str, minutes: int, fen: int) -> Candidate:
    return Candidate(i, Decimal(score), T0 + timedelta(minutes=minutes), fen, f"企业{i}")


def test_ties_go_to_the_earlier_submission_then_the_lower_number() -> None:
    a, b, c, d = cand(4, "90", 5, 1), cand(3, "90", 1, 1), cand(2, "95", 9, 1), cand(1, "90", 1, 1)
    assert [x.application_id for x in order([a, b, c, d])] == [2, 1, 3, 4]


def test_budget_that_does_not_cover_everyone_draws_a_cut_line() -> None:
    cands = [cand(1, "92", 0, 400_000), cand(2, "88", 1, 500_000), cand(3, "85", 2, 300_000)]
    result = rank(cands, AwardTerms(budget_fen=800_000))
    assert [(line.candidate.application_id, line.outcome) for line in result.lines] == [
        (1, Outcome.awarded),
        (2, Outcome.cut),
        (3, Outcome.cut),  # would fit, but ranks below the line: never jumps it
    ]
    assert result.lines[1].code == "budget" and "预算不足" in result.lines[1].reason_zh
    assert result.lines[2].code == "below_line"
    assert result.cut_rank == 2 and result.total_fen == 400_000 and result.left_fen == 400_000


def test_partial_award_at_the_line_when_the_call_allows_it() -> None:
    cands = [cand(1, "92", 0, 400_000), cand(2, "88", 1, 500_000), cand(3, "85", 2, 300_000)]
    result = rank(cands, AwardTerms(budget_fen=800_000, allow_partial=True))
    assert [line.award_fen for line in result.lines] == [400_000, 400_000, 0]
    assert result.lines[1].outcome == Outcome.partial
    assert result.total_fen == 800_000 and result.left_fen == 0


def test_cap_quota_and_pass_mark() -> None:
    cands = [
        cand(1, "95", 0, 9_000_000),
        cand(2, "90", 1, 100_000),
        cand(3, "59", 2, 100_000),
        cand(4, "80", 3, 100_000),
    ]
    terms = AwardTerms(
        budget_fen=10_000_000, cap_per_award_fen=5_000_000, quota=2, pass_mark=Decimal("60")
    )
    result = rank(cands, terms)
    by_id = {line.candidate.application_id: line for line in result.lines}
    assert by_id[1].award_fen == 5_000_000 and by_id[1].code == "capped"
    assert by_id[2].outcome == Outcome.awarded
    assert by_id[4].code == "quota"
    assert by_id[3].code == "pass_mark" and "及格线" in by_id[3].reason_zh


def test_bad_terms_and_duplicates_are_refused() -> None:
    with pytest.raises(AwardError):
        AwardTerms(budget_fen=-1)
    with pytest.raises(AwardError):
        AwardTerms(budget_fen=1, cap_per_award_fen=0)
    with pytest.raises(AwardError, match="两次"):
        rank([cand(1, "1", 0, 1), cand(1, "2", 0, 1)], AwardTerms(budget_fen=10))


candidates = st.lists(
    st.builds(
        cand,
        st.integers(1, 10**6),
        st.sampled_from(["60", "70.5", "80", "90", "100"]),
        st.integers(0, 1000),
        st.integers(0, 10**8),
    ),
    max_size=30,
    unique_by=lambda c: c.application_id,
)


@given(
    candidates,
    st.integers(0, 10**9),
    st.none() | st.integers(1, 10**8),
    st.none() | st.integers(0, 30),
    st.booleans(),
)
def test_awards_never_exceed_budget_cap_or_quota(
    cands: list[Candidate], budget: int, cap: int | None, quota: int | None, partial: bool
) -> None:
    terms = AwardTerms(budget_fen=budget, cap_per_award_fen=cap, quota=quota, allow_partial=partial)
    result = rank(cands, terms)
    assert result.total_fen <= budget
    assert len(result.lines) == len(cands)
    awarded = result.awarded
    if quota is not None:
        assert len(awarded) <= quota
    for line in result.lines:
        assert 0 <= line.award_fen <= line.candidate.requested_fen
        if cap is not None:
            assert line.award_fen <= cap
    # nobody below the cut line receives money
    if result.cut_rank is not None:
        assert all(not line.awarded for line in result.lines if line.rank > result.cut_rank)
    # the list is in rank order
    assert [line.candidate for line in result.lines] == order(cands)
