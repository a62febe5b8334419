"""Notifications addressed to one user: a bank user's or officer's inbox holds only their own
messages, an enterprise's inbox only its enterprise's, and the e-mail copy goes to the address
on the account (cancelled when it is removed)."""

from __future__ import annotations

from typing import Any

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from huiqi.accounts import service as accounts
from huiqi.accounts.models import User
from huiqi.core.config import Settings
from huiqi.notify import service
from huiqi.notify.channels import Outbound
from huiqi.notify.dispatcher import Dispatcher
from huiqi.notify.models import Notification, OutboxMessage, OutboxStatus
from tests.conftest import TEST_PASSWORD, csrf_from
from tests.notify.conftest import ENT_A

BANK = "甘肃银行股份有限公司"
OTHER = "兰州银行股份有限公司"


def _user(session: Session, name: str, role: str, email: str | None = None, **binding: str) -> User:
    user = accounts.create_user(
        session, username=name, password=TEST_PASSWORD, role=role, email=email, **binding
    )
    session.flush()
    return user


def _to(session: Session, user: User, key: str, subject: str = "新的融资申请 #1") -> Notification:
    note = service.enqueue_user(
        session,
        user_id=user.id,
        topic="financing",
        subject=subject,
        body="贵机构的产品收到新的融资申请。<b>粗体</b>",
        link="/finance/applications/1",
        dedupe_key=key,
    )
    assert note is not None
    return note


def test_enqueue_user_once_per_key_with_mail_only_to_an_address_on_file(
    db_session: Session,
) -> None:
    s = db_session
    with_mail = _user(s, "loan-officer", "bank", "credit@gsbank.example.com", institution=BANK)
    without = _user(s, "loan-clerk", "bank", institution=BANK)
    note = _to(s, with_mail, "k1")
    assert note.credit_code is None and note.recipient_user_id == with_mail.id
    assert (
        service.enqueue_user(
            s,
            user_id=with_mail.id,
            topic="financing",
            subject="again",
            body="",
            link="/",
            dedupe_key="k1",
        )
        is None
    )
    rows = s.scalars(select(OutboxMessage).where(OutboxMessage.notification_id == note.id)).all()
    assert [(r.channel, r.recipient, r.recipient_user_id, r.credit_code) for r in rows] == [
        ("email", "credit@gsbank.example.com", with_mail.id, None)
    ]
    quiet = _to(s, without, "k2")
    assert (
        s.scalars(select(OutboxMessage).where(OutboxMessage.notification_id == quiet.id)).all()
        == []
    )
    with pytest.raises(service.NotifyError):
        service.enqueue_user(
            s,
            user_id=with_mail.id,
            topic="financing",
            subject=" ",
            body="",
            link="/",
            dedupe_key="k3",
        )
    with pytest.raises(service.NotifyError):
        service.enqueue_user(
            s, user_id=10**9, topic="financing", subject="x", body="", link="/", dedupe_key="k4"
        )


def test_institution_notice_reaches_its_active_users_only(db_session: Session) -> None:
    s = db_session
    a = _user(s, "gs-a", "bank", institution=BANK)
    b = _user(s, "gs-b", "bank", "b@gsbank.example.com", institution=BANK)
    gone = _user(s, "gs-gone", "bank", institution=BANK)
    gone.is_active = False
    other = _user(s, "lz-a", "bank", institution=OTHER)
    args: dict[str, Any] = {
        "institution": BANK,
        "topic": "financing",
        "subject": "新的融资申请 #7",
        "body": "请于期限内受理。",
        "link": "/finance/applications/7",
        "dedupe_key": "finance:lender:7:submitted",
    }
    made = service.enqueue_institution(s, **args)
    assert sorted(n.recipient_user_id for n in made) == sorted([a.id, b.id])
    assert service.enqueue_institution(s, **args) == []  # exactly once per event and user
    assert service.inbox_for(s, other) == []
    by_user = {n.recipient_user_id: n for n in made}
    assert [n.id for n in service.inbox_for(s, a)] == [by_user[a.id].id]
    assert by_user[a.id].dedupe_key == f"finance:lender:7:submitted:user:{a.id}"
    assert service.unread_count_for(s, b) == 1


def test_a_note_names_exactly_one_recipient(db_session: Session) -> None:
    s = db_session
    user = _user(s, "gs-c", "bank", institution=BANK)
    with pytest.raises(IntegrityError), s.begin_nested():
        s.add(
            Notification(
                credit_code=ENT_A,
                recipient_user_id=user.id,
                topic="financing",
                subject="x",
                body="",
                link="/",
                dedupe_key="both",
            )
        )
        s.flush()
    with pytest.raises(IntegrityError), s.begin_nested():
        s.add(Notification(topic="financing", subject="x", body="", link="/", dedupe_key="none"))
        s.flush()


def _login(client: TestClient, user: User) -> None:
    token = csrf_from(client)
    response = client.post(
        "/login",
        data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_bank_inbox_shows_own_messages_only_and_enterprise_sees_none_of_them(
    client: TestClient, db_session: Session
) -> None:
    s = db_session
    mine_user = _user(s, "gs-inbox", "bank", institution=BANK)
    colleague = _user(s, "gs-colleague", "bank", institution=BANK)
    ent_user = _user(s, "ent-inbox", "enterprise", credit_code=ENT_A)
    mine = _to(s, mine_user, "u1", "新的融资申请 #11")
    theirs = _to(s, colleague, "u2", "新的融资申请 #12")
    ent_note = service.enqueue(
        s,
        credit_code=ENT_A,
        topic="financing",
        subject="融资申请已提交",
        body="",
        link="/finance",
        dedupe_key="e1",
    )
    assert ent_note is not None
    s.commit()

    _login(client, mine_user)
    page = BeautifulSoup(client.get("/notify/inbox").text, "lxml")
    assert [r["data-id"] for r in page.select("table.inbox tbody tr")] == [str(mine.id)]
    assert page.find("a", href="/notify/settings") is None  # push settings are an enterprise's
    assert client.get(f"/notify/inbox/{theirs.id}").status_code == 404  # a colleague's
    assert client.get(f"/notify/inbox/{ent_note.id}").status_code == 404  # an enterprise's
    assert (
        client.post(
            f"/notify/inbox/{theirs.id}/unread", data={"csrf_token": csrf_from(client)}
        ).status_code
        == 404
    )
    detail = BeautifulSoup(client.get(f"/notify/inbox/{mine.id}").text, "lxml")
    assert detail.select_one("a[data-link]")["href"] == "/finance/applications/1"  # type: ignore[index]
    assert "<b>粗体</b>" in detail.select_one(".body").get_text()  # type: ignore[union-attr]  # shown as text
    api = client.get("/api/v1/notify/inbox").json()
    assert [(n["id"], n["read_at"] is not None) for n in api] == [(mine.id, True)]

    client.post("/logout", data={"csrf_token": csrf_from(client)})
    _login(client, ent_user)
    page = BeautifulSoup(client.get("/notify/inbox").text, "lxml")
    assert [r["data-id"] for r in page.select("table.inbox tbody tr")] == [str(ent_note.id)]
    assert client.get(f"/notify/inbox/{mine.id}").status_code == 404


class _Collect:
    """A channel that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    def send(self, message: Outbound) -> None:
        self.sent.append(message)


def test_dispatcher_mails_a_user_and_cancels_when_the_address_is_gone(
    db_session: Session, settings: Settings, session_maker: sessionmaker[Session]
) -> None:
    s = db_session
    keep = _user(s, "gs-mail", "bank", "credit@gsbank.example.com", institution=BANK)
    drop = _user(s, "gs-drop", "bank", "old@gsbank.example.com", institution=BANK)
    _to(s, keep, "m1", "新的融资申请 #21")
    _to(s, drop, "m2", "新的融资申请 #22")
    drop.email = None
    s.commit()
    mail = _Collect()
    cfg = settings.model_copy(update={"base_url": "https://huiqi.example.gov.cn"})
    dispatcher = Dispatcher(cfg, senders={"email": mail}, factory=session_maker, parallel=False)
    dispatcher.run_once()
    assert [(m.recipient, m.subject) for m in mail.sent] == [
        ("credit@gsbank.example.com", "【惠企】新的融资申请 #21")
    ]
    assert "/notify/unsubscribe/" not in mail.sent[0].text
    s.expire_all()
    statuses = {
        recipient: status
        for recipient, status in s.execute(select(OutboxMessage.recipient, OutboxMessage.status))
    }
    assert statuses == {
        "credit@gsbank.example.com": OutboxStatus.sent,
        "old@gsbank.example.com": OutboxStatus.cancelled,
    }
