"""Enterprise pages and API: own record with provenance, object-level access, officer filters, import page."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.core.codes import make_credit_code
from huiqi.core.config import Settings
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise import service
from huiqi.enterprise.population import generate, load_rows
from tests.conftest import csrf_from

OWN = "91620102MA72H8K3X0"  # the default enterprise binding of login_as
OTHER = make_credit_code("9", "1", "622926", "MA7DXQ26")


def _seed(db_session: Session) -> None:
    for code, name, region, industry, staff, revenue in (
        (OWN, "兰州示例机械制造有限公司", "620102", "3311", 120, 5000),
        (OTHER, "东乡示例农业有限公司", "622926", "0111", 12, 30),
    ):
        service.apply_changes(
            db_session,
            code,
            {"name": name, "region_code": region, "industry_code": industry},
            source="市场监管",
            as_of=date(2025, 1, 2),
        )
        service.apply_changes(
            db_session,
            code,
            {"employees": staff, "revenue": revenue * FEN_PER_WAN},
            source="税务",
            as_of=date(2025, 3, 31),
            year=2024,
        )
    service.apply_changes(
        db_session,
        OTHER,
        {"cert_tech_sme_from": date(2024, 5, 1), "cert_tech_sme_to": date(2099, 12, 31)},
        source="科技",
        as_of=date(2024, 5, 1),
    )
    db_session.commit()


def _soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    return BeautifulSoup(response.text, "lxml")


def test_enterprise_sees_own_values_with_source_and_date(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _seed(db_session)
    login_as("enterprise")
    page = _soup(client.get("/enterprise/mine"))
    assert page.select_one("#credit-code").get_text() == OWN
    revenue = page.select_one('#values tr[data-field="revenue"]')
    assert revenue.select_one(".value").get_text() == "5000 万元"
    assert revenue.select_one(".source").get_text() == "税务"
    assert revenue.select_one(".as-of").get_text() == "2025-03-31"
    assert page.select_one('#derived dd[data-field="size_class"]').get_text() == "小型"
    # every shown value names its source and date
    for row in page.select("#values tbody tr[data-field]"):
        assert row.select_one(".source").get_text() and row.select_one(".as-of").get_text()


def test_enterprise_cannot_open_another_enterprise(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _seed(db_session)
    login_as("enterprise")
    assert client.get(f"/enterprise/{OTHER}").status_code == 404
    assert client.get(f"/api/v1/enterprise/{OTHER}").status_code == 404
    token = csrf_from(client, "/enterprise/mine")
    response = client.post(
        f"/enterprise/{OTHER}/self-report",
        data={"year": "2024", "employees": "1", "csrf_token": token},
    )
    assert response.status_code == 404
    assert client.get("/enterprise").status_code == 403


def test_enterprise_corrects_self_reported_fields(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _seed(db_session)
    login_as("enterprise")
    token = csrf_from(client, "/enterprise/mine")
    response = client.post(
        f"/enterprise/{OWN}/self-report",
        data={
            "year": "2024",
            "employees": "130",
            "contact_email": "hr@example.cn",
            "consent_email": "是",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = _soup(client.get(f"/enterprise/{OWN}"))
    staff = page.select_one('#values tr[data-field="employees"]')
    assert staff.select_one(".value").get_text() == "130"
    assert staff.select_one(".source").get_text() == "企业自报"
    assert "120" in page.select_one("#history").get_text()  # the former value stays in history
    # a field that is not self-reportable is refused
    bad = client.post(
        f"/enterprise/{OWN}/self-report",
        data={"year": "2024", "employees": "-5", "csrf_token": token},
    )
    assert bad.status_code == 200 and "负数" in bad.text


def test_officer_lists_and_filters(
    client: TestClient, login_as: Callable[..., object], db_session: Session
) -> None:
    _seed(db_session)
    login_as("officer")
    page = _soup(client.get("/enterprise"))
    assert page.select_one("#total strong").get_text() == "2"
    page = _soup(client.get("/enterprise?region=622900"))
    codes = [a.get_text() for a in page.select("#enterprises td.code a")]
    assert codes == [OTHER]
    page = _soup(client.get("/enterprise?size=small&industry=33"))
    assert [a.get_text() for a in page.select("#enterprises td.code a")] == [OWN]
    page = _soup(client.get("/enterprise?cert=tech_sme"))
    assert [a.get_text() for a in page.select("#enterprises td.code a")] == [OTHER]
    detail = _soup(client.get(f"/enterprise/{OTHER}"))
    assert detail.select_one("#self-report") is None  # officers read, enterprises correct
    api = client.get("/api/v1/enterprise?size=micro").json()
    assert api["total"] == 1 and api["items"][0]["credit_code"] == OTHER


def test_classify_api(settings: Settings) -> None:
    from huiqi.web.app import create_app

    app = create_app(settings, configure_db=False)
    with TestClient(app, base_url="https://testserver") as c:
        got = c.get(
            "/api/v1/enterprise/classify",
            params={"industry": "3311", "employees": 120, "revenue": "5000"},
        )
        assert got.status_code == 200
        body = got.json()
        assert body["size"] == "small" and body["group"] == "industry" and body["missing"] == []
        assert body["reasons"]
        posted = c.post(
            "/api/v1/enterprise/classify", json={"industry": "3311", "revenue": "5000"}
        ).json()
        assert posted["size"] == "unknown" and posted["missing"] == ["employees"]
        # refusals go through the one error handler: 422 naming what is wrong
        bad_code = c.get("/api/v1/enterprise/classify", params={"industry": "9999"})
        assert bad_code.status_code == 422 and "9999" in bad_code.json()["error"]["message"]
        negative = c.post("/api/v1/enterprise/classify", json={"industry": "3311", "employees": -1})
        assert negative.status_code == 422
        assert negative.json()["error"]["field"] == "employees"
        not_money = c.get("/api/v1/enterprise/classify", params={"revenue": "abc"})
        assert not_money.status_code == 422 and not_money.json()["error"]["field"] == "revenue"


def test_import_page_runs_and_offers_error_report(
    client: TestClient, login_as: Callable[..., object], tmp_path: Path
) -> None:
    login_as("officer")
    page = _soup(client.get("/enterprise/import"))
    assert page.select_one("#upload input[type=file]") is not None
    assert len(page.select("#template-columns tbody tr")) > 20
    template = client.get("/enterprise/template.csv")
    assert template.status_code == 200 and "统一社会信用代码" in template.content.decode(
        "utf-8-sig"
    )
    rows = generate(20, seed=11)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = template.content.decode("utf-8-sig").splitlines()[0].split(",")
    writer.writerow(["统一社会信用代码", "企业名称", "年度", "从业人员（人）"])
    for r in rows:
        writer.writerow([r["credit_code"], r["name"], "2024", "10"])
    writer.writerow(["91620102MA72H8K3X9", "坏校验码", "2024", "10"])
    assert header[0] == "统一社会信用代码"
    token = csrf_from(client, "/enterprise/import")
    response = client.post(
        "/enterprise/import",
        data={"csrf_token": token},
        files={"file": ("firms.csv", buffer.getvalue().encode("utf-8"), "text/csv")},
        follow_redirects=True,
    )
    job = _soup(response)
    assert job.select_one("#job-status")["data-status"] == "done"
    assert job.select_one('[data-count="inserted"]').get_text() == "20"
    assert job.select_one('[data-count="rejected"]').get_text() == "1"
    link = job.select_one("#error-report")["href"]
    report = client.get(link)
    assert report.status_code == 200
    lines = list(csv.DictReader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert lines[0]["row"] == "22" and "校验码" in lines[0]["reason"]


def test_demo_population_loads_every_size_class(db_session: Session) -> None:
    report = load_rows(db_session, generate(1500, seed=2020))
    assert report.rejected == 0 and report.inserted == 1500
    frame = service.current_frame(db_session)
    sizes = set(frame["size_class"].drop_nulls().to_list())
    assert sizes == {"large", "medium", "small", "micro"}
    assert frame["size_class"].null_count() > 0  # some enterprises lack the inputs
    assert frame["above_scale"].sum() > 0
