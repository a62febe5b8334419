"""Uploads are parsed in a bounded worker process: bombs are refused, the server keeps answering."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from huiqi.policy.ingest import IngestError, Limits, ingest_bytes
from huiqi.policy.worker import ParseLimits, parse_upload_blocking
from tests.conftest import csrf_from
from tests.policy.conftest import FIXTURES

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_with_paragraphs(count: int, text: str = "") -> bytes:
    """A minimal Word file whose body holds ``count`` paragraphs (empty by default)."""
    run = f"<w:r><w:t>{text}</w:t></w:r>" if text else ""
    body = f"<w:p>{run}</w:p>" * count
    document = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>',
        )
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def test_docx_bomb_is_small_and_refused_with_a_chinese_message() -> None:
    bomb = docx_with_paragraphs(200_000)
    assert len(bomb) < 60_000
    with pytest.raises(IngestError) as info:
        ingest_bytes(bomb, "bomb.docx")
    assert "段落过多" in info.value.reason and "50,000" in info.value.reason


def test_zip_unpacking_beyond_the_limit_is_refused() -> None:
    big = docx_with_paragraphs(20, text="中" * 20_000)
    with pytest.raises(IngestError) as info:
        ingest_bytes(big, "big.docx", limits=Limits(max_unzipped_bytes=100_000))
    assert "压缩炸弹" in info.value.reason


def test_page_with_too_many_elements_is_refused() -> None:
    page = "<html><body>" + "<div>中</div>" * 5000 + "</body></html>"
    with pytest.raises(IngestError) as info:
        ingest_bytes(page.encode(), "page.html", limits=Limits(max_elements=1000))
    assert "页面元素过多" in info.value.reason


def test_worker_parses_like_the_parser_in_process() -> None:
    data = (FIXTURES / "seed.docx").read_bytes()
    source, doc = parse_upload_blocking(data, "seed.docx", max_bytes=10**7, limits=ParseLimits())
    assert source.kind == "docx"
    assert doc.doc_number == "甘工信发〔2020〕351号"
    assert len(doc.articles()) == 39
    assert doc.task_level == "(一)" and len(doc.tasks) == 39
    _, by_section = parse_upload_blocking(
        data, "seed.docx", max_bytes=10**7, limits=ParseLimits(), task_level="一、"
    )
    assert by_section.task_level == "一、" and by_section.tasks == []


def test_worker_stops_a_parse_that_runs_too_long() -> None:
    bomb = docx_with_paragraphs(400_000)
    limits = ParseLimits(timeout_seconds=0.3, ingest=Limits(max_paragraphs=10**8))
    with pytest.raises(IngestError) as info:
        parse_upload_blocking(bomb, "slow.docx", max_bytes=10**7, limits=limits)
    assert "解析超时" in info.value.reason


def _upload(client: TestClient, token: str, name: str, data: bytes) -> tuple[int, str, float]:
    response = client.post(
        "/policy/upload",
        data={"csrf_token": token},
        files={"file": (name, data, "application/octet-stream")},
        follow_redirects=False,
    )
    return response.status_code, response.text, time.monotonic()


def test_bomb_upload_refused_while_the_server_keeps_answering(
    client: TestClient, login_as: Callable[..., object], settings: object, tmp_path: Path
) -> None:
    login_as("officer")
    token = csrf_from(client, "/policy/upload")
    # A parse that runs until the time limit stops it: the upload waits for it off the event loop.
    client.app.state.settings.parse_timeout_seconds = 2  # type: ignore[attr-defined]
    client.app.state.settings.parse_max_paragraphs = 10**8  # type: ignore[attr-defined]
    slow = docx_with_paragraphs(2_000_000)
    result: dict[str, tuple[int, str, float]] = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("upload", _upload(client, token, "slow.docx", slow))
    )
    started = time.monotonic()
    worker.start()
    time.sleep(0.2)
    health_done = []
    while worker.is_alive() and len(health_done) < 20:
        assert client.get("/healthz").status_code == 200
        health_done.append(time.monotonic())
    worker.join()
    status, text, upload_done = result["upload"]
    assert status == 400
    assert "解析超时" in text, (started, health_done, upload_done)
    # /healthz answered while the upload was still being parsed.
    assert health_done and health_done[0] < upload_done, (started, health_done, upload_done)
    # The 50 KB bomb of 200,000 empty paragraphs is refused by the default limits.
    client.app.state.settings.parse_max_paragraphs = 50_000  # type: ignore[attr-defined]
    client.app.state.settings.parse_timeout_seconds = 30  # type: ignore[attr-defined]
    status, text, _ = _upload(client, token, "bomb.docx", docx_with_paragraphs(200_000))
    assert status == 400 and "段落过多" in text, text[
        text.find("upload-error") : text.find("upload-error") + 400
    ]
