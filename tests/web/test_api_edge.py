"""The API edge: integers a 64-bit column cannot hold are 422, bodies of the wrong media type 415."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_PASSWORD

HUGE = str(2**63)


def _bearer(
    client: TestClient, make_user: Callable[..., object], role: str, **binding: str
) -> dict[str, str]:
    make_user(f"edge-{role}", role, **binding)
    r = client.post(
        "/api/v1/auth/token", json={"username": f"edge-{role}", "password": TEST_PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/policy/policies/{HUGE}",
        f"/api/v1/policy/policies/{HUGE}/tasks",
        f"/api/v1/policy/policies?offset={HUGE}",
        f"/api/v1/enterprise?offset={HUGE}",
        f"/api/v1/finance/products/{HUGE}",
        f"/api/v1/finance/applications/{HUGE}",
        f"/api/v1/finance/needs/{HUGE}/matches",
        f"/api/v1/enterprise/classify?industry=3311&employees={HUGE}",
        f"/api/v1/finance/products/-{int(HUGE) + 1}",
    ],
)
def test_integers_beyond_64_bits_are_422(
    client: TestClient, make_user: Callable[..., object], path: str
) -> None:
    headers = _bearer(client, make_user, "admin")
    r = client.get(path, headers=headers)
    assert r.status_code == 422, (path, r.status_code, r.text)


def test_integers_beyond_64_bits_in_bodies_and_pages_are_refused(
    client: TestClient, make_user: Callable[..., object]
) -> None:
    headers = _bearer(client, make_user, "bank", institution="甘肃银行股份有限公司")
    r = client.post("/api/v1/finance/needs/1/invite", json={"product_id": 2**64}, headers=headers)
    assert r.status_code == 422
    r = client.post(f"/api/v1/finance/products/{HUGE}/withdraw", headers=headers)
    assert r.status_code == 422
    page = client.get(f"/finance/products/{HUGE}", headers=headers)
    assert page.status_code == 422


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"username=a&password=b"),
        (None, b'{"username": "a"}'),
        ("multipart/form-data; boundary=x", b"--x--\r\n"),
    ],
)
def test_a_non_json_body_with_a_bearer_header_is_415(
    client: TestClient, make_user: Callable[..., object], content_type: str | None, body: bytes
) -> None:
    headers = _bearer(client, make_user, "admin")
    if content_type:
        headers["content-type"] = content_type
    for path in ("/api/v1/users", "/api/v1/auth/token", "/api/v1/enterprise/classify"):
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 415, (path, r.status_code, r.text)
        assert "application/json" in r.json()["detail_zh"]


def test_json_with_a_charset_and_form_uploads_still_pass(
    client: TestClient, make_user: Callable[..., object]
) -> None:
    headers = _bearer(client, make_user, "admin")
    r = client.post(
        "/api/v1/enterprise/classify",
        content=b'{"industry": "3311", "employees": 120, "revenue": "5000"}',
        headers={**headers, "content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    parsed = client.post(
        "/api/v1/policy/parse",
        files={
            "file": (
                "notice.txt",
                "关于印发支持中小企业发展若干措施的通知\n一、总则".encode(),
                "text/plain",
            )
        },
        headers=headers,
    )
    assert parsed.status_code != 415
