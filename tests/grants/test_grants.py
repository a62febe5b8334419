"""Grants from auto_grant results: amounts, snapshots that recompute, risk flags, review,
disbursement files, notification, public notice, append-only ledger."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from huiqi import events
from huiqi.accounts.models import Role
from huiqi.enterprise import service as registry
from huiqi.events import ResultChange, ResultsChanged
from huiqi.grants import service
from huiqi.grants.models import Grant, LedgerEntry
from huiqi.grants.schemas import BankAccountInput, GrantError, GrantFourEyes
from huiqi.matching import service as matching
from huiqi.matching.models import RuleVersion
from huiqi.matching.service import base_library
from huiqi.notify.models import Notification
from tests.grants.conftest import GRAD_RULE, ON, PER_GRADUATE_FEN, A, B, C


def _grant(session: Session, code: str) -> Grant:
    found = session.scalar(select(Grant).where(Grant.credit_code == code))
    assert found is not None
    return found


def _account(session: Session, code: str, number: str = "6228480012345678901") -> None:
    service.set_bank_account(
        session,
        code,
        BankAccountInput.parse("中国农业银行兰州分行", "某某有限公司", number),
        actor="t",
    )


def test_eligible_enterprises_get_exact_grants_that_recompute(
    db_session: Session, matched: list[ResultChange]
) -> None:
    created = service.grants_from_results(db_session, matched, today=ON)
    assert {g.credit_code for g in created} == {A, B}
    a, b = _grant(db_session, A), _grant(db_session, B)
    assert a.amount_fen == 3 * PER_GRADUATE_FEN and b.amount_fen == 8 * PER_GRADUATE_FEN
    assert a.status == "pending" and a.rule_id == GRAD_RULE and a.rule_version == 1
    assert a.period == 2023 and a.legal_basis == "甘工信发〔2020〕351号 (二十二)"
    assert a.snapshot["inputs"]["graduate_hires"] == 3
    assert a.snapshot["on"] == "2024-06-30"
    assert a.snapshot["as_of"]["graduate_hires"] == "2024-05-31"
    assert a.snapshot["inputs"]["graduate_insurance_paid"] == 3 * PER_GRADUATE_FEN
    for grant in (a, b):
        assert service.recompute(db_session, grant) == grant.amount_fen
    # the same results again create nothing
    assert service.grants_from_results(db_session, matched, today=ON) == []
    assert len(db_session.scalars(select(Grant)).all()) == 2
    # the snapshot, not today's registry, decides the recomputation
    registry.apply_changes(
        db_session,
        A,
        {"graduate_hires": 5, "graduate_insurance_paid": 5 * PER_GRADUATE_FEN},
        source="人社",
        as_of=ON,
        year=2023,
    )
    assert service.recompute(db_session, a) == 3 * PER_GRADUATE_FEN
    assert service.verify_ledger(db_session) == []


def test_risk_flags(db_session: Session, matched: list[ResultChange]) -> None:
    registry.apply_changes(
        db_session, B, {"employees": 2}, source="税务", as_of=date(2023, 5, 31), year=2022
    )
    service.grants_from_results(db_session, matched, today=date(2025, 6, 30))
    a, b = _grant(db_session, A), _grant(db_session, B)
    codes_a = {f["code"] for f in a.risk_flags}
    codes_b = {f["code"] for f in b.risk_flags}
    assert codes_a == {"stale_data", "no_bank_account"}
    assert {"stale_data", "no_bank_account", "high_amount", "yoy_jump"} <= codes_b
    jump = next(f for f in b.risk_flags if f["code"] == "yoy_jump")
    assert jump["field"] == "employees"
    _account(db_session, A)
    _account(db_session, B)  # the same account for two enterprises
    assert "shared_account" in {f["code"] for f in _grant(db_session, A).risk_flags}
    assert "no_bank_account" not in {f["code"] for f in _grant(db_session, A).risk_flags}


def test_batch_review_and_disbursement(db_session: Session, matched: list[ResultChange]) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    a, b = _grant(db_session, A), _grant(db_session, B)
    _account(db_session, A, "6228480012345678901")
    with pytest.raises(GrantError):
        service.review(db_session, [b.id], "reject", actor="officer1", reason="  ")
    # A's data (as of 2024) is stale by now: its approval needs the flags acknowledged
    assert "stale_data" in {f["code"] for f in a.risk_flags}
    report = service.review(db_session, [a.id, b.id], "approve", actor="officer1")
    assert report.done == [] and dict(report.skipped) == {
        a.id: "risk flags not acknowledged",
        b.id: "no bank account",
    }
    report = service.review(db_session, [a.id, b.id], "approve", actor="officer1", ack_risk=True)
    assert report.done == [a.id] and report.skipped == [(b.id, "no bank account")]
    report = service.review(
        db_session, [b.id], "reject", actor="officer1", reason="毕业生人数待人社核实"
    )
    assert report.done == [b.id] and _grant(db_session, B).status == "rejected"

    # four-eyes: the officer who approved may not build the payment file for the same grant
    with pytest.raises(GrantFourEyes, match=f"#{a.id}"):
        service.create_disbursement(db_session, actor="officer1")
    batch = service.create_disbursement(db_session, actor="officer2")
    assert batch.count == 1 and batch.total_fen == 3 * PER_GRADUATE_FEN
    rows = service.disbursement_rows(db_session, batch.id)
    parsed = list(csv.reader(io.StringIO(service.disbursement_csv(rows).decode("utf-8-sig"))))
    assert parsed[0][:3] == ["序号", "统一社会信用代码", "企业名称"]
    assert (
        parsed[1][1] == A and parsed[1][5] == "6228480012345678901" and parsed[1][6] == "36450.00"
    )
    sheet = load_workbook(io.BytesIO(service.disbursement_xlsx(rows))).active
    assert sheet is not None
    assert sheet["B2"].value == A and sheet["F2"].value == "6228480012345678901"
    assert sheet["G2"].value == "36450.00" and sheet["H2"].value == 3 * PER_GRADUATE_FEN
    assert _grant(db_session, A).status == "disbursed"
    with pytest.raises(GrantError):
        service.create_disbursement(db_session, actor="officer1")

    note = db_session.scalar(select(Notification).where(Notification.credit_code == A))
    assert note is not None and note.topic == "grant"
    assert "36,450.00 元" in note.body and "高校毕业生" in note.body and "****" in note.body
    assert "6228480012345678901" not in note.body

    events = [e.event for e in reversed(service.ledger(db_session, a.id))]
    assert events == ["created", "approved", "disbursed"]
    assert service.verify_ledger(db_session) == []
    notice = service.public_notice(db_session)
    assert [(n.enterprise_name, n.amount_fen) for n in notice] == [
        ("兰州甲机械有限公司", 3 * PER_GRADUATE_FEN)
    ]


def test_changed_inputs_after_approval_flag_never_alter(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    a = _grant(db_session, A)
    _account(db_session, A)
    service.review(db_session, [a.id], "approve", actor="officer1", ack_risk=True)
    registry.apply_changes(
        db_session,
        A,
        {"graduate_hires": 6, "graduate_insurance_paid": 6 * PER_GRADUATE_FEN},
        source="人社",
        as_of=ON,
        year=2023,
    )
    flagged = service.check_inputs(db_session)
    assert [g.id for g in flagged] == [a.id]
    # the matching hook's changed result says the same: the amount stays, a flag is raised once
    change = ResultChange(A, GRAD_RULE, "1", "eligible", mode="auto_grant", amount_fen=4_800_000)
    service.grants_from_results(db_session, [change], today=ON)
    a = _grant(db_session, A)
    assert a.amount_fen == 3 * PER_GRADUATE_FEN and a.status == "approved"
    assert [f["code"] for f in a.risk_flags].count("inputs_changed") == 1
    assert a.inputs_changed_at is not None
    # held back from disbursement until an officer confirms or rejects it
    assert service.disbursable(db_session) == []
    service.acknowledge_change(db_session, a.id, actor="officer2", reason="已核实,按原批准金额拨付")
    assert [g.id for g in service.disbursable(db_session)] == [a.id]
    events = [e.event for e in reversed(service.ledger(db_session, a.id))]
    assert events == ["created", "approved", "inputs_changed", "change_confirmed"]


def test_pending_grant_is_recomputed_in_the_open(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    registry.apply_changes(
        db_session,
        A,
        {"graduate_hires": 4, "graduate_insurance_paid": 4 * PER_GRADUATE_FEN},
        source="人社",
        as_of=ON,
        year=2023,
    )
    change = ResultChange(A, GRAD_RULE, "1", "eligible", mode="auto_grant")
    service.grants_from_results(db_session, [change], today=ON)
    a = _grant(db_session, A)
    assert a.amount_fen == 4 * PER_GRADUATE_FEN
    assert service.recompute(db_session, a) == 4 * PER_GRADUATE_FEN
    (recomputed, _created) = service.ledger(db_session, a.id)
    assert recomputed.event == "recomputed"
    assert recomputed.detail["old"]["amount_fen"] == 3 * PER_GRADUATE_FEN
    assert recomputed.detail["new"]["amount_fen"] == 4 * PER_GRADUATE_FEN


def test_ledger_is_append_only(db_session: Session, matched: list[ResultChange]) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    entry = db_session.scalars(select(LedgerEntry)).first()
    assert entry is not None
    with pytest.raises(GrantError), db_session.begin_nested():
        entry.event = "forged"
        db_session.flush()
    for sql in ("UPDATE grant_ledger SET event = 'forged'", "DELETE FROM grant_ledger"):
        with pytest.raises(Exception, match="append-only"):
            with db_session.begin_nested():
                db_session.execute(text(sql))
    assert service.verify_ledger(db_session) == []


def test_bad_bank_account_refused() -> None:
    with pytest.raises(GrantError, match="8–30"):
        BankAccountInput.parse("农行", "甲公司", "12ab")
    assert BankAccountInput.parse("农行", "甲公司", "6228 4800 1234").account_no == "622848001234"


def test_not_eligible_enterprise_gets_nothing(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    assert db_session.scalar(select(Grant).where(Grant.credit_code == C)) is None
    assert matching.run_matching(db_session, ON) == []


def test_recompute_records_who_changed_the_rule(
    db_session: Session, matched: list[ResultChange], monkeypatch: pytest.MonkeyPatch
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    # matching hands the publisher down to the grants (notifications stay off in these tests)
    monkeypatch.setitem(events.bus.handlers, ResultsChanged, [])
    events.subscribe(ResultsChanged, service.on_results_changed)
    text_v1 = db_session.scalar(select(RuleVersion.source).where(RuleVersion.rule_id == GRAD_RULE))
    assert text_v1 is not None
    raised = text_v1.replace(
        "formula: graduate_insurance_paid", "formula: graduate_insurance_paid * 2", 1
    )
    assert raised != text_v1
    rule = base_library().parse_rule(raised, "raised.yaml")
    version, _ = matching.publish_rule(db_session, rule, created_by="officer-hr")
    matching.rematch_rule(db_session, GRAD_RULE, ON, actor="officer-hr")
    a = _grant(db_session, A)
    assert a.rule_version == version.version and a.amount_fen == 2 * 3 * PER_GRADUATE_FEN
    latest = service.ledger(db_session, a.id)[0]
    assert latest.event == "recomputed" and latest.actor == "officer-hr"
    assert latest.detail["new"]["rule_version"] == version.version
    assert service.verify_ledger(db_session) == []


def test_demo_has_an_approver_and_a_payment_maker_for_the_graduate_subsidy(
    db_session: Session, matched: list[ResultChange]
) -> None:
    from huiqi.demo import DEMO_ACCOUNTS, load_accounts

    load_accounts(db_session)
    service.grants_from_results(db_session, matched, today=ON)
    a = _grant(db_session, A)
    names = {acct.username: acct for acct in DEMO_ACCOUNTS}
    for who in ("officer-hr", "officer-hr2"):
        acct = names[who]
        scope = service.review_scope(db_session, role=Role(acct.role), department=acct.department)
        assert service.in_scope(a, scope), who
    _account(db_session, A)
    service.review(db_session, [a.id], "approve", actor="officer-hr", ack_risk=True)
    with pytest.raises(GrantFourEyes):
        service.create_disbursement(db_session, actor="officer-hr")
    assert service.create_disbursement(db_session, actor="officer-hr2").count == 1


def test_risk_facts_read_the_batchs_accounts_and_who_else_holds_them(db_session: Session) -> None:
    from huiqi.grants.risk import risk_facts

    _account(db_session, A)
    _account(db_session, B)  # the same account for two enterprises
    _account(db_session, C, "6228480099999999999")
    facts = risk_facts(db_session, [A, "91620102MA00000000", A])
    assert facts.accounts == {A: "6228480012345678901"}
    assert facts.holders == {"6228480012345678901": {A, B}}
    assert risk_facts(db_session, []).holders == {}
