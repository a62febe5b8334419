"""款 of a law's articles, ruled tables in PDFs, Big5 files, and the regression corpus score."""

from __future__ import annotations

import csv
from pathlib import Path

from huiqi.policy.ingest import PARAGRAPH_BREAK, ingest_bytes, ingest_file, reflow_pdf_lines
from huiqi.policy.parser import parse_source, parse_text
from tests.policy.corpus import run_corpus
from tests.policy.renditions import write_pdf_table

CORPUS = Path(__file__).resolve().parents[1] / "data" / "policy" / "corpus"
LAW = CORPUS / "fanbuzhengdang-jingzheng-fa.txt"


def test_law_articles_have_their_clauses_and_items_stand_in_one() -> None:
    doc = parse_text(LAW.read_text("utf-8"))
    assert doc.levels == ["第X章", "第X条", "款", "(一)"]
    article = doc.article(9)
    assert article is not None and len(article.clauses) == 4
    assert article.clauses[0].startswith("第九条") is False  # the marker is not part of the text
    assert article.clauses[0].endswith("使用权利人的商业秘密。")
    assert (
        article.clauses[1]
        == "经营者以外的其他自然人、法人和非法人组织实施前款所列违法行为的,视为侵犯商业秘密。"
    )
    assert {item.clause for item in article.items} == {1}
    # 第十二条: the items stand in the second 款, and the article's last item ends the article.
    twelve = doc.article(12)
    assert twelve is not None and [i.clause for i in twelve.items] == [2, 2, 2, 2]
    assert twelve.items[-1].text.endswith("正常运行的行为。")
    assert doc.issued_on.isoformat() == "2019-04-23"  # type: ignore[union-attr]


def test_a_paragraph_after_the_items_is_a_new_clause_not_part_of_the_last_item() -> None:
    doc = parse_text(
        "某某条例\n第一条 经营者不得有下列行为：\n（一）甲；\n（二）乙。\n违反前款规定的，依法处理。\n"
        "第二条 本条例自2024年1月1日起施行。\n"
    )
    first = doc.article(1)
    assert first is not None and len(first.clauses) == 2
    assert first.items[-1].text == "乙。"
    assert first.clauses[1] == "违反前款规定的,依法处理。"


def test_pdf_paragraph_breaks_stop_the_reflow() -> None:
    wrapped = "第一条 这一行写满了整个版心的宽度所以它会和下一行接起来呀呀呀呀"
    text = "\n".join([wrapped, "接着的一行。", PARAGRAPH_BREAK, "新的一段。"] * 4)
    lines = reflow_pdf_lines(text).split("\n")
    assert lines[:2] == [wrapped + "接着的一行。", "新的一段。"]


def test_pdf_task_table_becomes_the_task_breakdown() -> None:
    source = ingest_file(CORPUS / "renditions" / "zhejiang-ai-renwu.pdf")
    doc = parse_source(source)
    assert doc.task_level == "table" and len(doc.tasks) == 20  # the table runs over two pages
    assert doc.sections == [] or all(not s.label for s in doc.sections)
    task = doc.tasks[7]
    assert task.label == "8"
    assert [r.full_name for r in task.lead] == ["浙江省经济和信息化厅", "浙江省科学技术厅"]
    assert [r.full_name for r in task.support] == ["浙江省发展和改革委员会"]
    assert task.deadline == "持续推进"


def test_pdf_table_header_repeated_on_the_next_page_is_not_a_task(tmp_path: Path) -> None:
    # Word and WPS print a long table's header row again at the top of every page; the rows of
    # the 浙江 task list, printed so, run over three pages.
    with (CORPUS / "zhejiang-ai-renwu.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    path = tmp_path / "repeated-header.pdf"
    heading = ["浙江省人工智能高质量发展重点任务分工", "附件", "重点任务分工表"]
    write_pdf_table(heading, rows, path, [30, 110, 330, 110, 150, 70], repeat_rows=1)
    doc = parse_source(ingest_file(path))
    assert doc.task_level == "table"
    assert [t.label for t in doc.tasks] == [str(n) for n in range(1, 21)]
    header = rows[0]
    assert all(t.title != header[1] and t.label != header[0] for t in doc.tasks)
    (table,) = [t for t in doc.tables if t.task_table]
    assert [row[0] for row in table.rows] == [header[0], *(str(n) for n in range(1, 21))]
    # The same tasks, departments and deadlines as the same table printed with one header.
    once = parse_source(ingest_file(CORPUS / "renditions" / "zhejiang-ai-renwu.pdf"))
    assert [t.model_dump() for t in doc.tasks] == [t.model_dump() for t in once.tasks]


def test_big5_file_in_traditional_characters_parses() -> None:
    text = (
        "關於支持中小企業發展的意見\n一、加大支持\n（一）設立專項資金。安排資金，支持企業創新發展。"
        "（省財政廳負責）\n（二）優化服務。開展培訓，提升企業經營管理水準。（省工業和信息化廳負責）\n"
    )
    source = ingest_bytes(text.encode("big5"), "big5.txt")
    assert source.encoding == "big5"
    doc = parse_source(source)
    assert doc.title == "关于支持中小企业发展的意见"
    assert [a.departments for a in doc.articles()] == [["省财政厅"], ["省工信厅"]]
    assert "繁体" in doc.warnings[0]


def test_simplified_gbk_is_not_read_as_big5() -> None:
    source = ingest_bytes(
        "关于支持中小企业发展的通知\n一、加大财政支持力度。\n".encode("gbk"), "a.txt"
    )
    assert source.encoding == "gb18030" and "加大财政支持力度" in source.text


def test_corpus_in_sample_is_exact_and_held_out_meets_the_targets() -> None:
    scores = run_corpus()
    in_sample, held_out = scores["in-sample"], scores["held-out"]
    assert not in_sample.skipped and not held_out.skipped
    assert in_sample.failures == []
    if held_out.structure:
        assert sum(held_out.structure) >= 0.98 * len(held_out.structure), held_out.failures
    if held_out.departments:
        assert sum(held_out.departments) >= 0.95 * len(held_out.departments), held_out.failures


def test_regulation_with_more_items_than_articles_is_still_a_regulation() -> None:
    items = "".join(f"（{n}）第{n}项。\n" for n in "一二三四五")
    doc = parse_text(
        f"某某规定\n第一条 为了规范，制定本规定。\n第二条 支持下列项目：\n{items}"
        f"第三条 做好下列工作：\n{items}第四条 本规定自2024年1月1日起施行。\n"
    )
    assert doc.style == "regulation"
    assert [a.label for a in doc.articles()] == ["第一条", "第二条", "第三条", "第四条"]
    assert [len(a.items) for a in doc.articles()] == [0, 5, 5, 0]
