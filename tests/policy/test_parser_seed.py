"""The seed (甘工信发〔2020〕351号) checked article by article."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from huiqi.policy.schemas import ParsedDocument

# Article numeral, title — transcribed from the seed. There is no (二十八) in the document.
TITLES = [
    ("一", "完善中小企业发展政策法规体系"),
    ("二", "全面实施市场准入负面清单制度"),
    ("三", "全面落实中小企业公平竞争审查制度"),
    ("四", "强化中小企业统计监测制度"),
    ("五", "完善中小企业信用评价体系"),
    ("六", "实施公平统一的市场监管制度"),
    ("七", "完善中小企业财政支持制度"),
    ("八", "进一步强化减轻小微企业税收负担长效机制"),
    ("九", "坚决落实好涉企收费目录清单制度"),
    ("十", "严格执行政府采购支持中小企业政策机制"),
    ("十一", "进一步优化货币信贷传导机制"),
    ("十二", "推动中小微企业普惠金融体系建设"),
    ("十三", "拓宽中小微企业融资渠道"),
    ("十四", "运用金融科技手段赋能小微企业金融服务"),
    ("十五", "进一步落实国家小微企业金融差异化监管机制"),
    ("十六", "落实金融企业绩效评价制度"),
    ("十七", "完善中小企业融资促进制度"),
    ("十八", "健全中小企业融资增信支持体系"),
    ("十九", "建立“政银企”新型合作机制"),
    ("二十", "进一步健全中小企业创业扶持制度"),
    ("二十一", "进一步健全中小企业创新支持制度"),
    ("二十二", "完善中小企业人才引进和培育制度"),
    ("二十三", "完善中小企业成长培育机制"),
    ("二十四", "健全支持中小企业“专精特新”发展机制"),
    ("二十五", "建立“瞪羚”企业和“独角兽”企业培育机制"),
    ("二十六", "健全大中小企业融通发展机制"),
    ("二十七", "构建以信息技术为主的新技术应用机制"),
    ("二十九", "进一步完善中小企业服务体系"),
    ("三十", "完善甘肃省涉企政策精准推送和“不来即享”服务系统工作机制"),
    ("三十一", "进一步健全中小企业管理提升机制"),
    ("三十二", "健全中小企业品牌培育机制"),
    ("三十三", "夯实中小企业国际交流合作机制"),
    ("三十四", "健全保护中小企业及企业家合法财产权制度"),
    ("三十五", "落实好国家清理和防止拖欠账款长效机制"),
    ("三十六", "健全中小企业知识产权保护制度"),
    ("三十七", "健全中小企业维权救济制度"),
    ("三十八", "分级建立促进中小企业发展推进机制"),
    ("三十九", "分类建立中小企业保障机制"),
    ("四十", "进一步完善中小企业政策保障机制"),
]
NUMBERS = [*range(1, 28), *range(29, 41)]

# Lead department and number of responsible departments per article, read off the notes.
LEADS = {
    1: ("省工信厅", 3), 2: ("省发展改革委", 3), 3: ("省市场监管局", 5), 4: ("省统计局", 2),
    5: ("省发展改革委", 4), 6: ("省市场监管局", 3), 7: ("省财政厅", 3), 8: ("省税务局", 1),
    9: ("省发展改革委", 7), 10: ("省财政厅", 1), 11: ("人行兰州中心支行", 3),
    12: ("甘肃银保监局", 3), 13: ("省金融监管局", 5), 14: ("人行兰州中心支行", 6),
    15: ("甘肃银保监局", 4), 16: ("省财政厅", 4), 17: ("省金融监管局", 4),
    18: ("省金融监管局", 6), 19: ("省发展改革委", 8), 20: ("省财政厅", 8), 21: ("省科技厅", 6),
    22: ("省人社厅", 6), 23: ("省工信厅", 5), 24: ("省工信厅", 2), 25: ("省科技厅", 7),
    26: ("省工信厅", 4), 27: ("省通信管理局", 5), 29: ("省工信厅", 6), 30: ("省工信厅", 6),
    31: ("省人社厅", 4), 32: ("省发展改革委", 9), 33: ("省市场监管局", 5),
    34: ("甘肃省高级人民法院", 6), 35: ("省财政厅", 6), 36: ("省市场监管局", 4),
    37: ("甘肃省检察院", 13), 38: ("省工信厅", 17), 39: ("省工信厅", 18), 40: ("省发展改革委", 17),
}  # fmt: skip
CITY_IMPLEMENTERS = ["各市州政府", "兰州新区管委会"]


def test_metadata(seed_doc: ParsedDocument) -> None:
    assert seed_doc.title == "关于进一步健全支持中小企业发展制度的实施意见"
    assert seed_doc.doc_number == "甘工信发〔2020〕351号"
    assert seed_doc.issued_on == dt.date(2020, 12, 18)
    assert seed_doc.published_on == dt.date(2021, 4, 27)
    assert seed_doc.source == "东乡县工信局"
    assert seed_doc.addressees == [
        "各市州人民政府",
        "兰州新区管委会",
        "各市州中级人民法院及各直属法院",
        "各市级人民检察院",
    ]
    assert seed_doc.cited_documents == ["工信部联企业〔2020〕108号"]
    assert seed_doc.style == "opinion"
    assert seed_doc.preamble.startswith("为深入贯彻落实党中央")
    assert seed_doc.unknown_departments == []


def test_sections(seed_doc: ParsedDocument) -> None:
    assert [(s.number, s.title) for s in seed_doc.sections] == [
        (1, "优化公平公正市场环境"),
        (2, "进一步完善中小企业财税支持制度"),
        (3, "进一步完善融资支持促进制度"),
        (4, "健全中小微企业创新创业发展制度"),
        (5, "优化中小企业公共服务体系"),
        (6, "进一步完善中小企业合法权益保护制度"),
        (7, "强化中小企业发展组织保障制度"),
    ]
    per_section = [[a.number for a in s.articles] for s in seed_doc.sections]
    assert per_section == [
        [1, 2, 3, 4, 5, 6],
        [7, 8, 9, 10],
        list(range(11, 20)),
        list(range(20, 28)),
        list(range(29, 34)),
        list(range(34, 38)),
        [38, 39, 40],
    ]


def test_all_39_articles_with_titles(seed_doc: ParsedDocument) -> None:
    articles = seed_doc.articles()
    assert [a.number for a in articles] == NUMBERS
    assert [(a.label, a.title) for a in articles] == [(f"({n})", t) for n, t in TITLES]


@pytest.mark.parametrize("number", NUMBERS)
def test_article_boundaries_and_departments(seed_doc: ParsedDocument, number: int) -> None:
    article = seed_doc.article(number)
    assert article is not None
    lead, count = LEADS[number]
    assert article.departments[0] == lead
    assert len(article.departments) == count
    assert all(ref.known for ref in article.department_refs)
    assert article.department_refs[0].role == "lead"
    # Every article ends with its own responsibility note and holds no other article's marker.
    assert article.text.endswith(")")
    assert article.responsibility_note and article.text.endswith(article.responsibility_note)
    assert "(二十" not in article.text and "七、强化" not in article.text
    if number == 39:
        assert article.implementers == []
    elif number == 34:
        assert article.implementers == [
            *CITY_IMPLEMENTERS,
            "各市级中级人民法院",
            "各市级人民检察院",
        ]
    elif number == 37:
        assert article.implementers == [*CITY_IMPLEMENTERS, "各市级人民检察院"]
    else:
        assert article.implementers == CITY_IMPLEMENTERS


def test_glued_articles_recovered_and_reported(seed_doc: ParsedDocument) -> None:
    a26, a27, a37 = seed_doc.article(26), seed_doc.article(27), seed_doc.article(37)
    assert a26 and a27 and a37
    assert a26.text.endswith("兰州新区管委会组织实施)")
    assert a27.title == "构建以信息技术为主的新技术应用机制"
    assert a27.text.startswith("加快推动5G网络部署")
    assert a27.departments[:2] == ["省通信管理局", "省工信厅"]
    assert seed_doc.article(28) is None
    assert a37.text.endswith("各市级人民检察院组织实施)")
    assert seed_doc.sections[6].title == "强化中小企业发展组织保障制度"
    warnings = "\n".join(seed_doc.warnings)
    assert "numbering gap" in warnings and "(二十八)" in warnings
    assert "(二十七) was glued" in warnings
    assert "section 七、" in warnings


def test_departments_normalised_from_typos(seed_doc: ParsedDocument) -> None:
    article = seed_doc.article(40)
    assert article is not None
    refs = {r.as_written: r for r in article.department_refs}
    assert refs["省省生态环境厅"].name == "省生态环境厅"
    assert refs["农业农村厅"].name == "省农业农村厅"
    assert refs["省工信厅"].full_name == "甘肃省工业和信息化厅"
    article35 = seed_doc.article(35)
    assert article35 is not None and article35.departments[-1] == "省审计厅"
    assert article35.departments == [
        "省财政厅",
        "省政府国资委",
        "省发展改革委",
        "省工信厅",
        "省市场监管局",
        "省审计厅",
    ]


def test_first_article_note(seed_doc: ParsedDocument) -> None:
    article = seed_doc.article(1)
    assert article is not None
    assert article.departments == ["省工信厅", "省司法厅", "省发展改革委"]
    assert article.text.startswith("严格落实《中华人民共和国中小企业促进法》")


def _q(doc: ParsedDocument, number: int) -> list[tuple[str, Decimal, Decimal | None, str, str]]:
    article = doc.article(number)
    assert article is not None
    return [(q.text, q.value, q.value_max, q.unit, q.op) for q in article.quantities]


def test_quantities(seed_doc: ParsedDocument) -> None:
    assert _q(seed_doc, 10) == [
        ("30%以上", Decimal(30), None, "%", ">="),
        ("不低于60%", Decimal(60), None, "%", ">="),
    ]
    assert _q(seed_doc, 13) == [("1000亿元", Decimal(1000), None, "亿元", "=")]
    assert _q(seed_doc, 16) == [("提升至10%以上", Decimal(10), None, "%", ">=")]
    assert _q(seed_doc, 18) == [("降至1.5%以下", Decimal("1.5"), None, "%", "<=")]
    assert _q(seed_doc, 22) == [
        ("2年内", Decimal(2), None, "年", "<="),
        ("1年以上", Decimal(1), None, "年", ">="),
    ]
    assert _q(seed_doc, 36) == [("10—15家", Decimal(10), Decimal(15), "家", "range")]
    a10 = seed_doc.article(10)
    assert a10 is not None and a10.quantities[0].sentence.startswith(
        "按照《政府采购促进中小企业发展暂行办法》"
    )
    # Dates, 5G, 17部委 and the 12348 hotline are not commitments.
    quantified = {a.number for a in seed_doc.articles() if a.quantities}
    assert quantified == {10, 13, 16, 18, 22, 36}


def test_topics(seed_doc: ParsedDocument) -> None:
    topics = {a.number: a.topics for a in seed_doc.articles()}
    assert "procurement" in topics[10]
    assert "finance" in topics[18]
    assert "tax_fees" in topics[8]
    assert "talent" in topics[22]
    assert "innovation" in topics[24]
    assert "rights" in topics[35]
    assert "services" in topics[30]
