"""Long pages: the upload path grows linearly, and the unvalidated models equal validated ones."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from huiqi.policy.ingest import ingest_bytes
from huiqi.policy.parser import cn_label, parse_source, parse_text
from huiqi.policy.schemas import ParsedArticle, ParsedDocument, TaskOut, built
from tests.policy.conftest import SEED

CORPUS = Path(__file__).resolve().parents[1] / "data" / "policy" / "corpus"


def _page(paragraphs: int) -> bytes:
    """A government web page of an opinion: sections of ten articles, each with a note and a sum."""
    parts = []
    for i in range(paragraphs):
        if i % 10 == 0:
            parts.append(f"<p>{cn_label(i // 10 % 99 + 1)}、第{i // 10 + 1}部分重点任务</p>")
        parts.append(
            f"<p>({cn_label(i % 10 + 1)})推进中小企业数字化转型。第{i}项措施落实到位，"
            f"资金支持不超过{i}万元，2025年底前完成。（省工信厅牵头，省财政厅按职责分工负责）</p>"
        )
    return (
        "<html><head><title>关于支持中小企业发展的若干措施</title></head><body>"
        "<div class='nav'><a>首页</a><a>政务公开</a></div><div class='content'>"
        f"<h1>关于支持中小企业发展的若干措施</h1>{''.join(parts)}</div>"
        "<div class='footer'>版权所有 网站标识码 1100000000</div></body></html>"
    ).encode()


def _calls(fn: Callable[[], object]) -> int:
    """Python and C function calls made while ``fn`` runs (a count, not a time)."""
    count = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_the_upload_path_grows_linearly_with_the_page() -> None:
    # Decoding, extraction, normalisation and parsing of a page of 500, 1,000 and 2,000
    # paragraphs: work per paragraph must not grow with the page (linear = 2× per doubling).
    counts = {}
    for n in (500, 1000, 2000):
        data = _page(n)
        parse_source(ingest_bytes(data, "page.html"))  # warm caches (registry, topics, cn2an)
        counts[n] = _calls(lambda d=data: parse_source(ingest_bytes(d, "page.html")))
    assert 1.8 <= counts[1000] / counts[500] <= 2.2, counts
    assert 1.8 <= counts[2000] / counts[1000] <= 2.2, counts


def _models(value: object) -> Iterator[BaseModel]:
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from _models(getattr(value, name))
    elif isinstance(value, list):
        for item in value:
            yield from _models(item)


def _check_as_validated(doc: ParsedDocument) -> int:
    checked = 0
    for model in _models(doc):
        cls = type(model)
        assert set(model.__dict__) == set(cls.model_fields), cls.__name__
        assert cls.model_validate(model.model_dump()) == model, cls.__name__
        checked += 1
    assert ParsedDocument.model_validate_json(doc.model_dump_json()) == doc
    return checked


@pytest.mark.parametrize("name", ["seed", "page", *sorted(p.stem for p in CORPUS.glob("*.txt"))])
def test_unvalidated_models_equal_validated_ones(name: str) -> None:
    # Articles, items, tasks and quantities are built without validation: each must hold every
    # field, with the value and type validation would give.
    if name == "seed":
        doc = parse_text(SEED.read_text("utf-8"))
    elif name == "page":
        doc = parse_source(ingest_bytes(_page(40), "page.html"))
    else:
        doc = parse_text((CORPUS / f"{name}.txt").read_text("utf-8"))
    assert _check_as_validated(doc) > 0


def test_tasks_do_not_share_lists_with_articles() -> None:
    doc = parse_source(ingest_bytes(_page(20), "page.html"))
    article, task = doc.sections[0].articles[0], doc.tasks[0]
    assert task.path == article.path
    task.path.append("x")
    assert article.path != task.path


def test_a_missing_field_is_refused() -> None:
    with pytest.raises(
        TypeError, match=r"TaskOut: every field must be given \(missing \['deadline'"
    ):
        built(TaskOut, path=[], label="1.", title="", text="", lead=[], support=[])
    assert built(ParsedArticle, **ParsedArticle(number=1, label="(一)").model_dump()).number == 1
