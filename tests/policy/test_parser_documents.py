"""Documents other than the seed: the two regulations and realistic documents of other shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from huiqi.policy.parser import cn_number, find_doc_numbers, parse_date, parse_text
from tests.policy.conftest import FIXTURES, REFERENCE, parse_path


def test_regulation_2020_without_chapters() -> None:
    doc = parse_path(REFERENCE / "sme-payment-regulation-2020.txt")
    assert doc.title == "保障中小企业款项支付条例"
    assert doc.style == "regulation"
    assert [s.number for s in doc.sections] == [0]
    articles = doc.articles()
    assert [a.number for a in articles] == list(range(1, 30))
    assert articles[0].label == "第一条" and articles[0].title == ""
    assert articles[0].text.startswith("为了促进机关、事业单位和大型企业及时支付中小企业款项")
    assert articles[-1].text == "本条例自2020年9月1日起施行。"
    a8 = doc.article(8)
    assert a8 is not None
    assert [(q.text, q.value, q.unit, q.op) for q in a8.quantities] == [
        ("30日内", Decimal(30), "日", "<="),
        ("最长不得超过60日", Decimal(60), "日", "<="),
    ]
    a15 = doc.article(15)
    assert a15 is not None and a15.quantities[0].value == Decimal("0.05")
    # (一)… enumerations inside 第二十五条 stay in that article.
    a25 = doc.article(25)
    assert a25 is not None and "(八)对投诉人进行恐吓、打击报复。" in a25.text
    assert doc.warnings == []


def test_regulation_2025_with_chapters() -> None:
    doc = parse_path(REFERENCE / "sme-payment-regulation-2025.txt")
    assert [(s.number, s.label, s.title) for s in doc.sections] == [
        (1, "第一章", "总则"),
        (2, "第二章", "款项支付规定"),
        (3, "第三章", "监督管理"),
        (4, "第四章", "法律责任"),
        (5, "第五章", "附则"),
    ]
    assert [a.number for a in doc.articles()] == list(range(1, 38))
    assert [a.number for a in doc.sections[1].articles] == list(range(8, 21))
    assert doc.doc_number == "国务院令第802号"
    assert doc.issued_on == dt.date(2025, 3, 17)
    a25 = doc.article(25)
    assert a25 is not None
    assert ("10个工作日内", Decimal(10), "工作日", "<=") in [
        (q.text, q.value, q.unit, q.op) for q in a25.quantities
    ]


def test_other_province_opinion() -> None:
    doc = parse_path(FIXTURES / "other_province_opinion.txt")
    assert doc.doc_number == "苏工信中小〔2022〕118号"
    assert doc.province == "江苏省"
    assert doc.issuer == "江苏省工业和信息化厅"
    assert doc.issued_on == dt.date(2022, 6, 20)
    assert doc.cited_documents == ["国办发〔2021〕45号"]
    assert [a.number for a in doc.articles()] == [1, 2, 3, 4, 5]
    a1 = doc.article(1)
    assert a1 is not None
    assert a1.title == "设立纾困专项资金"
    assert a1.text.startswith("省级财政安排专项资金")
    assert a1.departments == ["省财政厅", "省工业和信息化厅"]
    assert [r.role for r in a1.department_refs] == ["lead", "cooperating"]
    assert a1.implementers == ["各设区市人民政府"]
    # Another province's 省财政厅 is not Gansu's: it is Jiangsu's, by the provincial pattern.
    assert a1.department_refs[0].known
    assert a1.department_refs[0].full_name == "江苏省财政厅"
    assert a1.department_refs[1].full_name == "江苏省工业和信息化厅"
    assert doc.jurisdiction == "provincial"
    a3 = doc.article(3)
    assert a3 is not None
    assert [r.full_name for r in a3.department_refs] == [
        "江苏省地方金融监督管理局",
        None,
        "中国银行保险监督管理委员会江苏监管局",
    ]
    # The regional central-bank branch is not in any registry: kept as written and flagged.
    assert doc.unknown_departments == ["人民银行南京分行"]
    assert any("not in the registry" in w for w in doc.warnings)
    a2 = doc.article(2)
    assert a2 is not None
    assert [(q.value, q.op) for q in a2.quantities] == [(Decimal(40), ">="), (Decimal(70), ">=")]
    a4 = doc.article(4)
    assert a4 is not None and a4.title == "降低融资担保费率"
    assert [(q.unit, q.op) for q in a4.quantities] == [("%", "<="), ("工作日", "<=")]


def test_measures_with_chapters_glued_article_and_enumeration() -> None:
    doc = parse_path(FIXTURES / "fund_measures.txt")
    assert doc.style == "regulation"
    assert doc.doc_number == "甘财企〔2022〕35号"
    assert doc.issuer == "甘肃省财政厅"
    assert [s.title for s in doc.sections] == ["总则", "支持范围和标准", "申报和审核", "附则"]
    assert [a.number for a in doc.articles()] == list(range(1, 10))
    a3, a4, a5 = doc.article(3), doc.article(4), doc.article(5)
    assert a3 and a4 and a5
    assert "(三)中小企业融资担保降费奖补。" in a3.text
    assert a4.text.endswith("给予一次性奖励不超过30万元。")
    assert a5.text.startswith("对政府性融资担保机构开展的小微企业融资担保业务")
    assert any("第五条 was glued" in w for w in doc.warnings)
    assert [(q.text, q.op) for q in a4.quantities] == [("100万元", "="), ("不超过30万元", "<=")]


def test_notice_with_items_only() -> None:
    doc = parse_path(FIXTURES / "notice.txt")
    assert doc.style == "notice"
    assert [s.number for s in doc.sections] == [0]
    assert [(a.number, a.label, a.title) for a in doc.articles()] == [
        (1, "一、", "申报条件"),
        (2, "二、", "申报程序"),
        (3, "三、", "工作要求"),
    ]
    a3 = doc.article(3)
    assert a3 is not None and "联系人" not in a3.text and "附件" not in a3.text
    assert doc.issuer == "甘肃省工业和信息化厅"
    assert doc.issued_on == dt.date(2023, 4, 10)
    a1 = doc.article(1)
    assert a1 is not None
    assert [(q.value, q.unit, q.op) for q in a1.quantities] == [
        (Decimal(2), "年", ">="),
        (Decimal(100), "万元", ">="),
        (Decimal(3), "%", ">="),
    ]


def test_unstructured_document_is_one_article_with_warning() -> None:
    doc = parse_path(FIXTURES / "plain.txt")
    assert doc.title == "关于调整办公地点的公告"
    assert len(doc.articles()) == 1
    assert doc.articles()[0].text.startswith("因工作需要")
    assert any("no recognisable structure" in w for w in doc.warnings)


def test_duplicate_and_out_of_order_numbers_are_warned_not_merged() -> None:
    doc = parse_text("一、总则\n(一)甲\n正文一。\n(三)丙\n正文三。\n(二)乙\n正文二。\n")
    assert [a.number for a in doc.articles()] == [1, 3, 2]
    assert any("gap" in w and "(二)" in w for w in doc.warnings)
    assert any("out of order" in w for w in doc.warnings)


def test_articles_restarting_in_each_section() -> None:
    doc = parse_text("一、甲\n(一)子一\n内容。\n(二)子二\n内容。\n二、乙\n(一)子三\n内容。\n")
    assert [[a.number for a in s.articles] for s in doc.sections] == [[1, 2], [1]]
    assert not any("out of order" in w for w in doc.warnings)


def test_labelled_page_metadata() -> None:
    text = (
        "索引号:000014349/2022-00001\n发文机关:甘肃省人民政府办公厅\n发文字号:甘政办发〔2022〕12号\n"
        "成文日期:2022年02月08日\n发布日期:2022-02-10\n"
        "甘肃省人民政府办公厅关于印发支持中小企业发展若干措施的通知\n"
        "一、加大支持。对企业给予奖励。\n二、优化服务。提升效率。\n"
    )
    doc = parse_text(text)
    assert doc.issuer == "甘肃省人民政府办公厅"
    assert doc.doc_number == "甘政办发〔2022〕12号"
    assert doc.issued_on == dt.date(2022, 2, 8)
    assert doc.published_on == dt.date(2022, 2, 10)
    assert doc.title == "甘肃省人民政府办公厅关于印发支持中小企业发展若干措施的通知"


def test_helpers() -> None:
    assert cn_number("二十七") == 27 and cn_number("四十") == 40 and cn_number("12") == 12
    assert parse_date("二〇二二年六月二十日") == dt.date(2022, 6, 20)
    assert parse_date("日期:2021-04-27") == dt.date(2021, 4, 27)
    assert parse_date("2021年2月30日") is None
    assert find_doc_numbers("根据国办发〔2021〕45号和财库[2020]46号文件") == [
        "国办发〔2021〕45号",
        "财库〔2020〕46号",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("一二三十、()第条章。;,\n 甲乙省工信厅负责组织实施0123%年家")
        ),
        max_size=400,
    )
)
def test_parser_never_crashes(text: str) -> None:
    doc = parse_text(text)
    assert all(a.number >= 0 for a in doc.articles())
