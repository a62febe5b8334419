"""The ledger proves what it claims: tampering done directly in the database (a deleted last
entry, a chain rewritten with unkeyed hashes, an edited amount or account) is reported by
verify-ledger and check, and refuses the payment file; legacy ledgers are sealed by rekey."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from huiqi.cli.main import app
from huiqi.events import ResultChange
from huiqi.grants import ledger, service
from huiqi.grants.models import Grant, LedgerEntry, LedgerHead
from huiqi.grants.schemas import BankAccountInput, GrantError, LedgerMismatch
from tests.grants.conftest import ON, A, B

runner = CliRunner()


def _approved(session: Session, matched: list[ResultChange]) -> tuple[Grant, Grant]:
    """Grants for A and B, both with an account and approved by officer1."""
    service.grants_from_results(session, matched, today=ON)
    for code, number in ((A, "6228480012345678901"), (B, "6228480099999999999")):
        service.set_bank_account(
            session, code, BankAccountInput.parse("甘肃银行", "某公司", number), actor="t"
        )
    a = session.scalar(select(Grant).where(Grant.credit_code == A))
    b = session.scalar(select(Grant).where(Grant.credit_code == B))
    assert a is not None and b is not None
    report = service.review(session, [a.id, b.id], "approve", actor="officer1", ack_risk=True)
    assert report.done == [a.id, b.id]
    assert service.verify_ledger(session) == []
    return a, b


def _drop_guards(session: Session) -> None:
    """What an attacker with database access does first: remove the append-only triggers (the
    test transaction is rolled back afterwards, triggers included)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER grant_ledger_no_change ON grant_ledger"))
    else:
        session.execute(text("DROP TRIGGER grant_ledger_no_update"))
        session.execute(text("DROP TRIGGER grant_ledger_no_delete"))


def _kinds(session: Session, grant_id: int) -> set[str]:
    return {p.kind for p in ledger.ledger_problems(session) if p.grant_id == grant_id}


def _rewrite_unkeyed(session: Session, grant_id: int, amount_fen: int, alg: str) -> None:
    """Replace a grant's whole chain with one of a new amount, hashed without the key."""
    chain = session.scalars(
        select(LedgerEntry).where(LedgerEntry.grant_id == grant_id).order_by(LedgerEntry.id)
    ).all()
    rows: list[dict[str, Any]] = []
    prev = ledger.GENESIS
    for entry in chain:
        body = {**ledger.entry_body(entry), "amount_fen": amount_fen}
        digest = ledger.entry_hash(prev, body, None)
        rows.append(
            {
                "grant_id": grant_id,
                "at": entry.at,
                "event": entry.event,
                "actor": entry.actor,
                "status_from": entry.status_from,
                "status_to": entry.status_to,
                "amount_fen": amount_fen,
                "detail": entry.detail,
                "prev_hash": prev,
                "hash": digest,
                "alg": alg,
            }
        )
        prev = digest
    session.expunge_all()
    session.execute(delete(LedgerEntry).where(LedgerEntry.grant_id == grant_id))
    session.execute(insert(LedgerEntry), rows)
    session.execute(update(Grant).where(Grant.id == grant_id).values(amount_fen=amount_fen))


def test_deleted_last_entry_is_truncation(db_session: Session, matched: list[ResultChange]) -> None:
    a, b = _approved(db_session, matched)
    _drop_guards(db_session)
    last = db_session.scalar(
        select(func.max(LedgerEntry.id)).where(LedgerEntry.grant_id == a.id)  # "approved"
    )
    db_session.expunge_all()
    db_session.execute(delete(LedgerEntry).where(LedgerEntry.id == last))
    # the grant row is set back to what the remaining chain says, so only the head can tell
    db_session.execute(update(Grant).where(Grant.id == a.id).values(status="pending"))
    assert _kinds(db_session, a.id) == {"truncated", "last_hash"}
    assert _kinds(db_session, b.id) == set()
    problems = service.verify_ledger(db_session)
    assert any(f"grant #{a.id}" in p and "deleted" in p for p in problems)


def test_chain_rewritten_with_unkeyed_hashes_is_found(
    db_session: Session, matched: list[ResultChange]
) -> None:
    a, b = _approved(db_session, matched)
    _drop_guards(db_session)
    # 2,400,000 fen raised to 6,400,000 in the grant and in every entry, hashes recomputed
    _rewrite_unkeyed(db_session, a.id, 6_400_000, alg=ledger.KEYED)
    assert {"unkeyed", "last_hash"} <= _kinds(db_session, a.id)
    assert "amount" not in _kinds(db_session, a.id)  # the rewrite made them agree…
    # …so the payment file is refused on the key, naming the grant
    with pytest.raises(LedgerMismatch, match=f"#{a.id} 兰州甲机械有限公司"):
        service.create_disbursement(db_session, actor="officer2")


def test_rewrite_that_also_deletes_the_head_is_not_mistaken_for_a_legacy_ledger(
    db_session: Session, matched: list[ResultChange]
) -> None:
    a, _b = _approved(db_session, matched)
    _drop_guards(db_session)
    _rewrite_unkeyed(db_session, a.id, 6_400_000, alg=ledger.LEGACY)
    db_session.execute(delete(LedgerHead).where(LedgerHead.grant_id == a.id))
    assert _kinds(db_session, a.id) == {"no_head"}
    # the ledger is in keyed use, so rekey refuses to seal the forged chain
    report = ledger.seal_legacy(db_session)
    assert report.sealed == [] and [gid for gid, _ in report.refused] == [a.id]
    assert _kinds(db_session, a.id) == {"no_head"}
    with pytest.raises(LedgerMismatch, match=f"#{a.id}"):
        service.create_disbursement(db_session, actor="officer2")


def test_edited_amount_or_account_refuses_the_payment_file(
    db_session: Session, matched: list[ResultChange]
) -> None:
    a, b = _approved(db_session, matched)
    db_session.execute(update(Grant).where(Grant.id == a.id).values(amount_fen=24_000_000))
    db_session.execute(
        update(Grant).where(Grant.id == b.id).values(account_no="6200000000000000666")
    )
    db_session.expire_all()
    assert _kinds(db_session, a.id) == {"amount"}
    assert _kinds(db_session, b.id) == {"account"}
    with pytest.raises(LedgerMismatch) as refused:
        service.create_disbursement(db_session, actor="officer2")
    message = str(refused.value)
    assert f"#{a.id} 兰州甲机械有限公司" in message and "240,000.00 元" in message
    assert f"#{b.id} 兰州乙科技有限公司" in message
    # nothing was written: both grants are still approved and not in a batch
    assert {g.status for g in service.grants(db_session)} == {"approved"}
    # set right again, the file can be made (by a second person)
    db_session.execute(update(Grant).where(Grant.id == a.id).values(amount_fen=3_645_000))
    db_session.execute(
        update(Grant).where(Grant.id == b.id).values(account_no="6228480099999999999")
    )
    db_session.expire_all()
    batch = service.create_disbursement(db_session, actor="officer2")
    assert batch.count == 2 and service.verify_ledger(db_session) == []


def test_forged_head_is_found(db_session: Session, matched: list[ResultChange]) -> None:
    a, _b = _approved(db_session, matched)
    head = db_session.get(LedgerHead, a.id)
    assert head is not None
    db_session.execute(
        update(LedgerHead).where(LedgerHead.grant_id == a.id).values(entries=head.entries + 1)
    )
    db_session.expire_all()
    assert {"head_forged", "truncated"} <= _kinds(db_session, a.id)


def test_cli_reports_tampering_and_exits_1(
    db_session: Session, matched: list[ResultChange]
) -> None:
    a, _b = _approved(db_session, matched)
    db_session.commit()
    ok = runner.invoke(app, ["grants", "verify-ledger"])
    assert ok.exit_code == 0 and "ledger intact" in ok.output
    db_session.execute(update(Grant).where(Grant.id == a.id).values(amount_fen=1))
    db_session.commit()
    for command in (["grants", "verify-ledger"], ["grants", "check"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, result.output
        assert f"grant #{a.id}" in result.output and "amount" in result.output


def test_rekey_seals_a_legacy_ledger_and_keys_what_follows(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    grants = service.grants(db_session)
    _drop_guards(db_session)
    # what a database written before the ledger key looks like: unkeyed chains, no heads
    for g in grants:
        _rewrite_unkeyed(db_session, g.id, g.amount_fen, alg=ledger.LEGACY)
    db_session.execute(delete(LedgerHead))
    assert {p.kind for p in ledger.ledger_problems(db_session)} == {"no_head"}
    with pytest.raises(GrantError, match="rekey"), db_session.begin_nested():
        service.review(db_session, [grants[0].id], "reject", actor="o", reason="核实")
    db_session.expire_all()
    # one legacy chain was altered before the upgrade: it is refused, not sealed
    db_session.execute(
        update(LedgerEntry).where(LedgerEntry.grant_id == grants[1].id).values(amount_fen=1)
    )
    report = ledger.seal_legacy(db_session)
    assert report.sealed == [grants[0].id]
    assert [gid for gid, _ in report.refused] == [grants[1].id]
    assert {p.kind for p in ledger.ledger_problems(db_session, [grants[0].id])} == set()
    assert ledger.seal_legacy(db_session).sealed == []  # once
    service.review(db_session, [grants[0].id], "reject", actor="o", reason="毕业生人数待核实")
    chain = service.ledger(db_session, grants[0].id)
    assert [e.alg for e in chain] == [ledger.KEYED, ledger.LEGACY]
    head = db_session.get(LedgerHead, grants[0].id)
    assert head is not None and (head.entries, head.legacy_entries) == (2, 1)
    assert ledger.ledger_problems(db_session, [grants[0].id]) == []


def test_without_the_key_nothing_verifies(
    db_session: Session, matched: list[ResultChange], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _b = _approved(db_session, matched)
    monkeypatch.setattr(ledger, "ledger_key", lambda: b"another-key-of-32-characters!!!!")
    assert "unkeyed" not in _kinds(db_session, a.id)
    assert {"content", "head_forged"} <= _kinds(db_session, a.id)


def test_pages_refuse_a_file_for_a_tampered_batch(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, _b = _approved(db_session, matched)
    batch = service.create_disbursement(db_session, actor="officer2")
    db_session.commit()
    login_as("officer", department="甘肃省人力资源和社会保障厅")
    assert client.get(f"/grants/disbursements/{batch.id}.csv").status_code == 200
    page = BeautifulSoup(client.get(f"/grants/{a.id}").text, "lxml")
    assert page.find(id="grant-ledger-ok") is not None
    # the account of a paid grant is redirected in the database after the batch was made
    db_session.execute(
        update(Grant).where(Grant.id == a.id).values(account_no="6200000000000000666")
    )
    db_session.commit()
    for ext in ("csv", "xlsx"):
        refused = client.get(f"/grants/disbursements/{batch.id}.{ext}")
        assert refused.status_code == 409
        assert f"grant #{a.id}" in refused.text and "6200000000000000666" not in refused.text
    page = BeautifulSoup(client.get(f"/grants/{a.id}").text, "lxml")
    problems = page.find(id="grant-ledger-problems")
    assert problems is not None and "收款账号" in problems.get_text()
    assert service.batch_problems(db_session, batch.id)[-1].startswith(f"批次 {batch.id}")


def test_an_edited_pending_amount_cannot_be_approved_into_the_ledger(
    db_session: Session, matched: list[ResultChange]
) -> None:
    service.grants_from_results(db_session, matched, today=ON)
    a = db_session.scalar(select(Grant).where(Grant.credit_code == A))
    assert a is not None
    service.set_bank_account(
        db_session,
        A,
        BankAccountInput.parse("甘肃银行", "某公司", "6228480012345678901"),
        actor="t",
    )
    # raised in the database before review: approving would write the raised amount as proven
    db_session.execute(update(Grant).where(Grant.id == a.id).values(amount_fen=24_000_000))
    db_session.expire_all()
    with pytest.raises(LedgerMismatch, match=f"拒绝审核.*#{a.id}"):
        service.review(db_session, [a.id], "approve", actor="officer1", ack_risk=True)
