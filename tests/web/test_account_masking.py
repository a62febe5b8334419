"""Officers see receiving bank accounts by their last four digits on grant pages, the ledger and
the grants API; only the four-eyes payment file carries the whole number."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huiqi.grants.models import Grant, LedgerEntry
from tests import live
from tests.conftest import csrf_from


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object]:
    """The platform on a copy of the demo (a small population) in its own SQLite file."""
    return live.demo_app(tmp_path_factory.mktemp("masking"), "account-masking-secret-012345")


def _login(client: TestClient, username: str, password: str) -> None:
    token = csrf_from(client)
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303


@pytest.mark.parametrize(
    ("username", "password"), [("officer", "huiqi-officer-2020"), ("admin", "huiqi-admin-2020")]
)
def test_officers_never_see_a_whole_account_number(
    world: tuple[object, object], username: str, password: str
) -> None:
    from huiqi.core import db
    from huiqi.core.db import session_scope

    app, engine = world
    db.configure(engine)  # type: ignore[arg-type]
    with session_scope() as s:
        paid = s.execute(
            select(Grant.id, Grant.account_no)
            .where(Grant.account_no.is_not(None))
            .where(
                Grant.id.in_(select(LedgerEntry.grant_id).where(LedgerEntry.event == "approved"))
            )
        ).all()
    assert paid, "the demo has approved grants with accounts"
    with TestClient(app, base_url="https://testserver") as client:  # type: ignore[arg-type]
        _login(client, username, password)
        api = client.get("/api/v1/grants")
        assert api.status_code == 200
        seen = 0
        for grant_id, number in paid:
            assert number not in api.text
            page = client.get(f"/grants/{grant_id}")
            if page.status_code == 403:  # another department's grant
                continue
            assert page.status_code == 200
            seen += 1
            assert number not in page.text
            # the ledger's approval entry names the account by its last four digits
            assert "*" * (len(number) - 4) + number[-4:] in page.text
        assert seen
        for path in ("/grants", "/grants/ledger", "/grants/disbursements", "/admin/audit"):
            r = client.get(path)
            assert all(number not in r.text for _, number in paid), path
