"""Signed links in pushed messages: compact, unforgeable, bound to their subject, expiring."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session

from huiqi.core.config import Settings
from huiqi.notify import links
from huiqi.notify.schemas import InvalidLink
from tests.notify.conftest import ENT_A, ENT_B
from tests.notify.test_web import _note

SECRET = "links-test-secret"
DAY = 86_400


def test_tokens_read_back_and_are_short() -> None:
    opened = links.open_token(SECRET, 123456, "sms")
    assert links.read_open_token(SECRET, opened) == (123456, "sms")
    unsub = links.unsubscribe_token(SECRET, ENT_A, "email")
    assert links.read_unsubscribe_token(SECRET, unsub) == (ENT_A, "email")
    assert links.read_unsubscribe_token(SECRET, links.unsubscribe_token(SECRET, ENT_A)) == (
        ENT_A,
        "all",
    )
    # an SMS pays per 70 characters: the two links together stay well under one segment's worth
    assert len(opened) < 40 and len(unsub) < 55


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace(".1xg0.", ".1xg1.", 1),  # another notification id
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # a changed tag
        lambda t: t.rsplit(".", 1)[0],  # no tag
        lambda t: t.replace(".s.", ".e.", 1),  # another channel
        lambda t: "u" + t[1:],  # another purpose
        lambda t: t + ".x",
        lambda t: "",
    ],
)
def test_forged_open_tokens_are_refused(forge: object) -> None:
    token = links.open_token(SECRET, 90000, "sms")  # 90000 is 1xg0 in base 36
    assert ".1xg0.s." in token
    forged = forge(token)  # type: ignore[operator]
    with pytest.raises(InvalidLink):
        links.read_open_token(SECRET, forged)
    with pytest.raises(InvalidLink):
        links.read_unsubscribe_token(SECRET, forged)


def test_tokens_are_bound_to_the_secret_and_the_enterprise() -> None:
    unsub = links.unsubscribe_token(SECRET, ENT_A, "sms")
    with pytest.raises(InvalidLink):
        links.read_unsubscribe_token("another-secret", unsub)
    with pytest.raises(InvalidLink):
        links.read_unsubscribe_token(SECRET, unsub.replace(ENT_A, ENT_B))
    with pytest.raises(InvalidLink):
        links.read_open_token(SECRET, unsub)  # an unsubscribe link opens nothing


def test_links_expire() -> None:
    sent = time.time()
    opened = links.open_token(SECRET, 7, "email", now=sent)
    unsub = links.unsubscribe_token(SECRET, ENT_A, "email", now=sent)
    last_open = sent + links.OPEN_LINK_DAYS * DAY
    assert links.read_open_token(SECRET, opened, now=last_open) == (7, "email")
    with pytest.raises(InvalidLink, match="过期"):
        links.read_open_token(SECRET, opened, now=last_open + DAY)
    last_unsub = sent + links.UNSUBSCRIBE_LINK_DAYS * DAY
    assert links.read_unsubscribe_token(SECRET, unsub, now=last_unsub) == (ENT_A, "email")
    with pytest.raises(InvalidLink, match="过期"):
        links.read_unsubscribe_token(SECRET, unsub, now=last_unsub + DAY)


def test_links_already_sent_in_the_former_format_still_work() -> None:
    old_open = URLSafeSerializer(SECRET, salt=links.OPEN_SALT).dumps({"n": 42, "ch": "sms"})
    assert links.read_open_token(SECRET, old_open) == (42, "sms")
    old_unsub = URLSafeSerializer(SECRET, salt=links.UNSUBSCRIBE_SALT).dumps(
        {"c": ENT_A, "ch": "webhook"}
    )
    assert links.read_unsubscribe_token(SECRET, old_unsub) == (ENT_A, "webhook")
    with pytest.raises(InvalidLink):  # the purposes stay apart in the former format too
        links.read_unsubscribe_token(SECRET, old_open)


def test_expired_open_link_is_refused_by_the_site(
    client: TestClient, settings: Settings, db_session: Session
) -> None:
    note = _note(db_session, ENT_A, "w-expired", "过期链接")
    fresh = links.open_token(settings.secret_key, note.id, "sms")
    assert client.get(f"/notify/open/{fresh}", follow_redirects=False).status_code == 303
    stale = links.open_token(
        settings.secret_key, note.id, "sms", now=time.time() - (links.OPEN_LINK_DAYS + 2) * DAY
    )
    assert client.get(f"/notify/open/{stale}", follow_redirects=False).status_code == 404
