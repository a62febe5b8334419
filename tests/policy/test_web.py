"""Pages and API of the policy library, checked by parsing the HTML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.policy import service
from huiqi.policy.models import Policy
from tests.conftest import csrf_from
from tests.policy.conftest import FIXTURES, SEED


def _soup(response: Any) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "lxml")


def _seed(db_session: Session, publish: bool = True) -> Policy:
    from huiqi.policy.ingest import ingest_file

    policy = service.import_source(db_session, ingest_file(SEED), publish=publish).policy
    db_session.commit()
    return policy


def test_public_list_detail_and_search(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    page = _soup(client.get("/policy"))
    link = page.select_one("table.policies a")
    assert link is not None and link.get_text() == "关于进一步健全支持中小企业发展制度的实施意见"
    detail = _soup(client.get(str(link["href"])))
    assert detail.select_one(".doc-number").get_text() == "甘工信发〔2020〕351号"  # type: ignore[union-attr]
    articles = detail.select("section.article")
    assert len(articles) == 39
    a18 = detail.select_one("#art-18")
    assert a18 is not None
    heading = a18.select_one("h3")
    assert heading is not None
    back = heading.select_one("a.to-top")  # a long policy links each article back to its contents
    assert back is not None and back["href"] == "#toc"
    back.extract()
    assert heading.get_text().strip() == "(十八)健全中小企业融资增信支持体系"
    assert [m.get_text() for m in a18.select("p.text mark.qty")] == ["降至1.5%以下"]
    lead = a18.select_one("a.dept.lead")
    assert lead is not None and lead.get_text() == "省金融监管局"
    assert "兰州新区管委会" in a18.select_one(".implementers").get_text()  # type: ignore[union-attr]
    hits = _soup(client.get("/policy", params={"q": "担保费率"}))
    first = hits.select_one("li.hit")
    assert first is not None
    assert first.select_one("a")["href"] == f"/policy/{policy.id}#art-18"  # type: ignore[index]
    assert "担保" in [m.get_text() for m in first.select(".snippet mark")]
    filtered = _soup(client.get("/policy", params={"q": "企业", "topic": "procurement"}))
    assert len(filtered.select("li.hit")) == 1


def test_escaping_of_query(client: TestClient, db_session: Session) -> None:
    _seed(db_session)
    response = client.get("/policy", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in response.text


def test_drafts_are_hidden_from_the_public(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session, publish=False)
    assert client.get(f"/policy/{policy.id}").status_code == 404
    assert client.get("/api/v1/policy/policies").json() == {
        "total": 0,
        "limit": 50,
        "offset": 0,
        "items": [],
    }


def test_department_page_and_exports(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    page = _soup(client.get("/policy/department/省税务局"))
    rows = page.select("table.tasks tbody tr")
    assert len(rows) == 8
    assert rows[0].select_one("a")["href"] == f"/policy/{policy.id}#art-8"  # type: ignore[index]
    by_full_name = _soup(client.get("/policy/department/甘肃省税务局"))
    assert len(by_full_name.select("table.tasks tbody tr")) == 8
    assert by_full_name.select_one("h1").get_text().startswith("省税务局")  # type: ignore[union-attr]
    xlsx = client.get(f"/policy/{policy.id}/tasks.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    csv_text = client.get(f"/policy/{policy.id}/tasks.csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("文号,政策名称,条款")
    data = client.get(f"/api/v1/policy/policies/{policy.id}/tasks").json()
    assert len(data) == 39 and data[9]["targets"] == ["30%以上", "不低于60%"]
    assert client.get(f"/policy/{policy.id}/tasks.exe").status_code == 404
    api = client.get("/api/v1/policy/departments/省税务局/tasks").json()
    assert [r["article_number"] for r in api] == [8, 9, 13, 14, 30, 38, 39, 40]


def test_api_detail_and_search(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    data = client.get(f"/api/v1/policy/policies/{policy.id}").json()
    assert [s["number"] for s in data["sections"]] == [1, 2, 3, 4, 5, 6, 7]
    assert data["sections"][0]["articles"][0]["departments"] == [
        "省工信厅",
        "省司法厅",
        "省发展改革委",
    ]
    hits = client.get("/api/v1/policy/search", params={"q": "担保费率"}).json()["items"]
    assert hits[0]["article_number"] == 18 and "<mark>" in hits[0]["snippet_html"]


def test_officer_upload_review_correct_publish(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    assert client.get("/policy/upload", follow_redirects=False).status_code in (302, 303, 401)
    login_as("officer")
    token = csrf_from(client, "/policy/upload")
    with open(FIXTURES / "seed.docx", "rb") as fh:
        response = client.post(
            "/policy/upload",
            data={"csrf_token": token},
            files={"file": ("seed.docx", fh, "application/octet-stream")},
            follow_redirects=False,
        )
    assert response.status_code == 303, response.text[:300]
    review_url = response.headers["location"]
    review = _soup(client.get(review_url))
    assert review.select_one(".status").get_text() == "草稿"  # type: ignore[union-attr]
    assert "(二十八)" in review.select_one(".warnings").get_text()  # type: ignore[union-attr]
    source = review.select_one(".review-source .source-text")
    assert source is not None
    assert "关于进一步健全支持中小企业发展制度的实施意见" in source.get_text()
    # Every article of the parsed structure links to where it starts in the source, and back.
    anchors = source.select("a.src-anchor")
    assert [a["id"] for a in anchors] == [f"src-art-{n}" for n in range(1, 41) if n != 28]
    assert anchors[0]["href"] == "#art-1"
    assert review.select_one("#art-1 a.src-link")["href"] == "#src-art-1"  # type: ignore[index]
    form = review.select_one("#art-1 form")
    assert form is not None
    policy_id = int(review_url.split("/")[2])
    response = client.post(
        str(form["action"]),
        data={
            "csrf_token": token,
            "title": "完善中小企业发展政策法规体系",
            "text": "推动《甘肃省促进中小企业发展条例》修订,每年开展检查不少于2次。",
            "departments": "省工信厅、省司法厅",
            "implementers": "各市州政府",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    response = client.post(
        f"/policy/{policy_id}/status",
        data={
            "csrf_token": token,
            "status": "published",
            "valid_from": "2021-01-01",
            "valid_to": "",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    client.cookies.clear()
    detail = _soup(client.get(f"/policy/{policy_id}"))
    a1 = detail.select_one("#art-1")
    assert a1 is not None
    assert [d.get_text() for d in a1.select("a.dept")] == ["省工信厅", "省司法厅"]
    assert detail.select_one(".status").get_text() == "已发布"  # type: ignore[union-attr]


def test_upload_rejects_bad_files_and_stores_nothing(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    login_as("officer")
    token = csrf_from(client, "/policy/upload")
    for name, data, reason in [
        ("empty.txt", b"", "文件为空"),
        ("image.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG 图片"),
        ("table.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "旧版 Word"),
    ]:
        response = client.post(
            "/policy/upload",
            data={"csrf_token": token},
            files={"file": (name, data, "application/octet-stream")},
        )
        assert response.status_code == 400
        alert = BeautifulSoup(response.text, "lxml").select_one("[role=alert]")
        assert alert is not None and name in alert.get_text() and reason in alert.get_text()
    assert db_session.scalar(select(func.count()).select_from(Policy)) == 0


def test_public_users_may_not_upload(client: TestClient, login_as: Callable[..., object]) -> None:
    login_as("enterprise")
    token = csrf_from(client, "/policy")
    response = client.post(
        "/policy/upload",
        data={"csrf_token": token},
        files={"file": ("a.txt", "一、甲".encode(), "text/plain")},
    )
    assert response.status_code == 403
