"""Pagination of the list, search and API; the review page; departments of another province."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.policy import search, service
from huiqi.policy.ingest import ingest_file
from huiqi.policy.models import Policy, PolicyStatus
from huiqi.policy.paging import Pager
from huiqi.policy.review import source_lines
from tests.conftest import csrf_from
from tests.policy.conftest import FIXTURES, SEED

JIANGSU = FIXTURES / "other_province_opinion.txt"


def _soup(response: Any, status: int = 200) -> BeautifulSoup:
    assert response.status_code == status, response.text[:500]
    return BeautifulSoup(response.text, "lxml")


def _import(db_session: Session, path: Any, publish: bool = True) -> Policy:
    policy = service.import_source(db_session, ingest_file(path), publish=publish).policy
    db_session.commit()
    return policy


@pytest.fixture
def many_policies(db_session: Session) -> list[Policy]:
    """45 published policies issued a day apart from 2020-01-01, each in force from its issue."""
    rows = []
    for i in range(45):
        day = dt.date(2020, 1, 1) + dt.timedelta(days=i)
        rows.append(
            Policy(
                title=f"测试政策第{i + 1:02d}号",
                doc_number=f"测试〔2020〕{i + 1}号",
                status=PolicyStatus.published,
                issued_on=day,
                valid_from=day,
            )
        )
    rows.append(Policy(title="草稿政策", status=PolicyStatus.draft, issued_on=dt.date(2020, 3, 1)))
    db_session.add_all(rows)
    db_session.commit()
    return rows


def _pager_links(page: BeautifulSoup) -> dict[str, dict[str, list[str]]]:
    nav = page.select_one("nav.pager")
    assert nav is not None
    return {
        a.get_text(strip=True): parse_qs(urlsplit(str(a["href"])).query) for a in nav.select("a")
    }


def test_public_list_is_paged(client: TestClient, many_policies: list[Policy]) -> None:
    first = _soup(client.get("/policy"))
    titles = [a.get_text() for a in first.select("table.policies tbody a")]
    assert len(titles) == 20 and titles[0] == "测试政策第45号" and titles[-1] == "测试政策第26号"
    assert "第1–20 条,共 45 条" in first.select_one(".pager-summary").get_text()  # type: ignore[union-attr]
    nav = first.select_one("nav.pager[aria-label]")
    assert nav is not None
    current = nav.select_one("a[aria-current=page]")
    assert current is not None and current.get_text() == "1"
    assert nav.select_one("a[rel=next]")["href"] == "/policy?page=2"  # type: ignore[index]
    assert nav.select_one("a[rel=prev]") is None
    last = _soup(client.get("/policy", params={"page": 3}))
    assert [a.get_text() for a in last.select("table.policies tbody a")] == [
        f"测试政策第{n:02d}号" for n in range(5, 0, -1)
    ]
    assert last.select_one("nav.pager a[rel=prev]")["href"] == "/policy?page=2"  # type: ignore[index]
    # A page past the end shows the last one rather than an empty table.
    beyond = _soup(client.get("/policy", params={"page": 99}))
    assert len(beyond.select("table.policies tbody a")) == 5
    assert client.get("/policy", params={"page": 0}).status_code == 422


def test_list_filters_survive_paging(client: TestClient, many_policies: list[Policy]) -> None:
    page = _soup(client.get("/policy", params={"valid_on": "2020-01-30"}))
    # 30 policies are in force on 2020-01-30: 20 on page one, the next link keeps the date.
    assert len(page.select("table.policies tbody a")) == 20
    links = _pager_links(page)
    assert links["2"] == {"valid_on": ["2020-01-30"], "page": ["2"]}
    second = _soup(client.get("/policy", params={"valid_on": "2020-01-30", "page": 2}))
    titles = [a.get_text() for a in second.select("table.policies tbody a")]
    assert titles[0] == "测试政策第10号" and titles[-1] == "测试政策第01号"


def test_search_results_are_paged_with_filters_kept(
    client: TestClient, db_session: Session
) -> None:
    _import(db_session, SEED)
    everything = search.ranked_hits(db_session, "企业")
    assert len(everything) > 20
    page1 = _soup(client.get("/policy", params={"q": "企业"}))
    assert page1.select_one("#hits-h").get_text() == f"检索结果 ({len(everything)})"  # type: ignore[union-attr]
    ol = page1.select_one("ol.hits")
    assert ol is not None and ol["start"] == "1" and len(ol.select("li.hit")) == 20
    assert _pager_links(page1)["2"] == {"q": ["企业"], "page": ["2"]}
    page2 = _soup(client.get("/policy", params={"q": "企业", "page": 2}))
    ol2 = page2.select_one("ol.hits")
    assert ol2 is not None and ol2["start"] == "21"
    hrefs1 = [str(li.select_one("a")["href"]) for li in ol.select("li.hit")]  # type: ignore[index]
    hrefs2 = [str(li.select_one("a")["href"]) for li in ol2.select("li.hit")]  # type: ignore[index]
    assert hrefs1 + hrefs2 == [h.url for h in everything[: len(hrefs1) + len(hrefs2)]]
    # Filters ride along in the page links.
    tax = _soup(client.get("/policy", params={"q": "企业", "department": "省税务局"}))
    hits = tax.select("li.hit")
    assert 0 < len(hits) <= 8
    assert tax.select_one("nav.pager ul") is None  # one page: no page links


def test_api_list_and_search_are_paged(
    client: TestClient, db_session: Session, many_policies: list[Policy]
) -> None:
    body = client.get("/api/v1/policy/policies", params={"limit": 10, "offset": 40}).json()
    assert body["total"] == 45 and body["limit"] == 10 and body["offset"] == 40
    assert [p["title"] for p in body["items"]] == [f"测试政策第{n:02d}号" for n in range(5, 0, -1)]
    in_force = client.get("/api/v1/policy/policies", params={"valid_on": "2020-01-30"}).json()
    assert in_force["total"] == 30 and len(in_force["items"]) == 30
    assert client.get("/api/v1/policy/policies", params={"limit": 201}).status_code == 422
    assert client.get("/api/v1/policy/policies", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/policy/policies", params={"offset": -1}).status_code == 422
    _import(db_session, SEED)
    whole = client.get("/api/v1/policy/search", params={"q": "企业", "limit": 200}).json()
    part = client.get("/api/v1/policy/search", params={"q": "企业", "limit": 5, "offset": 5}).json()
    assert part["total"] == whole["total"] > 10
    assert part["items"] == whole["items"][5:10]
    assert (
        client.get("/api/v1/policy/search", params={"q": "企业", "limit": 500}).status_code == 422
    )


def test_pager_window_and_links() -> None:
    pager = Pager.build(7, 200, "/policy", [("q", "担保"), ("topic", ""), ("page", "7")])
    assert pager.pages == 10 and pager.offset == 120
    assert pager.window() == [1, None, 5, 6, 7, 8, 9, 10]
    assert pager.url(1) == "/policy?q=%E6%8B%85%E4%BF%9D"
    assert pager.url(8) == "/policy?q=%E6%8B%85%E4%BF%9D&page=8"
    empty = Pager.build(3, 0, "/policy")
    assert (empty.page, empty.pages, empty.first_row, empty.last_row) == (1, 1, 0, 0)


def test_source_lines_anchor_articles_even_when_glued() -> None:
    text = "标题\n一、申报条件。甲\n二、申报程序。乙。三、工作要求。丙\n附件"
    lines = source_lines(text, [(1, "一、"), (2, "二、"), (3, "三、"), (4, "四、")])
    assert [(line.text[:2], line.articles) for line in lines] == [
        ("标题", []),
        ("一、", [1]),
        ("二、", [2, 3]),
        ("附件", []),
    ]


def test_review_page_side_by_side_with_unmapped_departments(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    _import(db_session, SEED)
    policy = _import(db_session, JIANGSU, publish=False)
    login_as("officer")
    page = _soup(client.get(f"/policy/{policy.id}/review"))
    grid = page.select_one(".review-grid")
    assert grid is not None and page.select("style, [style]") == []
    columns = [c["class"][0] for c in grid.find_all("section", recursive=False)]
    assert columns == ["review-source", "review-parsed"]
    source = grid.select_one(".source-text")
    assert source is not None and source["tabindex"] == "0"
    assert [m.get_text() for m in source.select("mark.qty")][:3] == [
        "2000万元以下",
        "50%",
        "最高50万元",
    ]
    # Only this policy's unknown names are offered for mapping (the seed has its own); Jiangsu's
    # 省财政厅, 省工业和信息化厅, 省地方金融监管局 and 江苏银保监局 resolve by the provincial pattern.
    mapped = {li.select_one(".badge").get_text(): li["id"] for li in page.select(".map-list li")}  # type: ignore[union-attr]
    assert set(mapped) == {"人民银行南京分行"}
    art1 = page.select_one("#art-1")
    assert art1 is not None
    assert art1.select("a.badge.dept.unknown") == []
    art3 = page.select_one("#art-3")
    assert art3 is not None
    flags = art3.select("a.badge.dept.unknown")
    assert [f["href"] for f in flags] == [f"#{mapped['人民银行南京分行']}"]
    assert all("未收录" in f.get_text() for f in flags)
    assert [m.get_text() for m in art1.select("p.text mark.qty")] == [
        "2000万元以下",
        "50%",
        "最高50万元",
    ]
    form = art1.select_one("details.correct form")
    assert form is not None and form.select_one("input[name=csrf_token]") is not None


def test_refused_corrections_keep_the_input_and_explain(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    policy = _import(db_session, JIANGSU, publish=False)
    article_id = policy.articles[0].id
    login_as("officer")
    token = csrf_from(client, f"/policy/{policy.id}/review")
    response = client.post(
        f"/policy/{policy.id}/articles/{article_id}",
        data={"csrf_token": token, "title": "新标题", "text": "   ", "departments": "省财政厅"},
    )
    page = _soup(response, 422)
    art1 = page.select_one("#art-1")
    assert art1 is not None and "has-error" in art1["class"]
    assert art1.select_one("details.correct[open]") is not None
    assert "正文不能为空" in art1.select_one("[role=alert]").get_text()  # type: ignore[union-attr]
    assert art1.select_one("input[name=title]")["value"] == "新标题"  # type: ignore[index]
    db_session.expire_all()
    assert policy.articles[0].title == "设立纾困专项资金"
    response = client.post(
        f"/policy/{policy.id}/status",
        data={
            "csrf_token": token,
            "status": "published",
            "valid_from": "2022-06-01",
            "valid_to": "2021-01-01",
        },
    )
    page = _soup(response, 422)
    assert "before it starts" in page.select_one("#status-error").get_text()  # type: ignore[union-attr]
    db_session.expire_all()
    assert policy.status == PolicyStatus.draft and policy.valid_to is None


def test_same_name_in_another_province_is_not_our_department(
    client: TestClient, db_session: Session
) -> None:
    seed = _import(db_session, SEED)
    jiangsu = _import(db_session, JIANGSU)
    ours = service.department_task_rows(db_session, "省财政厅")
    assert ours and {r.policy_id for r in ours} == {seed.id}
    # Jiangsu's 省财政厅 is Jiangsu's department (by the provincial pattern), not Gansu's.
    theirs = service.department_task_rows(db_session, "省财政厅", code="江苏-czt")
    assert [(r.policy_id, r.article_number) for r in theirs] == [
        (jiangsu.id, 1),
        (jiangsu.id, 2),
        (jiangsu.id, 4),
    ]
    assert service.department_task_rows(db_session, "省财政厅", unmapped=True) == []
    detail = _soup(client.get(f"/policy/{jiangsu.id}"))
    lead = detail.select_one("#art-1 a.dept.lead")
    assert (
        lead is not None
        and lead["href"]
        == "/policy/department/%E7%9C%81%E8%B4%A2%E6%94%BF%E5%8E%85?code=%E6%B1%9F%E8%8B%8F-czt"
    )
    page = _soup(client.get(str(lead["href"])))
    assert len(page.select("table.tasks tbody tr")) == 3
    assert "江苏省财政厅" in page.get_text()
    hits = search.ranked_hits(db_session, "专项资金", department="省财政厅")
    assert hits and all(h.policy_id == seed.id for h in hits)
