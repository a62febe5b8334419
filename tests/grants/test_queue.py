"""The officers' review queue: filter by flag, region, amount and name; page; approve the whole
filtered set; summarise the batch in Chinese (English in the English view)."""

from __future__ import annotations

from collections.abc import Callable

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.events import ResultChange
from huiqi.grants import queue as gq
from huiqi.grants.models import Grant, GrantStatus
from huiqi.notify.models import Notification
from tests.conftest import csrf_from
from tests.grants.conftest import RST, B, grants_for


def _ids(html: str) -> set[int]:
    return {
        int(str(tr["data-id"]))
        for tr in BeautifulSoup(html, "lxml").select("#queue tbody tr[data-id]")
    }


def test_filters_narrow_the_queue_by_flag_amount_region_and_name(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, b = grants_for(db_session, matched)
    login_as("officer", department=RST)
    assert _ids(client.get("/grants").text) == {a.id, b.id}
    assert _ids(client.get("/grants?flag=no_bank_account").text) == {b.id}
    assert _ids(client.get("/grants?flag=high_amount").text) == {b.id}
    assert _ids(client.get(f"/grants?max_yuan={a.amount_fen // 100}").text) == {a.id}
    assert _ids(client.get(f"/grants?min_yuan={a.amount_fen // 100 + 1}").text) == {b.id}
    assert _ids(client.get("/grants?region=6201").text) == {a.id, b.id}
    assert _ids(client.get("/grants?region=6205").text) == set()
    assert _ids(client.get("/grants?q=乙科技").text) == {b.id}
    # the flag filter offers what the pending grants carry, by name, with counts
    page = BeautifulSoup(client.get("/grants").text, "lxml")
    options = {o["value"]: o.get_text() for o in page.select("#f-flag option")}
    assert options["no_bank_account"].startswith("未登记银行账户")
    bad = client.get("/grants?min_yuan=abc")
    assert bad.status_code == 422
    assert (
        "最低金额须为数字" in BeautifulSoup(bad.text, "lxml").select_one("#filter-error").get_text()
    )


def test_sorted_and_paged(db_session: Session, matched: list[ResultChange]) -> None:
    a, b = grants_for(db_session, matched)
    flt = gq.QueueFilter()
    first = gq.queue_page(db_session, flt, departments=None, sort="amount_desc", per_page=1)
    assert [g.id for g in first.rows] == [b.id] and first.pages == 2 and first.total == 2
    assert first.total_fen == a.amount_fen + b.amount_fen
    second = gq.queue_page(
        db_session, flt, departments=None, sort="amount_desc", page=2, per_page=1
    )
    assert [g.id for g in second.rows] == [a.id]
    assert first.regions[b.credit_code] == "620102"


def test_select_all_on_the_filtered_set_and_a_plain_summary(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    a, b = grants_for(db_session, matched)
    login_as("officer", department=RST)
    token = csrf_from(client, "/grants")
    # approve every pending grant of Lanzhou (no boxes ticked): B has no account
    r = client.post(
        "/grants/review",
        data={
            "csrf_token": token,
            "scope": "filtered",
            "region": "6201",
            "decision": "approve",
            "ack_risk": "on",
        },
    )
    assert r.status_code == 200
    message = BeautifulSoup(r.text, "lxml").select_one("#review-message")
    assert message is not None and message["data-level"] == "warn"
    assert message.get_text() == "已批准 1 项;跳过 1 项:未登记银行账户 1 项 — 已通知企业补充。"
    db_session.expire_all()
    assert db_session.get(Grant, a.id).status == GrantStatus.approved  # type: ignore[union-attr]
    assert db_session.get(Grant, b.id).status == GrantStatus.pending  # type: ignore[union-attr]
    told = db_session.scalars(select(Notification).where(Notification.credit_code == B)).all()
    assert [n.link for n in told] == ["/grants/mine#account"]
    # the summary in the English view
    english = client.get(
        "/grants?" + "&".join(f"{k}={v}" for k, v in r.url.params.items()) + "&lang=en"
    )
    text = BeautifulSoup(english.text, "lxml").select_one("#review-message").get_text()
    assert (
        text
        == "Approved 1; skipped 1: no bank account on file 1 — enterprises asked to add their account."
    )


def test_a_clean_batch_is_a_success_and_an_empty_one_an_error() -> None:
    ok = gq.BatchSummary("approve", 120, {}, 0)
    assert ok.level() == "ok" and ok.text("zh") == "已批准 120 项。"
    none = gq.BatchSummary("approve", 0, {"risk_not_acknowledged": 3}, 0)
    assert none.level() == "error"
    assert none.text("zh") == "已批准 0 项;跳过 3 项:有风险提示、未勾选“已核实风险提示” 3 项。"
    again = gq.BatchSummary.from_query(none.query())
    assert again == none


def test_workbenches_show_the_grant_to_dos(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    matched: list[ResultChange],
) -> None:
    grants_for(db_session, matched)
    login_as("officer", department=RST)
    todo = {
        a.get_text(): li.select_one(".count").get_text()
        for li in BeautifulSoup(client.get("/").text, "lxml").select("#todo li")
        if (a := li.find("a")) is not None
    }
    assert todo["待审核的免申即享项目"] == "2 项"
    client.post("/logout", data={"csrf_token": csrf_from(client, "/")})
    # B has a pending grant and no account: its home asks for one, first
    login_as("enterprise", credit_code=B)
    page = BeautifulSoup(client.get("/").text, "lxml")
    first = page.select_one("#todo li")
    assert first is not None and "登记收款账户" in first.get_text()
    assert page.select_one("#company strong").get_text() == "兰州乙科技有限公司"


def test_the_flag_filter_reads_the_json_on_sqlite_and_postgresql(
    db_session: Session, matched: list[ResultChange]
) -> None:
    a, b = grants_for(db_session, matched)
    # a flag whose detail mentions another flag's code must not pass for that flag
    a.risk_flags = [
        {"code": "stale_data", "detail": {"code": "no_bank_account"}, "message": '"code": "x"'}
    ]
    b.risk_flags = [{"code": "no_bank_account"}, {"code": "high_amount"}]
    db_session.flush()

    def ids(flag: str) -> set[int]:
        page = gq.queue_page(db_session, gq.QueueFilter(flag=flag), departments=None)
        return {g.id for g in page.rows}

    assert ids("no_bank_account") == {b.id}
    assert ids("high_amount") == {b.id}
    assert ids("stale_data") == {a.id}
    assert ids("x") == set()
    assert ids("no_bank%") == set()  # nothing is a pattern
    assert ids(gq.NO_FLAG) == set()
    a.risk_flags = []
    db_session.flush()
    assert ids(gq.NO_FLAG) == {a.id}
    assert ids("stale_data") == set()
