"""An order standing alone (国务院令 第812号 promulgating a decision printed elsewhere)."""

from __future__ import annotations

import datetime as dt

from huiqi.policy.ingest import ingest_bytes
from huiqi.policy.parser import parse_source, parse_text

ORDER = """中华人民共和国国务院令
第812号
《国务院关于修改和废止部分行政法规的决定》已经2025年1月1日国务院第1次常务会议通过，现予公布，自2025年3月1日起施行。
总理　李强
2025年1月20日
"""


def _check(doc_text: str, *, web: bool) -> None:
    if web:
        body = "".join(f"<p>{line}</p>" for line in doc_text.splitlines())
        page = (
            "<html><head><title>中华人民共和国国务院令 第812号_国务院文件_中国政府网</title></head>"
            "<body><div class='nav'>首页 > 政策 > 国务院文件</div><p>发布日期：2025-01-22</p>"
            f"{body}<div class='footer'>版权所有 网站标识码 bm01000001</div></body></html>"
        )
        doc = parse_source(ingest_bytes(page.encode(), "order.html"))
        assert doc.published_on == dt.date(2025, 1, 22)
    else:
        doc = parse_text(doc_text)
    assert doc.title == "中华人民共和国国务院令"
    assert doc.doc_number == "国务院令第812号"
    assert doc.issuers == ["国务院"]
    assert doc.metadata_sources["doc_number"] == "head"
    assert doc.issued_on == dt.date(2025, 1, 20)
    assert doc.effective_on == dt.date(2025, 3, 1)
    assert doc.enclosed is None
    assert doc.cited_documents == []
    [article] = doc.articles()
    assert article.text.startswith("《国务院关于修改和废止部分行政法规的决定》已经")
    # The premier signs; he is neither an issuer nor part of the text.
    assert "李强" not in article.text


def test_a_standalone_order_is_read_as_an_order() -> None:
    _check(ORDER, web=False)


def test_a_standalone_order_on_a_web_page() -> None:
    _check(ORDER, web=True)


def test_a_presidential_order_keeps_the_congress_as_issuer() -> None:
    text = (
        "中华人民共和国主席令\n第三十一号\n"
        "《中华人民共和国某某法》已由中华人民共和国第十四届全国人民代表大会常务委员会第十次会议于"
        "2024年6月28日通过，现予公布，自2025年1月1日起施行。\n中华人民共和国主席 习近平\n2024年6月28日\n"
    )
    doc = parse_text(text)
    assert doc.doc_number != "主席令第31号"
    assert doc.issuers != ["主席"]
