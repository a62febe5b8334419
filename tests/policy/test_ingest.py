"""Reading files: encodings, formats, line ends, punctuation widths and bad input."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from huiqi.policy.ingest import IngestError, decode_text, ingest_bytes, ingest_file, normalize_text
from huiqi.policy.schemas import ParsedDocument
from tests.policy.conftest import FIXTURES, SEED, parse_path

RENDITIONS = [
    "seed_gbk.txt",
    "seed_crlf.txt",
    "seed_fullwidth.txt",
    "seed.html",
    "seed.docx",
    "seed.pdf",
]


def _squash(text: str) -> str:
    # The PDF's built-in CID font (STSong-Light) has no glyph for the middle dot "·".
    return re.sub(r"[\s·]+", "", text)


@pytest.mark.parametrize("name", RENDITIONS)
def test_renditions_parse_like_the_seed(name: str, seed_doc: ParsedDocument) -> None:
    doc = parse_path(FIXTURES / name)
    assert doc.title == seed_doc.title
    assert doc.doc_number == seed_doc.doc_number
    assert doc.issued_on == seed_doc.issued_on
    assert doc.addressees == seed_doc.addressees
    assert doc.cited_documents == seed_doc.cited_documents
    assert [(s.number, s.title) for s in doc.sections] == [
        (s.number, s.title) for s in seed_doc.sections
    ]
    ours, theirs = doc.articles(), seed_doc.articles()
    assert [a.number for a in ours] == [a.number for a in theirs]
    for mine, ref in zip(ours, theirs, strict=True):
        assert (mine.label, mine.title) == (ref.label, ref.title)
        assert mine.departments == ref.departments, mine.label
        assert mine.implementers == ref.implementers, mine.label
        assert [(q.text, q.value, q.op) for q in mine.quantities] == [
            (q.text, q.value, q.op) for q in ref.quantities
        ]
        assert _squash(mine.text) == _squash(ref.text), mine.label
    assert any("(二十八)" in w for w in doc.warnings)


def test_gbk_is_detected_not_assumed() -> None:
    source = ingest_file(FIXTURES / "seed_gbk.txt")
    assert source.encoding == "gb18030"
    assert source.text == ingest_file(SEED).text
    utf8 = ingest_file(SEED)
    assert utf8.encoding == "utf-8"


def test_short_gbk_text_is_detected() -> None:
    text, encoding = decode_text("各市州人民政府:现将有关事项通知如下。".encode("gbk"), "x.txt")
    assert encoding == "gb18030"
    assert text.startswith("各市州人民政府")


def test_crlf_and_bom() -> None:
    data = "\ufeff一、总体要求\r\n(一)加强领导\r\n内容。\r\n".encode()
    source = ingest_bytes(data, "crlf.txt")
    assert "\r" not in source.text and not source.text.startswith("\ufeff")
    assert source.text.splitlines()[:2] == ["一、总体要求", "(一)加强领导"]


def test_fullwidth_forms_are_normalised() -> None:
    assert normalize_text("(一)占比30%以上;详见附件:1。\u3000") == "(一)占比30%以上;详见附件:1。\n"


def test_html_chrome_is_dropped() -> None:
    source = ingest_file(FIXTURES / "seed.html")
    assert source.kind == "html"
    for chrome in ("统计代码", "网站首页", "领导之窗", "版权所有", "ICP备", "color: red"):
        assert chrome not in source.text


def test_docx_and_pdf_kinds() -> None:
    assert ingest_file(FIXTURES / "seed.docx").kind == "docx"
    assert ingest_file(FIXTURES / "seed.pdf").kind == "pdf"


def _pdf_without_text() -> bytes:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(100, 100, 200, 200, fill=1)
    pdf.save()
    return buffer.getvalue()


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.txt", "empty"),
        (b"  \n\r\n ", "blank.txt", "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "scan.txt", "PNG image"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "old.doc", "legacy Word"),
        (_xlsx(), "table.xlsx", "spreadsheet"),
        (bytes(range(256)) * 8, "noise.txt", "binary"),
        (b"\x81\x30\x89\x38\xfe\xfe\xa0\xa0" * 50, "garbled.txt", "encoding"),
        (b"hello world", "policy.exe", "unsupported file type"),
        ("正文".encode(), "policy.pdf", "not a PDF"),
        (b"%PDF-1.4 broken", "broken.pdf", "PDF"),
        (_pdf_without_text(), "scan.pdf", "no text layer"),
        (b"PK\x03\x04broken", "broken.docx", "damaged"),
        (b"just english text, no policy", "english.txt", "no Chinese text"),
    ],
)
def test_bad_input_names_file_and_reason(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(IngestError) as caught:
        ingest_bytes(data, name)
    assert caught.value.message_en.startswith(f"{name}: ")
    assert reason in caught.value.message_en
    # the Chinese view names the file and gives the reason in Chinese
    zh = caught.value.message_zh
    assert zh.startswith(f"{name}:") and re.search(r"[\u4e00-\u9fff]", zh)
    assert not re.search(r"[a-z]{4,} [a-z]{2,} [a-z]{2,}", zh), zh


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes("政策".encode() * 600)
    with pytest.raises(IngestError, match=r"big\.txt: the file is too large"):
        ingest_file(path, max_bytes=1000)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot read the file"):
        ingest_file(tmp_path / "nope.txt")
