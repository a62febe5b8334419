"""Policy parsing: speed of the seed and its renditions, web-page extraction, and the corpus score.

Run: ``make bench`` or ``.venv/bin/python -m bench policy``. Prints ratios, not absolute thresholds.

- ``--corpus``: parse every document of the regression corpus (tests/data/policy/corpus) in every
  rendition and print checks passed / total, structure and departments separately, for the
  documents the parser was developed on (in-sample) and for those scored before any change made for
  them (held-out, out-of-sample); ``--failures`` lists what failed.
- ``--html``: time web-page and Word text extraction at 2,000 / 4,000 / 8,000 paragraphs (the ratio
  to the smallest shows whether it grows linearly) and a 500 KB page, extracted and parsed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from huiqi.policy.ingest import docx_to_text, html_to_text, ingest_bytes, ingest_file
from huiqi.policy.parser import parse_source

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "src" / "huiqi" / "policy" / "data" / "samples" / "gansu-gongxinfa-2020-351.txt"
FIXTURES = REPO / "tests" / "fixtures" / "policy"


def best_of(fn, runs: int = 7, clock=time.perf_counter) -> float:  # type: ignore[no-untyped-def]
    """Fastest time of several runs, in seconds (wall time, or ``clock``'s)."""
    times = []
    for _ in range(runs):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def page_of(paragraphs: int) -> str:
    """A government page with site chrome around ``paragraphs`` paragraphs of an opinion.

    Sections (一、) of ten articles ((一)…(十)), each article one paragraph with a target and a
    responsibility note, as provincial opinions are written.
    """
    from huiqi.policy.parser import cn_label

    parts = []
    for i in range(paragraphs):
        if i % 10 == 0:
            parts.append(f"<p>{cn_label(i // 10 % 99 + 1)}、第{i // 10 + 1}部分重点任务</p>")
        parts.append(
            f"<p>({cn_label(i % 10 + 1)})推进中小企业数字化转型。第{i}项措施落实到位，"
            f"资金支持不超过{i}万元。（省工信厅牵头，省财政厅、省发展改革委按职责分工负责）</p>"
        )
    body = "\n".join(parts)
    return (
        "<html><head><title>关于支持中小企业发展的若干措施</title><script>var a=1;</script></head>"
        "<body><div class='nav'><a>首页</a><a>政务公开</a></div>"
        f"<div class='content'><h1>关于支持中小企业发展的若干措施</h1>{body}</div>"
        "<div class='footer'>版权所有 网站标识码 1100000000</div></body></html>"
    )


def docx_of(paragraphs: int) -> bytes:
    """A Word file of ``paragraphs`` articles with a five-row table after every hundred."""
    import io
    import zipfile

    body = []
    for i in range(paragraphs):
        body.append(
            f"<w:p><w:r><w:t>({i})推进中小企业数字化转型。第{i}项措施落实到位，"
            f"资金支持不超过{i}万元。（省工信厅牵头）</w:t></w:r></w:p>"
        )
        if i % 100 == 0:
            cells = "<w:tc><w:p><w:r><w:t>省工信厅</w:t></w:r></w:p></w:tc>" * 2
            body.append("<w:tbl>" + f"<w:tr>{cells}</w:tr>" * 5 + "</w:tbl>")
    xml = (
        '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        f'wordprocessingml/2006/main"><w:body>{"".join(body)}</w:body></w:document>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", xml)
    return out.getvalue()


def portal_page(size_kb: int = 500) -> str:
    """A 500 KB portal page as provincial sites serve them: a 60-article opinion inside menus,
    scripts, inline styles, related-link lists and a footer that make up most of the bytes."""
    document = page_of(60)
    start, end = document.index("<div class='content'>"), document.index("<div class='footer'>")
    links = "".join(
        f"<li><a href='/art/{i}.html'>关于做好第{i}项工作的通知</a></li>" for i in range(400)
    )
    script = "<script>" + "var menu=[" + ",".join(f"'{i}'" for i in range(3000)) + "];</script>"
    style = (
        "<style>"
        + "".join(f".c{i}{{color:#{i:06x};margin:{i % 9}px}}" for i in range(3000))
        + "</style>"
    )
    chrome = f"{style}{script}<div class='nav'><ul>{links}</ul></div>"
    page = f"<html><head><title>关于支持中小企业发展的若干措施</title>{chrome}</head><body>"
    page += f"<div class='menu'><ul>{links}</ul></div>{document[start:end]}"
    padding = "<div class='related'><ul>" + links + "</ul></div>"
    while len(page.encode("utf-8")) < size_kb * 1024:
        page += padding
    return page + "<div class='footer'>版权所有 网站标识码 1100000000</div></body></html>"


def bench_html() -> None:
    """Extraction time by page size, and the 500 KB page in process (extraction + parse)."""
    import lxml.html

    sizes = (2000, 4000, 8000)
    times = {}
    for n in sizes:
        page = page_of(n)
        times[n] = best_of(lambda p=page: html_to_text(p), runs=3)
    for n in sizes:
        print(
            f"html {n:5d} paragraphs  extract {times[n] * 1000:7.1f} ms  "
            f"({times[n] / times[sizes[0]]:4.1f}× the 2,000-paragraph page; linear = {n / sizes[0]:.0f}×)"
        )
    docx_times = {}
    for n in sizes:
        data = docx_of(n)
        docx_times[n] = best_of(lambda d=data: docx_to_text(d, "bench.docx"), runs=3)
    for n in sizes:
        print(
            f"docx {n:5d} paragraphs  extract {docx_times[n] * 1000:7.1f} ms  "
            f"({docx_times[n] / docx_times[sizes[0]]:4.1f}× the 2,000-paragraph file; linear = {n / sizes[0]:.0f}×)"
        )
    for label, page in (("portal page", portal_page()), ("all-text page", page_of(2600))):
        size = len(page.encode("utf-8"))
        lxml_only = best_of(lambda p=page: lxml.html.document_fromstring(p), runs=3)
        extract = best_of(lambda p=page: html_to_text(p), runs=3)
        data = page.encode("utf-8")

        def upload(d: bytes = data) -> None:
            parse_source(ingest_bytes(d, "page.html"))

        # The upload path: decoding, extraction, normalisation and parsing.
        total = best_of(upload, runs=3)
        # CPU time of this process: on a shared machine it leaves out the time spent waiting
        # for a core, which wall time does not.
        cpu = best_of(upload, runs=5, clock=time.process_time)
        print(
            f"{label} of {size / 1024:.0f} KB: extract {extract * 1000:.1f} ms "
            f"({extract / lxml_only:.1f}× lxml parsing alone), extract + parse "
            f"{total * 1000:.1f} ms in process ({total / lxml_only:.1f}× lxml parsing alone), "
            f"{cpu * 1000:.1f} ms of CPU"
        )


def bench_corpus(show_failures: bool) -> int:
    """Print the corpus score; non-zero exit when a rendition could not be read."""
    sys.path.insert(0, str(REPO))
    from tests.policy.corpus import Score, run_corpus

    for group, score in run_corpus().items():
        print(f"{group:9s} corpus structure checks   {Score.ratio(score.structure)}")
        print(f"{group:9s} corpus department checks  {Score.ratio(score.departments)}")
        for note in score.skipped:
            print(f"skipped: {note}")
        if show_failures:
            for failure in score.failures:
                print(f"  FAIL {failure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print ingest and parse times of the seed and its renditions (or the chosen part)."""
    argv = list(argv or [])
    if "--corpus" in argv:
        return bench_corpus("--failures" in argv)
    if "--html" in argv:
        bench_html()
        return 0
    baseline = best_of(lambda: SEED.read_bytes().decode("utf-8"))
    source = ingest_file(SEED)
    parse_source(source)  # warm caches (registry, topic list, cn2an)
    for label, path in [("seed.txt", SEED), *((p.name, p) for p in sorted(FIXTURES.glob("seed*")))]:
        ingest = best_of(lambda p=path: ingest_file(p))
        src = ingest_file(path)
        parse = best_of(lambda s=src: parse_source(s))
        print(
            f"{label:22s} ingest {ingest * 1000:7.1f} ms  parse {parse * 1000:6.1f} ms  "
            f"(parse = {parse / baseline:8.0f}× reading the file)"
        )
    bench_html()
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
