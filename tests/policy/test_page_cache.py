"""Policy pages are cached by version stamp and served with validators; changes show at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.policy import routes, service
from huiqi.policy.ingest import ingest_file
from huiqi.policy.models import Policy
from tests.policy.conftest import SEED


def _seed(db_session: Session) -> Policy:
    policy = service.import_source(db_session, ingest_file(SEED), publish=True).policy
    db_session.commit()
    return policy


def test_detail_has_validators_and_answers_304(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    first = client.get(f"/policy/{policy.id}")
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and "last-modified" in first.headers
    again = client.get(f"/policy/{policy.id}", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    # the English view is another representation
    english = client.get(f"/policy/{policy.id}?lang=en", headers={"If-None-Match": tag})
    assert english.status_code == 200 and "Task breakdown" in english.text


def test_correction_changes_page_and_validator(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    before = client.get(f"/policy/{policy.id}")
    article = next(a for a in policy.articles if a.number == 18)
    service.correct_article(
        db_session, article, title="健全融资增信体系(更正)", text="担保费率降至1%以下。"
    )
    db_session.commit()
    after = client.get(f"/policy/{policy.id}", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert "健全融资增信体系(更正)" in after.text
    assert "健全融资增信体系(更正)" not in before.text


def test_draft_stays_hidden_from_the_public(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    assert client.get(f"/policy/{policy.id}").status_code == 200
    service.set_status(db_session, policy, "draft")
    db_session.commit()
    assert client.get(f"/policy/{policy.id}").status_code == 404


def test_a_logged_in_reload_opens_no_database_session(
    client: TestClient,
    login_as: Callable[..., Any],
    db_session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = _seed(db_session)
    user = login_as("enterprise")
    opened: list[int] = []
    original = routes.reading_session

    @contextmanager
    def counted() -> Iterator[Session]:
        opened.append(1)
        with original() as session:
            yield session

    monkeypatch.setattr(routes, "reading_session", counted)
    first = client.get(f"/policy/{policy.id}")
    again = client.get(f"/policy/{policy.id}")
    assert first.status_code == again.status_code == 200
    assert len(opened) == 1  # the reload came from memory: no session, no query
    assert again.text == first.text and user.display_name in again.text
    assert again.headers["etag"] == first.headers["etag"] and "last-modified" in again.headers
    unchanged = client.get(f"/policy/{policy.id}", headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and len(opened) == 1
    # a correction made in this process shows at once
    article = next(a for a in policy.articles if a.number == 18)
    service.correct_article(db_session, article, title="担保更正", text="担保费率降至1%以下。")
    db_session.commit()
    after = client.get(f"/policy/{policy.id}")
    assert "担保更正" in after.text and len(opened) == 2


def test_a_kept_policy_page_is_never_shown_to_another_user(
    client: TestClient, login_as: Callable[..., Any], db_session: Session
) -> None:
    policy = _seed(db_session)
    first = login_as("enterprise")
    assert first.display_name in client.get(f"/policy/{policy.id}").text
    second = login_as("officer")
    page = client.get(f"/policy/{policy.id}").text
    assert second.display_name in page and first.display_name not in page
