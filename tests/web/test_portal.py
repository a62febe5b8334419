"""Portal pages: the header search (enterprises for officers only), the cockpit, breadcrumbs and
menus, a policy's table of contents, and the to-do items the domains contribute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.core.todo import PROVIDERS, providers
from huiqi.enterprise import service as registry
from huiqi.policy import service as policy_service
from huiqi.policy.ingest import ingest_file
from tests.policy.conftest import SEED

CODE = "91620102MA72H8K3X0"


def _firm(session: Session) -> None:
    registry.apply_changes(
        session,
        CODE,
        {"name": "兰州测试机械有限公司", "region_code": "620102", "industry_code": "3311"},
        source="市场监管",
        as_of=date(2024, 1, 1),
    )
    session.commit()


def _soup(client: TestClient, path: str) -> BeautifulSoup:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return BeautifulSoup(r.text, "lxml")


def test_officers_find_enterprises_by_name_or_credit_code(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _firm(db_session)
    login_as("officer")
    for query in ("测试机械", CODE, CODE[:10].lower()):
        rows = _soup(client, f"/search?q={query}").select("#firm-results tbody tr")
        assert len(rows) == 1, query
        link = rows[0].find("a")
        assert link is not None and link["href"] == f"/enterprise/{CODE}"
        # the region is a name, its code on hover
        abbr = rows[0].find("abbr")
        assert abbr is not None and abbr.get_text() == "城关区" and abbr["title"] == "620102"


def test_enterprises_and_visitors_search_policies_only(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _firm(db_session)
    assert _soup(client, "/search?q=测试机械").find(id="firm-results") is None
    login_as("enterprise")
    page = _soup(client, "/search?q=测试机械")
    assert page.find(id="firms-h") is None and page.find(id="pol-h") is not None


def test_cockpit_for_officers_with_bars_by_city(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _firm(db_session)
    login_as("enterprise")
    assert client.get("/cockpit").status_code == 403
    login_as("officer")
    page = _soup(client, "/cockpit")
    rows = {
        tr.find("td").get_text(): [td.get_text() for td in tr.find_all("td")[1:]]
        for tr in page.select("#cockpit-table tbody tr")
    }
    assert rows["兰州市"][0] == "1" and rows["天水市"][0] == "0"
    assert page.find(id="chart-firms")["role"] == "img"  # type: ignore[index]
    # the chart script is a static file (no inline script under the CSP)
    assert not [s for s in page.find_all("script") if s.string and s.string.strip()]


def test_breadcrumbs_and_one_line_of_grouped_menus(
    client: TestClient, login_as: Callable[..., object]
) -> None:
    login_as("officer")
    page = _soup(client, "/grants")
    crumbs = [li.get_text() for li in page.select("nav.crumbs li")]
    assert crumbs == ["首页", "免申即享", "免申即享审核"]
    top = page.select("nav.menus > ul > li")
    assert len(top) <= 7
    menu = {s.get_text(): s for s in page.select("nav.menus summary")}
    assert "current" in menu["免申即享"].get("class", [])


def test_long_policy_has_a_table_of_contents(client: TestClient, db_session: Session) -> None:
    policy = policy_service.import_source(db_session, ingest_file(SEED), publish=True).policy
    db_session.commit()
    page = _soup(client, f"/policy/{policy.id}")
    links = [a["href"] for a in page.select("#toc a")]
    articles = [f"#{s['id']}" for s in page.select("section.article")]
    assert articles and set(articles) <= set(links)


def test_every_domain_contributes_to_dos() -> None:
    assert len(providers()) == len(PROVIDERS) >= 4
