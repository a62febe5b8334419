"""Notification pages: inbox with object-level access, settings validation, unsubscribe and
open links without log-in, officers' delivery status and dashboard."""

from __future__ import annotations

import re
from collections.abc import Callable

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.config import Settings
from huiqi.notify import service
from huiqi.notify.models import Notification, ReadReceipt, Subscription
from huiqi.notify.schemas import SETTING_LABELS
from tests.conftest import csrf_from
from tests.notify.conftest import ENT_A, ENT_B


def _note(session: Session, code: str, key: str, subject: str) -> Notification:
    note = service.enqueue(
        session,
        credit_code=code,
        topic="policy_match",
        subject=subject,
        body="经比对,贵企业可能符合条件。<script>alert(1)</script>",
        link="/notify/inbox",
        dedupe_key=key,
        rule_id="gs351-22-graduate-social-insurance",
    )
    assert note is not None
    session.commit()
    return note


def test_inbox_shows_only_own_and_records_reads(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    login_as("enterprise")  # bound to ENT_A
    mine = _note(db_session, ENT_A, "w1", "我的政策消息")
    other = _note(db_session, ENT_B, "w2", "别家的政策消息")
    page = BeautifulSoup(client.get("/notify/inbox").text, "lxml")
    rows = page.select("table.inbox tbody tr")
    assert [r["data-id"] for r in rows] == [str(mine.id)]
    assert "unread" in rows[0]["class"]
    assert client.get(f"/notify/inbox/{other.id}").status_code == 404
    detail = client.get(f"/notify/inbox/{mine.id}")
    assert detail.status_code == 200
    assert "<script>alert(1)</script>" not in detail.text  # escaped
    db_session.expire_all()
    assert db_session.get(Notification, mine.id).read_at is not None  # type: ignore[union-attr]
    receipt = db_session.scalar(select(ReadReceipt).where(ReadReceipt.notification_id == mine.id))
    assert receipt is not None and receipt.via == "inbox"
    api = client.get("/api/v1/notify/inbox").json()
    assert [n["id"] for n in api] == [mine.id] and api[0]["read_at"] is not None


def test_settings_refuse_bad_addresses_and_save_good_ones(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    login_as("enterprise")
    token = csrf_from(client, "/notify/settings")
    bad = [
        ({"email": "not-an-email", "consent_email": "on"}, "email"),
        ({"webhook_url": "ftp://files.example.com/x", "consent_webhook": "on"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:8080/hook"}, "webhook_url"),
        ({"webhook_url": "http://user:pw@example.com/hook"}, "webhook_url"),
        ({"phone": "12345"}, "phone"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start"),
        ({"consent_email": "on"}, "email"),
    ]
    for fields, name in bad:
        r = client.post("/notify/settings", data={"csrf_token": token, "daily_cap": "5", **fields})
        assert r.status_code == 422, fields
        error = BeautifulSoup(r.text, "lxml").find(id="settings-error")
        label = SETTING_LABELS[name][0]  # the field as the form labels it
        assert error is not None and error.get_text().startswith(label), (fields, error)
    assert service.get_subscription(db_session, ENT_A) is None
    r = client.post(
        "/notify/settings",
        data={
            "csrf_token": token,
            "email": "Finance@Example.com",
            "consent_email": "on",
            "webhook_url": "https://hooks.example.com/huiqi",
            "consent_webhook": "on",
            "muted_topics": ["financing"],
            "quiet_start": "22:00",
            "quiet_end": "07:30",
            "daily_cap": "3",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    db_session.expire_all()
    sub = service.get_subscription(db_session, ENT_A)
    assert sub is not None and sub.email == "Finance@example.com"
    assert sub.email_consent_at is not None and sub.sms_consent_at is None
    assert sub.muted_topics == ["financing"] and (sub.quiet_start, sub.quiet_end) == (1320, 450)
    page = BeautifulSoup(client.get("/notify/settings").text, "lxml")
    secret = page.find(id="webhook-secret")
    assert secret is not None and secret.get_text() == sub.webhook_secret
    assert len(page.select("#consent-history tbody tr")) == 2


def test_unsubscribe_link_works_without_login(
    client: TestClient,
    settings: Settings,
    subscribe: Callable[..., Subscription],
    db_session: Session,
) -> None:
    subscribe(ENT_A)
    db_session.commit()
    token = service.unsubscribe_token(settings.secret_key, ENT_A, "email")
    page = client.get(f"/notify/unsubscribe/{token}")
    assert page.status_code == 200
    assert "电子邮件" in BeautifulSoup(page.text, "lxml").find(id="unsub-channel").get_text()  # type: ignore[union-attr]
    db_session.expire_all()
    assert service.get_subscription(db_session, ENT_A).email_consent_at is not None  # type: ignore[union-attr]
    csrf = csrf_from(client, f"/notify/unsubscribe/{token}")
    done = client.post(f"/notify/unsubscribe/{token}", data={"csrf_token": csrf})
    assert done.status_code == 200 and BeautifulSoup(done.text, "lxml").find(id="unsub-done")
    db_session.expire_all()
    sub = service.get_subscription(db_session, ENT_A)
    assert sub is not None and sub.email_consent_at is None and sub.webhook_consent_at is not None
    # a forged or foreign-purpose token is refused
    assert client.get(f"/notify/unsubscribe/{token}x").status_code == 404
    open_token = service.open_token(settings.secret_key, 1, "email")
    assert client.get(f"/notify/unsubscribe/{open_token}").status_code == 404


def test_open_link_records_read_receipt(
    client: TestClient, settings: Settings, db_session: Session
) -> None:
    note = _note(db_session, ENT_A, "w-open", "打开链接")
    token = service.open_token(settings.secret_key, note.id, "email")
    r = client.get(f"/notify/open/{token}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/notify/inbox/{note.id}"
    db_session.expire_all()
    receipt = db_session.scalar(select(ReadReceipt).where(ReadReceipt.notification_id == note.id))
    assert receipt is not None and receipt.via == "email"


def test_officer_pages_and_access_control(
    client: TestClient,
    login_as: Callable[..., object],
    db_session: Session,
    subscribe: Callable[..., Subscription],
) -> None:
    subscribe(ENT_A)
    _note(db_session, ENT_A, "w-o", "给官员看的")
    assert client.get("/notify/outbox", follow_redirects=False).status_code == 303  # log in first
    login_as("officer")
    page = BeautifulSoup(client.get("/notify/outbox").text, "lxml")
    assert len(page.select("#outbox tbody tr[data-status=pending]")) == 3
    dash = client.get("/notify/dashboard")
    soup = BeautifulSoup(dash.text, "lxml")
    assert soup.find("script", src=re.compile(r"^/static/vendor/echarts\.min\.js\?v=")) is not None
    cells = {
        (tr["data-channel"], td["data-stage"]): td.get_text()
        for tr in soup.select("#funnel tbody tr")
        for td in tr.select("td[data-stage]")
    }
    assert cells[("all", "notified")] == "1" and cells[("email", "notified")] == "1"
    assert cells[("email", "delivered")] == "0"
    csv_text = client.get("/notify/dashboard.csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("rule_id,政策,渠道,eligible")
    assert client.get("/static/vendor/echarts.min.js").status_code == 200
    # an officer's inbox holds only the officer's own messages, never an enterprise's
    inbox = BeautifulSoup(client.get("/notify/inbox").text, "lxml")
    assert inbox.select("table.inbox tbody tr") == []
    enterprise_note = db_session.scalar(
        select(Notification).where(Notification.dedupe_key == "w-o")
    )
    assert enterprise_note is not None
    assert client.get(f"/notify/inbox/{enterprise_note.id}").status_code == 404
    assert client.get("/notify/settings").status_code == 403


def test_enterprise_cannot_see_officer_pages(
    client: TestClient, login_as: Callable[..., object]
) -> None:
    login_as("enterprise")
    for path in ("/notify/outbox", "/notify/dashboard", "/api/v1/notify/outbox"):
        assert client.get(path).status_code == 403, path
