"""Notifications carry an English subject and body made with the Chinese ones: the English view
of the inbox, a message page and the inbox API show them; rows from before show the Chinese."""

from __future__ import annotations

import re
from datetime import date

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from huiqi.events import ResultChange
from huiqi.notify.models import Notification
from tests import live
from tests.conftest import csrf_from

HAN = re.compile(r"[\u4e00-\u9fff]")
# what an English body says in its own words (policy titles and names stay as published)
ENGLISH_WORDS = re.compile(r"\b(your|you|the|and|to|is|was|of)\b", re.IGNORECASE)
# every kind of message the demo sends: matching summaries, special-fund calls and steps, grants
DEMO_KINDS = {"matchset", "funds-call", "funds-app", "grant"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """The platform on a copy of the demo (a small population) in its own SQLite file."""
    return live.demo_app(tmp_path_factory.mktemp("inbox-en"), "inbox-english-secret-0123456")


@pytest.fixture
def demo(world: tuple[object, object]) -> object:
    """The demo platform, its database the one in use."""
    from huiqi.core import db

    app, engine = world
    db.configure(engine)  # type: ignore[arg-type]
    return app


def _login(client: TestClient, username: str, password: str) -> None:
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


def _english(subject: str | None, body: str | None) -> bool:
    """Whether a message's English text is there and written in English."""
    return bool(subject and body and ENGLISH_WORDS.search(body) and body.count("怎么办") == 0)


def test_every_demo_message_has_english_beside_chinese(demo: object) -> None:
    from huiqi.core.db import session_scope

    with session_scope() as s:
        notes = s.scalars(select(Notification)).all()
        kinds = {n.dedupe_key.split(":")[0] for n in notes}
        assert DEMO_KINDS <= kinds
        missing = [n.dedupe_key for n in notes if not _english(n.subject_en, n.body_en)]
        assert missing == []
        # the Chinese text stays what the channels send
        assert all(HAN.search(n.body) for n in notes)


def test_english_inbox_message_and_api_show_the_english_text(demo: object) -> None:
    from huiqi.core.db import session_scope

    with TestClient(demo, base_url="https://testserver") as client:  # type: ignore[arg-type]
        _login(client, "enterprise", "huiqi-enterprise-2020")
        page = client.get("/notify/inbox?lang=en")
        assert page.status_code == 200
        soup = BeautifulSoup(page.text, "lxml")
        rows = soup.select("table.inbox tbody tr")
        assert rows
        with session_scope() as s:
            by_id = {
                n.id: n
                for n in s.scalars(
                    select(Notification).where(
                        Notification.id.in_([int(str(r["data-id"])) for r in rows])
                    )
                )
            }
        kinds = set()
        for row in rows:
            note = by_id[int(str(row["data-id"]))]
            kinds.add(note.dedupe_key.split(":")[0])
            shown = row.select("td")[2].get_text(strip=True)
            assert shown == note.subject_en, (shown, note.dedupe_key)
        assert len(kinds) >= 2, kinds
        first = by_id[int(str(rows[0]["data-id"]))]
        detail = client.get(f"/notify/inbox/{first.id}?lang=en")
        text = BeautifulSoup(detail.text, "lxml").select_one("div.body")
        assert text is not None and first.body_en
        assert text.get_text().strip() == first.body_en.strip()
        assert client.get(f"/notify/inbox/{first.id}?lang=zh").text.count(first.subject) >= 1
        api = client.get("/api/v1/notify/inbox?lang=en").json()
        assert all(m["subject"] == by_id[m["id"]].subject_en for m in api if m["id"] in by_id)
        assert all(_english(m["subject"], m["body"]) for m in api)
        assert client.get("/api/v1/notify/inbox?lang=zh").json()[0]["subject"] == first.subject


def test_rows_from_before_fall_back_to_chinese(demo: object) -> None:
    from huiqi.accounts.models import User
    from huiqi.core.db import session_scope

    with session_scope() as s:
        code = s.scalar(select(User.credit_code).where(User.username == "enterprise"))
        note_id = s.scalar(
            select(Notification.id)
            .where(Notification.credit_code == code)
            .order_by(Notification.id)
        )
        s.execute(
            update(Notification)
            .where(Notification.id == note_id)
            .values(subject_en=None, body_en=None)
        )
        old = s.get(Notification, note_id)
        assert old is not None
        subject = old.subject
    with TestClient(demo, base_url="https://testserver") as client:  # type: ignore[arg-type]
        _login(client, "enterprise", "huiqi-enterprise-2020")
        page = client.get(f"/notify/inbox/{note_id}?lang=en")
        assert page.status_code == 200
        h1 = BeautifulSoup(page.text, "lxml").select_one("h1")
        assert h1 is not None and h1.get_text(strip=True) == subject


def test_single_result_messages_and_security_alerts_are_in_english(demo: object) -> None:
    from huiqi.accounts.routes import _alert_admins
    from huiqi.core.db import session_scope
    from huiqi.notify.messages import notify_results

    with session_scope() as s:
        changes = [
            ResultChange(
                credit_code="91620104MA3KCCN64W",
                rule_id="demo-english-auto",
                rule_version="1",
                result="eligible",
                reasons=("employees <= 300",),
                rule_title="中小企业吸纳就业补贴",
                enterprise_name="兰州演示企业",
                amount_fen=1_500_000,
                mode="auto_grant",
                legal_basis="甘工信发〔2020〕351号",
                deadline=date(2026, 12, 31),
            ),
            ResultChange(
                credit_code="91620104MA3KCCN64W",
                rule_id="demo-english-unknown",
                rule_version="1",
                result="unknown",
                missing=("rd_expense",),
                rule_title="研发费用奖补",
            ),
        ]
        notes = notify_results(s, changes)
        assert len(notes) == 2
        granted, wanting = notes
        assert (
            granted.subject_en == "You qualify for “中小企业吸纳就业补贴”: granted without applying"
        )
        assert "Expected amount: CNY 15,000.00" in (granted.body_en or "")
        assert "Employees" in (granted.body_en or "") or "employees" in (granted.body_en or "")
        assert "Missing data:" in (wanting.body_en or "")
        assert "rd_expense" not in (wanting.body_en or "")
        _alert_admins(s, "enterprise")
        alert = s.scalars(
            select(Notification).where(Notification.dedupe_key.like("security:%"))
        ).first()
        assert alert is not None and _english(alert.subject_en, alert.body_en)
        assert not HAN.search(alert.body_en or "")
        assert "/ Account" not in alert.body
        s.rollback()
