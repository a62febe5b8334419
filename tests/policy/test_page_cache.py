"""Policy pages are cached by version stamp and served with validators; changes show at once."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.policy import service
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
