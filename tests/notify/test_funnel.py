"""The push funnel's last stage: financing applications started from a pushed policy count as
"applied" for push and apply rules; approved grants count for auto_grant rules."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from huiqi.events import ResultChange
from huiqi.finance import demo as finance_demo
from huiqi.finance.models import Application, Need
from huiqi.grants import service as grants
from huiqi.grants.schemas import BankAccountInput
from huiqi.notify import service
from huiqi.reports import funnel as stats
from tests.grants.conftest import GRAD_RULE, ON, A, matched  # noqa: F401  (fixture)


def _apply(session: Session, code: str, product_id: int, rule_id: str | None) -> None:
    """A financing application whose need was started from a policy (or from nowhere)."""
    need = Need(
        credit_code=code,
        amount_fen=50_000_000,
        term_months=12,
        purpose="流动资金",
        collateral=[],
        source_rule_id=rule_id,
    )
    session.add(need)
    session.flush()
    session.add(
        Application(
            need_id=need.id,
            product_id=product_id,
            credit_code=code,
            institution="甘肃银行股份有限公司",
            status="submitted",
            amount_fen=need.amount_fen,
            term_months=12,
            eligibility="eligible",
            submitted_on=date(2024, 7, 1),
        )
    )
    session.flush()


def _cell(rows: list[stats.FunnelRow], rule_id: str, channel: str = "all") -> stats.FunnelRow:
    return next(r for r in rows if r.rule_id == rule_id and r.channel == channel)


def test_last_stage_counts_applications_for_push_rules_and_grants_for_auto_grant(
    db_session: Session,
    matched: list[ResultChange],  # noqa: F811
) -> None:
    service.notify_results(db_session, matched)
    pushed = next(c for c in matched if c.result == "eligible" and c.mode != "auto_grant")
    products = finance_demo.load_demo(db_session, on=ON)
    rows = stats.funnel(db_session)
    assert _cell(rows, pushed.rule_id).applied == 0
    assert stats.STAGES[-1] == "applied"

    # an application started from the pushed policy counts; one from a need without a rule,
    # or by an enterprise that was never notified of the rule, does not
    _apply(db_session, pushed.credit_code, products[0].id, pushed.rule_id)
    _apply(db_session, pushed.credit_code, products[1].id, None)
    never_told = next(
        c.credit_code
        for c in matched
        if c.credit_code != pushed.credit_code
        and not any(
            m.credit_code == c.credit_code
            and m.rule_id == pushed.rule_id
            and m.result == "eligible"
            for m in matched
        )
    )
    _apply(db_session, never_told, products[2].id, pushed.rule_id)
    rows = stats.funnel(db_session)
    push_all = _cell(rows, pushed.rule_id)
    assert push_all.applied == 1 and _cell(rows, pushed.rule_id, "inapp").applied == 1
    assert push_all.notified >= 1

    # auto_grant: an application does not count, an approved grant does
    _apply(db_session, A, products[0].id, GRAD_RULE)
    assert _cell(stats.funnel(db_session), GRAD_RULE).applied == 0
    grants.grants_from_results(db_session, matched, today=ON)
    grants.set_bank_account(
        db_session,
        A,
        BankAccountInput.parse("甘肃银行", "兰州甲机械有限公司", "6217001234567890"),
        actor="t",
    )
    a_grant = grants.grants(db_session, credit_code=A, rule_id=GRAD_RULE)[0]
    grants.review(db_session, [a_grant.id], "approve", actor="officer", ack_risk=True)
    grad = _cell(stats.funnel(db_session), GRAD_RULE)
    assert grad.applied == 1 and grad.eligible == 2  # A and B are eligible, only A granted
    assert {r.rule_id for r in stats.funnel(db_session) if r.applied} == {
        pushed.rule_id,
        GRAD_RULE,
    }
    csv_head = stats.funnel_csv(stats.funnel(db_session)).decode("utf-8-sig").splitlines()[0]
    assert csv_head.endswith(",read,applied")


def test_funnel_follows_eligible_enterprises_once_each(
    db_session: Session,
    matched: list[ResultChange],  # noqa: F811
) -> None:
    service.notify_results(db_session, matched)
    for rule_id in {c.rule_id for c in matched if c.result == "eligible"}:
        eligible = {
            c.credit_code for c in matched if c.rule_id == rule_id and c.result == "eligible"
        }
        row = _cell(stats.funnel(db_session), rule_id)
        # Data requests to enterprises whose fit is unknown are not pushes of the policy.
        assert row.notified == len(eligible) == row.eligible
    # A re-published rule notifies its enterprises again; the funnel still counts each once.
    bumped = [
        ResultChange(c.credit_code, c.rule_id, "2", c.result, mode=c.mode)
        for c in matched
        if c.rule_id == GRAD_RULE and c.result == "eligible"
    ]
    assert service.notify_results(db_session, bumped)
    grad = _cell(stats.funnel(db_session), GRAD_RULE)
    assert grad.notified == grad.delivered == len(bumped) == grad.eligible
