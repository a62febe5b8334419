"""Object-level authorization across domains: an enterprise user sees only its own enterprise's
records, pages and API objects — another enterprise's are 403/404, never the data."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.grants.models import Grant
from huiqi.matching import service as matching
from huiqi.notify.models import Notification
from tests.grants.conftest import GRAD_RULE, ON, A, B, add


@pytest.fixture
def two_enterprises(db_session: Session) -> dict[str, int]:
    """A and B in the registry, the library matched (with its notifications and grants)."""
    add(db_session, A, "兰州甲机械有限公司", 40, 2500, 3)
    add(db_session, B, "兰州乙科技有限公司", 8, 200, 8)
    matching.load_rules(db_session)
    matching.run_matching(db_session, ON)
    db_session.commit()
    ids = {}
    for code, key in ((A, "a"), (B, "b")):
        ids[f"note_{key}"] = db_session.scalars(
            select(Notification.id).where(Notification.credit_code == code)
        ).first()
        ids[f"grant_{key}"] = db_session.scalars(
            select(Grant.id).where(Grant.credit_code == code)
        ).first()
    assert all(ids.values()), ids
    return ids


def test_enterprise_sees_its_own_objects_and_never_anothers(
    client: TestClient, login_as: Callable[..., object], two_enterprises: dict[str, int]
) -> None:
    login_as("enterprise", credit_code=A)
    own = [
        f"/enterprise/{A}",
        f"/api/v1/enterprise/{A}",
        f"/matching/enterprise/{A}",
        f"/api/v1/matching/explain/{A}/{GRAD_RULE}",
        f"/notify/inbox/{two_enterprises['note_a']}",
        f"/grants/{two_enterprises['grant_a']}",
        "/grants/mine",
    ]
    for path in own:
        assert client.get(path).status_code == 200, path
    other = [
        f"/enterprise/{B}",
        f"/api/v1/enterprise/{B}",
        f"/matching/enterprise/{B}",
        f"/api/v1/matching/explain/{B}/{GRAD_RULE}",
        f"/notify/inbox/{two_enterprises['note_b']}",
        f"/grants/{two_enterprises['grant_b']}",
    ]
    for path in other:
        response = client.get(path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "兰州乙科技有限公司" not in response.text, path
    assert "兰州乙科技有限公司" not in client.get("/grants/mine").text


def test_bank_user_cannot_open_enterprise_records(
    client: TestClient, login_as: Callable[..., object], two_enterprises: dict[str, int]
) -> None:
    login_as("bank")
    for path in (
        f"/enterprise/{A}",
        f"/api/v1/enterprise/{A}",
        f"/api/v1/matching/explain/{A}/{GRAD_RULE}",
        f"/notify/inbox/{two_enterprises['note_a']}",
        f"/grants/{two_enterprises['grant_a']}",
    ):
        response = client.get(path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert "兰州甲机械有限公司" not in response.text, path
