"""Storage with versions, search, tasks and export, on SQLite (and PostgreSQL when enabled)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiqi.policy import export, search, service
from huiqi.policy.ingest import IngestError, ingest_file
from huiqi.policy.models import Policy, PolicyArticle, PolicyStatus, PolicyTask, PolicyVersion
from tests.policy.conftest import FIXTURES, SEED

SEED_NUMBER = "甘工信发〔2020〕351号"


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def seed_policy(db_session: Session) -> Policy:
    result = service.import_source(db_session, ingest_file(SEED), publish=True)
    assert result.outcome == "created"
    return result.policy


def test_import_creates_structure(db_session: Session, seed_policy: Policy) -> None:
    assert seed_policy.status == PolicyStatus.published
    assert seed_policy.doc_number == SEED_NUMBER
    assert seed_policy.valid_from == dt.date(2020, 12, 18)
    assert len(seed_policy.sections) == 7
    assert [a.number for a in seed_policy.articles][:3] == [1, 2, 3]
    assert len(seed_policy.articles) == 39
    a10 = service.find_article(db_session, SEED_NUMBER, 10)
    assert a10 is not None and a10.url == f"/policy/{seed_policy.id}#art-10"
    assert a10.title == "严格执行政府采购支持中小企业政策机制"
    assert service.find_article(db_session, SEED_NUMBER, 28) is None
    assert service.find_article(db_session, "无此文号", 1) is None


def test_same_text_twice_changes_nothing(db_session: Session, seed_policy: Policy) -> None:
    counts = [_count(db_session, m) for m in (Policy, PolicyVersion, PolicyArticle, PolicyTask)]
    for rendition in (
        SEED,
        FIXTURES / "seed_gbk.txt",
        FIXTURES / "seed.html",
        FIXTURES / "seed.docx",
    ):
        result = service.import_source(db_session, ingest_file(rendition))
        assert result.outcome == "unchanged", rendition
    assert [
        _count(db_session, m) for m in (Policy, PolicyVersion, PolicyArticle, PolicyTask)
    ] == counts


def test_changed_text_is_a_new_version_with_diff(db_session: Session, seed_policy: Policy) -> None:
    result = service.import_source(db_session, ingest_file(FIXTURES / "seed_v2.txt"))
    assert result.outcome == "new_version"
    assert result.policy.id == seed_policy.id
    assert [v.number for v in seed_policy.versions] == [1, 2]
    diff = result.version.diff
    assert diff.startswith("--- version 1\n+++ version 2")
    assert "-支持甘肃金控担保集团" in diff and "降至1%以下" in diff
    assert result.version.changes == ["(十八) 健全中小企业融资增信支持体系: changed"]
    a18 = service.find_article(db_session, SEED_NUMBER, 18)
    assert a18 is not None
    article = db_session.get(PolicyArticle, a18.article_id)
    assert article is not None and article.quantities[0]["value"] == 1
    assert seed_policy.status == PolicyStatus.published
    assert _count(db_session, PolicyArticle) == 39


def test_bad_file_stores_nothing(db_session: Session) -> None:
    with pytest.raises(IngestError):
        service.import_bytes(db_session, b"", "empty.txt", max_bytes=1000)
    assert _count(db_session, Policy) == 0


def test_unstructured_document_is_stored_as_one_article(db_session: Session) -> None:
    result = service.import_source(db_session, ingest_file(FIXTURES / "plain.txt"))
    assert len(result.policy.articles) == 1
    assert any("no recognisable structure" in w for w in result.policy.warnings)


def test_status_and_validity(db_session: Session, seed_policy: Policy) -> None:
    with pytest.raises(service.PolicyError):
        service.set_validity(db_session, seed_policy, dt.date(2022, 1, 1), dt.date(2021, 1, 1))
    service.set_validity(db_session, seed_policy, dt.date(2021, 1, 1), dt.date(2025, 12, 31))
    assert search.search(db_session, "担保费率", valid_on=dt.date(2024, 1, 1))
    assert search.search(db_session, "担保费率", valid_on=dt.date(2026, 1, 1)) == []
    service.set_status(db_session, seed_policy, "repealed")
    assert search.search(db_session, "担保费率") == []
    assert search.search(db_session, "担保费率", status="repealed")
    with pytest.raises(service.PolicyError):
        service.set_status(db_session, seed_policy, "gone")


def test_search_segments_ranks_filters_and_highlights(
    db_session: Session, seed_policy: Policy
) -> None:
    hits = search.search(db_session, "平均担保费率")
    assert hits[0].article_number == 18
    assert "<mark>担保</mark>" in str(hits[0].snippet_html)
    # Words need not be adjacent: jieba splits the query and every word must occur.
    hits = search.search(db_session, "政府采购 小微企业 预留")
    assert [h.article_number for h in hits] == [10]
    by_dept = search.search(db_session, "信用", department="甘肃省税务局")
    assert by_dept and all(
        "省税务局" in db_session.get(PolicyArticle, h.article_id).departments  # type: ignore[union-attr]
        for h in by_dept
    )
    assert {h.article_number for h in search.search(db_session, "企业", topic="procurement")} == {
        10
    }
    title_hits = [h for h in search.search(db_session, "实施意见") if h.article_id is None]
    assert title_hits and title_hits[0].policy_id == seed_policy.id
    assert search.search(db_session, "不存在的词语组合喵") == []
    assert search.search(db_session, "  ") == []
    assert str(search.highlight("<b>担保</b>", ["担保"])) == "&lt;b&gt;<mark>担保</mark>&lt;/b&gt;"


def test_search_escapes_like_wildcards(db_session: Session, seed_policy: Policy) -> None:
    assert search.search(db_session, "%") == []
    assert search.search(db_session, "_") == []


def test_officer_correction_and_department_mapping(db_session: Session) -> None:
    result = service.import_source(db_session, ingest_file(FIXTURES / "other_province_opinion.txt"))
    article = result.policy.articles[0]
    # Jiangsu's 省财政厅 resolves by the provincial pattern; the regional central-bank branch does not.
    assert article.tasks[0].known and article.tasks[0].department_code == "江苏-czt"
    pbc = [t for a in result.policy.articles for t in a.tasks if t.department == "人民银行南京分行"]
    assert pbc and not pbc[0].known
    service.correct_article(
        db_session,
        article,
        title="设立纾困专项资金(修订)",
        text=article.text.replace("最高50万元", "最高80万元"),
        departments=["省财政厅", "省工信厅"],
    )
    assert article.corrected and article.title.endswith("(修订)")
    assert [q["text"] for q in article.quantities][-1] == "最高80万元"
    assert search.search(db_session, "修订", status=None)[0].article_id == article.id
    with pytest.raises(service.PolicyError):
        service.correct_article(db_session, article, title="x", text="  ")
    updated = service.map_department(db_session, "人民银行南京分行", "cn-rmyh")
    assert updated == 1
    assert pbc[0].known and pbc[0].department == "人民银行"
    with pytest.raises(service.PolicyError):
        service.map_department(db_session, "某局", "no-such-code")


def test_task_breakdown_and_exports(db_session: Session, seed_policy: Policy) -> None:
    rows = service.task_rows(db_session, seed_policy)
    assert len(rows) == 39
    row10 = next(r for r in rows if r.article_number == 10)
    assert (row10.lead, row10.cooperating, row10.targets) == (
        "省财政厅",
        [],
        ["30%以上", "不低于60%"],
    )
    workbook = load_workbook(io.BytesIO(export.to_xlsx(rows)))
    sheet = workbook.active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == export.HEADERS
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width == 36
    assert sheet["F2"].alignment.wrap_text
    assert sheet.max_row == 40
    assert sheet["E2"].value == "省工信厅" and sheet["F2"].value == "省司法厅、省发展改革委"
    text = export.to_csv(rows).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == export.HEADERS and len(parsed) == 40
    data = json.loads(export.to_json(rows))
    assert data[0]["lead"] == "省工信厅" and data[0]["implementers"] == [
        "各市州政府",
        "兰州新区管委会",
    ]


def test_department_view(db_session: Session, seed_policy: Policy) -> None:
    rows = service.department_task_rows(db_session, "甘肃省税务局")
    numbers = [r.article_number for r in rows]
    assert numbers == [8, 9, 13, 14, 30, 38, 39, 40]
    assert rows[0].lead == "省税务局"
    service.set_status(db_session, seed_policy, "draft")
    assert service.department_task_rows(db_session, "省税务局") == []


def test_load_demo_is_idempotent(db_session: Session) -> None:
    service.load_demo(db_session)
    service.load_demo(db_session)
    policies = list(db_session.scalars(select(Policy)))
    assert len(policies) == 1 and policies[0].status == PolicyStatus.published
    assert len(policies[0].versions) == 1
