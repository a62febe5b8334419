"""Policy interpretations (解读): officers attach them; articles show them; 我的政策 links to them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huiqi.policy import interpretation, service
from huiqi.policy.ingest import SourceText, ingest_file
from huiqi.policy.models import Policy
from tests.conftest import csrf_from
from tests.matching.test_web import _populate
from tests.policy.conftest import SEED

GRAD_ARTICLE = 22  # (二十二): the graduate social-insurance subsidy


def _seed(db_session: Session) -> Policy:
    policy = service.import_source(db_session, ingest_file(SEED), publish=True).policy
    db_session.commit()
    return policy


@pytest.mark.parametrize(
    ("given", "field", "zh"),
    [
        ({"title": " ", "body": "说明"}, "title", "请填写解读标题"),
        ({"title": "解读", "body": "", "url": ""}, "body", "至少一项"),
        ({"title": "解读", "url": "javascript:alert(1)"}, "url", "http://"),
        ({"title": "解读", "url": "//evil.example/x"}, "url", "http://"),
        (
            {"title": "解读", "body": "说明", "article_number": 999},
            "article_number",
            "没有所选条款",
        ),
    ],
)
def test_refusals_name_the_field_in_both_languages(
    db_session: Session, given: dict[str, object], field: str, zh: str
) -> None:
    policy = _seed(db_session)
    args: dict[str, object] = {"article_number": None, **given}
    with pytest.raises(interpretation.InterpretationError) as refused:
        interpretation.add(db_session, policy, **args)  # type: ignore[arg-type]
    assert refused.value.field == field and zh in refused.value.message_zh
    assert refused.value.message_en != refused.value.message_zh


def test_an_officer_attaches_one_the_cached_page_shows_it_and_my_policies_links_it(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    policy = _seed(db_session)
    _populate(db_session)
    db_session.commit()
    before = client.get(f"/policy/{policy.id}")  # warms the page cache
    assert before.status_code == 200 and "interpretation" not in before.text

    login_as("officer")
    token = csrf_from(client, f"/policy/{policy.id}/interpretations")
    refused = client.post(
        f"/policy/{policy.id}/interpretations",
        data={"title": "毕业生社保补贴怎么领", "url": "ftp://x", "csrf_token": token},
    )
    assert refused.status_code == 422
    soup = BeautifulSoup(refused.text, "html.parser")
    assert "https://" in soup.select_one("#interpretation-error").text
    assert soup.select_one("#i-url")["aria-invalid"] == "true"
    assert soup.select_one("#i-title")["value"] == "毕业生社保补贴怎么领"  # what was typed stays

    saved = client.post(
        f"/policy/{policy.id}/interpretations",
        data={
            "title": "毕业生社保补贴怎么领",
            "article": str(GRAD_ARTICLE),
            "body": "补贴按单位实际缴纳的三项社会保险费计算。\n无需申请。",
            "url": "https://rst.gansu.gov.cn/jiedu/1.html",
            "how_to_claim": "登记收款账户,审核通过后直接拨付。",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    item_id = int(saved.headers["location"].rsplit("#interp-", 1)[1])

    client.cookies.clear()  # the public page, from the cache stamp that moved
    after = client.get(f"/policy/{policy.id}", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    shown = BeautifulSoup(after.text, "html.parser").select_one(
        f"#art-{GRAD_ARTICLE} #interp-{item_id}"
    )
    assert shown is not None and "无需申请" in shown.text and "直接拨付" in shown.text
    assert shown.select_one('a[href="https://rst.gansu.gov.cn/jiedu/1.html"]') is not None

    login_as("enterprise")
    mine = BeautifulSoup(client.get("/matching/mine").text, "html.parser")
    card = mine.select_one('article[data-rule="gs351-22-graduate-social-insurance"]')
    assert card.select_one("h3 a")["href"] == f"/policy/{policy.id}#art-{GRAD_ARTICLE}"
    link = card.select_one(".explained a")
    assert link.text == "毕业生社保补贴怎么领"
    assert link["href"] == f"/policy/{policy.id}#interp-{item_id}"

    login_as("officer")
    token = csrf_from(client, f"/policy/{policy.id}/interpretations")
    removed = client.post(
        f"/policy/{policy.id}/interpretations/{item_id}/delete",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert removed.status_code == 303
    assert f"interp-{item_id}" not in client.get(f"/policy/{policy.id}").text


def test_only_officers_attach_and_a_new_version_keeps_them(
    client: TestClient, db_session: Session, login_as: Callable[..., object]
) -> None:
    policy = _seed(db_session)
    login_as("enterprise")
    token = csrf_from(client, "/")
    posted = client.post(
        f"/policy/{policy.id}/interpretations",
        data={"title": "x", "body": "y", "csrf_token": token},
    )
    assert posted.status_code == 403
    item = interpretation.add(
        db_session, policy, article_number=GRAD_ARTICLE, title="解读", body="说明"
    )
    db_session.commit()
    text = SEED.read_text(encoding="utf-8").replace("社会保险补贴", "社会保险补贴。", 1)
    result = service.import_source(
        db_session,
        SourceText(filename="seed-v2.txt", kind="text", encoding="utf-8", text=text),
        publish=True,
    )
    db_session.commit()
    assert result.outcome == "new_version"
    assert [i.id for i in interpretation.for_article(db_session, policy.id, GRAD_ARTICLE)] == [
        item.id
    ]


def test_the_api_lists_them(client: TestClient, db_session: Session) -> None:
    policy = _seed(db_session)
    item = interpretation.add(
        db_session, policy, article_number=None, title="政策解读", url="/policy/1"
    )
    db_session.commit()
    data = client.get(f"/api/v1/policy/policies/{policy.id}").json()
    assert data["interpretations"] == [
        {
            "id": item.id,
            "article_number": None,
            "title": "政策解读",
            "body": "",
            "url": "/policy/1",
            "how_to_claim": "",
            "page": f"/policy/{policy.id}#interp-{item.id}",
        }
    ]
