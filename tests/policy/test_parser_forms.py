"""Numbering levels, responsibility notes in their many forms, page metadata, dated departments."""

from __future__ import annotations

import datetime as dt

from huiqi.policy.departments import default_registry
from huiqi.policy.ingest import ingest_bytes
from huiqi.policy.parser import parse_note, parse_source, parse_text, split_addressees
from huiqi.policy.schemas import ParsedDocument, TaskOut


def _task(doc: ParsedDocument, path: str) -> TaskOut:
    return next(t for t in doc.tasks if "/".join(t.path) == path)


def _names(refs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.full_name or r.name for r in refs]


PROVINCIAL = """广东省人民政府办公厅关于促进中小企业发展的若干措施
粤府办〔2024〕9号
各地级以上市人民政府，省政府各部门、各直属机构：
一、加大财税支持（省财政厅牵头，下同）
（一）落实税费优惠。
1.落实减税降费政策。全面落实小微企业减免税政策。
2.优化退税服务。压缩办理时间。（省税务局负责，省财政厅配合）
（二）加强融资服务。（负责部门：省地方金融监管局；适用范围：全省）
1.扩大信贷投放。引导银行机构加大投放。
2.降低融资成本。推动利率下行。（人民银行广东省分行牵头，广东金融监管局、省工业和信息化厅按职责分工负责；各地级以上市人民政府组织实施）
二、优化公共服务
（三）提升服务效能。建设服务平台。（省工业和信息化厅会同有关部门负责）
（四）加强人才支撑。开展培训。（省人力资源社会保障厅、省教育厅、省科技厅负责，列第一位者为牵头单位）
（五）强化监测。开展运行监测。
本措施自2024年3月1日起施行。
广东省人民政府办公厅
2024年1月15日
"""


def test_items_paths_and_task_level() -> None:
    doc = parse_text(PROVINCIAL)
    assert doc.levels == ["一、", "(一)", "1."]
    # Notes stand on items and on articles without items: the leaves are the tasks.
    assert doc.task_level == "leaves"
    assert ["/".join(t.path) for t in doc.tasks] == [
        "一、/(一)/1.",
        "一、/(一)/2.",
        "一、/(二)/1.",
        "一、/(二)/2.",
        "二、/(三)",
        "二、/(四)",
        "二、/(五)",
    ]
    art = doc.sections[0].articles[0]
    assert [i.path for i in art.items] == [["一、", "(一)", "1."], ["一、", "(一)", "2."]]
    assert art.items[0].title == "落实减税降费政策"
    # Items restart under every article.
    assert [i.label for i in doc.sections[0].articles[1].items] == ["1.", "2."]
    # The article's text keeps its items; each item has only its own.
    assert "优化退税服务" in art.text and "优化退税服务" not in art.items[0].text


def test_note_forms_and_group_notes() -> None:
    doc = parse_text(PROVINCIAL)
    assert doc.jurisdiction == "provincial" and doc.province == "广东省"
    # A section's note (and its 下同) applies to the items that have none.
    t1 = _task(doc, "一、/(一)/1.")
    assert _names(t1.lead) == ["广东省财政厅"] and t1.source == "inherited"
    t2 = _task(doc, "一、/(一)/2.")
    assert _names(t2.lead) == ["国家税务总局广东省税务局"]
    assert _names(t2.support) == ["广东省财政厅"]
    # 负责部门：X；适用范围：… — the label is no department and the scope none either.
    t3 = _task(doc, "一、/(二)/1.")
    assert _names(t3.lead) == ["广东省地方金融监督管理局"] and t3.support == []
    t4 = _task(doc, "一、/(二)/2.")
    assert _names(t4.lead) == ["中国人民银行广东省分行"]
    assert _names(t4.support) == ["国家金融监督管理总局广东监管局", "广东省工业和信息化厅"]
    assert t4.implementers == ["各地级以上市人民政府"]
    assert doc.unknown_departments == []
    assert not any("下同" in w or "列第一位" in w for w in doc.warnings)


def test_article_level_notes_会同_and_first_listed_leads() -> None:
    doc = parse_text(PROVINCIAL, task_level="(一)")
    assert doc.task_level == "(一)"
    t3 = _task(doc, "二、/(三)")
    assert _names(t3.lead) == ["广东省工业和信息化厅"] and t3.support == []
    t4 = _task(doc, "二、/(四)")
    assert _names(t4.lead) == ["广东省人力资源和社会保障厅"]
    assert _names(t4.support) == ["广东省教育厅", "广东省科学技术厅"]
    assert _task(doc, "二、/(五)").lead == []


def test_metadata_dates_and_closing() -> None:
    doc = parse_text(PROVINCIAL)
    assert doc.doc_number == "粤府办〔2024〕9号"
    assert doc.issuers == ["广东省人民政府办公厅"]
    assert doc.issued_on == dt.date(2024, 1, 15)
    assert doc.effective_on == dt.date(2024, 3, 1)
    assert doc.metadata_sources["issued_on"] == "signature"
    assert doc.metadata_sources["effective_on"] == "body"
    # The closing paragraph belongs to no item; the signature to none either.
    last = doc.sections[-1].articles[-1]
    assert last.text == "开展运行监测。"
    assert doc.closing.startswith("本措施自2024年3月1日起施行")
    assert doc.addressees == ["各地级以上市人民政府", "省政府各部门", "各直属机构"]


def test_parse_note_forms() -> None:
    note = parse_note("省发展改革委牵头，省财政厅、省商务厅配合；各市州政府组织实施")
    assert note.lead == [("省发展改革委", "lead")]
    assert [n for n, _ in note.support] == ["省财政厅", "省商务厅"]
    assert note.implementers == ["各市州政府"]
    note = parse_note("省工业和信息化厅、科技厅、政务和数据局等单位按职责分工负责")
    assert [n for n, _ in note.lead] == ["省工业和信息化厅"]
    assert note.hints == {"科技厅": "省科技厅", "政务和数据局": "省政务和数据局"}
    note = parse_note("省科技厅负责，下同")
    assert note.same_below and note.lead == [("省科技厅", "lead")]
    assert parse_note("各有关单位按职责分工负责").lead == []


def test_addressee_groups() -> None:
    assert split_addressees("各省、自治区、直辖市人民政府，国务院各部委、各直属机构") == [
        "各省、自治区、直辖市人民政府",
        "国务院各部委",
        "各直属机构",
    ]
    assert split_addressees("黑龙江省人民政府，教育部、外交部、财政部、体育总局") == [
        "黑龙江省人民政府",
        "教育部",
        "外交部",
        "财政部",
        "体育总局",
    ]


CENTRAL = """国务院办公厅关于进一步支持小微企业融资的通知
国办发〔2019〕6号
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
一、加大信贷投放。引导银行增加投放。（银保监会、人民银行负责）
二、完善考核。落实尽职免责。（财政部、发展改革委按职责分工负责）
国务院办公厅
2019年2月14日
"""


def test_central_document_resolves_central_bodies_by_date() -> None:
    doc = parse_text(CENTRAL)
    assert doc.jurisdiction == "central" and doc.province is None
    assert doc.issuers == ["国务院办公厅"]
    t1, t2 = doc.tasks
    assert _names(t1.lead) == ["中国银行保险监督管理委员会"]
    assert _names(t1.support) == ["中国人民银行"]
    # 发展改革委 in a State Council document is the national commission, not Gansu's.
    assert _names(t2.support) == ["国家发展和改革委员会"]
    assert doc.unknown_departments == []
    # The same note in a 2024 document: 银保监会 had become 国家金融监督管理总局.
    later = parse_text(CENTRAL.replace("2019年2月14日", "2024年2月14日"))
    assert _names(later.tasks[0].lead) == ["国家金融监督管理总局"]
    assert any("银保监会 no longer existed" in w for w in later.warnings)


def test_registry_dates_renamed_bodies() -> None:
    registry = default_registry()
    on = dt.date
    assert registry.resolve("银监会", level="central", on=on(2016, 5, 1)).full_name == (
        "中国银行业监督管理委员会"
    )
    assert registry.resolve("银保监会", level="central", on=on(2019, 1, 1)).full_name == (
        "中国银行保险监督管理委员会"
    )
    assert registry.resolve("金融监管总局", level="central", on=on(2024, 1, 1)).full_name == (
        "国家金融监督管理总局"
    )
    assert registry.resolve("建设部", level="central", on=on(2004, 10, 15)).full_name == (
        "中华人民共和国建设部"
    )
    jiangsu = registry.resolve("江苏银保监局", province="江苏省", on=on(2022, 6, 20))
    assert jiangsu.full_name == "中国银行保险监督管理委员会江苏监管局"
    assert registry.resolve("省工信厅", province="甘肃省").full_name == "甘肃省工业和信息化厅"


def test_page_labels_with_the_value_on_the_next_line() -> None:
    page = (
        "<html><body><div>发布日期：</div><div>2018-12-24</div><div>主题词：</div><div>通知</div>"
        "<div>分类：</div><div>国防</div><div>浏览量：</div><div>1536</div>"
        "<h1>国务院办公厅关于加强调查工作的通知</h1><p>国办发〔1996〕25号</p>"
        "<p>各省、自治区、直辖市人民政府：</p><p>一、做好调查。</p><p>二、加强管理。</p>"
        "<p>国务院办公厅　中央军委办公厅</p><p>一九九六年六月二十九日</p></body></html>"
    )
    doc = parse_source(ingest_bytes(page.encode(), "page.html"))
    assert doc.published_on == dt.date(2018, 12, 24)
    assert doc.title == "国务院办公厅关于加强调查工作的通知"
    assert doc.addressees == ["各省、自治区、直辖市人民政府"]
    assert doc.issuers == ["国务院办公厅", "中央军委办公厅"]
    assert doc.issued_on == dt.date(1996, 6, 29)
    assert doc.cited_documents == []
    assert [a.label for a in doc.articles()] == ["一、", "二、"]


def test_task_table_becomes_the_breakdown_and_no_section() -> None:
    page = (
        "<html><body><h1>浙江省某某行动重点任务分工</h1><table>"
        "<tr><td colspan='4'>重点任务分工表</td></tr>"
        "<tr><th>序号</th><th>重点任务</th><th>牵头单位</th><th>配合单位</th><th>完成时限</th></tr>"
        "<tr><td>1</td><td>建设算力平台</td><td>省发展改革委</td><td>省经信厅、杭州市政府</td><td>2026年6月</td></tr>"
        "<tr><td>2</td><td>一、培育数据企业</td><td>省数据局</td><td>无</td><td>持续推进</td></tr>"
        "</table></body></html>"
    )
    doc = parse_source(ingest_bytes(page.encode(), "table.html"))
    assert doc.task_level == "table"
    assert [t.label for t in doc.tasks] == ["1", "2"]
    assert _names(doc.tasks[0].lead) == ["浙江省发展和改革委员会"]
    assert _names(doc.tasks[0].support) == ["浙江省经济和信息化厅", "杭州市人民政府"]
    assert doc.tasks[1].support == [] and doc.tasks[1].deadline == "持续推进"
    # A cell starting with 一、 opens no section.
    assert all(not s.label for s in doc.sections)
    assert doc.tables[0].task_table and doc.tables[0].rows[1][0] == "序号"
    assert not any("no recognisable structure" in w for w in doc.warnings)


def test_task_table_header_repeated_inside_the_table_is_not_a_task() -> None:
    # A table copied from a Word file whose header row repeats on every printed page.
    header = (
        "<tr><th>序号</th><th>重点任务</th><th>牵头单位</th><th>配合单位</th><th>完成时限</th></tr>"
    )
    page = (
        f"<html><body><h1>浙江省某某行动重点任务分工</h1><table>{header}"
        "<tr><td>1</td><td>建设算力平台</td><td>省发展改革委</td><td>省经信厅</td><td>2026年6月</td></tr>"
        f"{header}"
        "<tr><td>2</td><td>培育数据企业</td><td>省数据局</td><td>无</td><td>持续推进</td></tr>"
        "</table></body></html>"
    )
    doc = parse_source(ingest_bytes(page.encode(), "table.html"))
    assert [t.label for t in doc.tasks] == ["1", "2"]
    assert _names(doc.tasks[1].lead) == ["浙江省数据局"]
    assert doc.unknown_departments == []


def test_other_tables_stay_tables_in_the_article_text() -> None:
    page = (
        "<html><body><h1>关于公布补助标准的通知</h1><p>一、补助标准如下。</p><table>"
        "<tr><td>类别</td><td>标准</td></tr><tr><td>(一)小型企业</td><td>10万元</td></tr>"
        "</table><p>二、申报时间为每年3月。</p></body></html>"
    )
    doc = parse_source(ingest_bytes(page.encode(), "table.html"))
    assert [a.label for a in doc.articles()] == ["一、", "二、"]
    a1 = doc.articles()[0]
    assert "(一)小型企业 | 10万元" in a1.text and a1.items == []
    assert not doc.tables[0].task_table


def test_traditional_characters_parse() -> None:
    text = (
        "關於支持中小企業發展的意見\n一、加大支持\n（一）設立專項資金。安排資金。（省財政廳負責）\n"
        "（二）優化服務。開展培訓。（省工業和信息化廳負責）\n"
    )
    doc = parse_text(text)
    assert doc.title == "关于支持中小企业发展的意见"
    assert doc.articles()[0].title == "设立专项资金"
    assert doc.articles()[0].departments == ["省财政厅"]
    assert "繁体" in doc.warnings[0]


def test_mixed_encodings_are_decoded_line_by_line_with_a_note() -> None:
    data = (
        "关于支持中小企业发展的通知\n".encode()
        + "一、加大财政支持力度。\n".encode("gbk")
        + "二、优化服务。\n".encode()
    )
    source = ingest_bytes(data, "mixed.txt")
    assert source.encoding == "mixed"
    assert "一、加大财政支持力度。" in source.text
    assert source.notes and "2" in source.notes[0] and "GB18030" in source.notes[0]
    doc = parse_source(source)
    assert [a.label for a in doc.articles()] == ["一、", "二、"]
    assert any("GB18030" in w for w in doc.warnings)


CITY = """兰州市人民政府办公室关于印发兰州市支持中小企业发展若干措施的通知
兰政办发〔2023〕15号
各县区人民政府，市政府各部门：
现将《兰州市支持中小企业发展若干措施》印发给你们，请认真贯彻落实。
兰州市人民政府办公室
2023年3月1日
兰州市支持中小企业发展若干措施
1.加大财政支持。对首次升规的工业企业给予奖励。（市财政局牵头，市工信局配合）
（1）奖励标准为每户10万元。
（2）同一企业只奖励一次。
2.优化政务服务。推行“一网通办”。（市政务服务中心负责）
3.强化融资支持。扩大信贷投放。（市地方金融监管局会同人民银行兰州中心支行负责；各县区人民政府组织实施）
本措施自印发之日起施行。
"""


def test_city_numbered_measures() -> None:
    doc = parse_text(CITY)
    assert doc.jurisdiction == "municipal"
    assert doc.style == "numbered" and doc.levels == ["1.", "(1)"]
    assert [a.label for a in doc.articles()] == ["1.", "2.", "3."]
    assert [i.path for i in doc.articles()[0].items] == [["1.", "(1)"], ["1.", "(2)"]]
    assert doc.issuers == ["兰州市人民政府办公室"]
    assert doc.issued_on == doc.effective_on == dt.date(2023, 3, 1)
    assert doc.closing == "本措施自印发之日起施行。"
    t1, t2, t3 = doc.tasks
    assert _names(t1.lead) == ["兰州市财政局"]
    assert _names(t1.support) == ["兰州市工业和信息化局"]
    assert _names(t2.lead) == ["兰州市政务服务中心"]
    # X会同Y: X leads, Y supports.
    assert _names(t3.lead) == ["兰州市地方金融监督管理局"]
    assert _names(t3.support) == ["中国人民银行兰州中心支行"]
    assert t3.implementers == ["各县区人民政府"]
    assert doc.unknown_departments == []


def test_regulation_parts_sections_and_items_in_paths() -> None:
    text = (
        "某某条例\n第一编 总则\n第一章 一般规定\n第一条 为了规范，制定本条例。\n第二条 本条例适用于本省。\n"
        "第二编 分则\n第二章 管理\n第一节 登记\n第三条 应当登记。\n第四条 登记包括：\n（一）名称；\n（二）住所。\n"
        "第二节 监督\n第五条 加强监督。\n第三章 附则\n第六条 本条例自2024年1月1日起施行。\n"
    )
    doc = parse_text(text)
    assert doc.levels == ["第X编", "第X章", "第X节", "第X条", "(一)"]
    paths = [a.path for a in doc.articles()]
    assert paths[0] == ["第一编", "第一章", "第一条"]
    assert paths[2] == ["第二编", "第二章", "第一节", "第三条"]
    assert paths[4] == ["第二编", "第二章", "第二节", "第五条"]
    assert paths[5] == ["第二编", "第三章", "第六条"]
    assert [i.path for i in doc.articles()[3].items] == [
        ["第二编", "第二章", "第一节", "第四条", "(一)"],
        ["第二编", "第二章", "第一节", "第四条", "(二)"],
    ]
    assert doc.effective_on == dt.date(2024, 1, 1)


def test_article_numbers_in_the_thousands_and_the_national_congress_as_issuer() -> None:
    # The Civil Code numbers its articles past one thousand (第一千零四十条) and was adopted by
    # the National People's Congress itself, not its standing committee.
    text = (
        "中华人民共和国民法典\n（2020年5月28日第十三届全国人民代表大会第三次会议通过）\n"
        "第五编　婚姻家庭\n第三章　家庭关系\n第一节　夫妻关系\n"
        "第一千零五十五条　夫妻在婚姻家庭中地位平等。\n"
        "第一千零六十三条　下列财产为夫妻一方的个人财产：\n（一）一方的婚前财产；\n（二）其他财产。\n"
        "第二节　父母子女关系和其他近亲属关系\n第一千一百条　无子女的收养人可以收养两名子女。\n"
    )
    doc = parse_text(text)
    assert doc.style == "regulation"
    assert [a.path for a in doc.articles()] == [
        ["第五编", "第三章", "第一节", "第一千零五十五条"],
        ["第五编", "第三章", "第一节", "第一千零六十三条"],
        ["第五编", "第三章", "第二节", "第一千一百条"],
    ]
    assert [a.number for a in doc.articles()] == [1055, 1063, 1100]
    assert doc.issuers == ["全国人民代表大会"]
    assert doc.issued_on == dt.date(2020, 5, 28)


def test_notice_issuing_a_plan_keeps_both_apart() -> None:
    # A department's notice whose body is the plan it issues, attached after its signature: the
    # metadata are the notice's, the structure the plan's, and the JSON says which is which.
    text = (
        "浙江省经济和信息化厅关于印发《中小企业数字化转型行动方案》的通知\n"
        "浙经信企业〔2024〕12号\n各市经信局：\n"
        "现将《中小企业数字化转型行动方案》印发给你们，请结合实际认真贯彻执行。\n"
        "浙江省经济和信息化厅\n2024年3月1日\n附件\n中小企业数字化转型行动方案\n"
        "一、主要任务\n（一）开展诊断服务。每年为500家中小企业提供免费诊断。（省经信厅牵头，省财政厅配合）\n"
        "（二）培育服务商。遴选一批数字化服务商。（省经信厅负责）\n"
        "二、保障措施\n（三）加强资金保障。统筹省级中小企业发展专项资金予以支持。（省财政厅负责）\n"
    )
    doc = parse_text(text)
    assert doc.title == "浙江省经济和信息化厅关于印发《中小企业数字化转型行动方案》的通知"
    assert doc.doc_number == "浙经信企业〔2024〕12号"
    assert doc.issuers == ["浙江省经济和信息化厅"] and doc.issued_on == dt.date(2024, 3, 1)
    assert doc.preamble.startswith("现将《中小企业数字化转型行动方案》印发给你们")
    assert doc.enclosed is not None
    assert doc.enclosed.title == "中小企业数字化转型行动方案"
    assert doc.enclosed.relation == "印发" and doc.enclosed.issuers == []
    assert [a.path for a in doc.articles()] == [
        ["一、", "(一)"],
        ["一、", "(二)"],
        ["二、", "(三)"],
    ]
    # The plan names no province: its notes are read as the issuing department's province's.
    assert _names(_task(doc, "一、/(一)").lead) == ["浙江省经济和信息化厅"]
    assert _names(_task(doc, "二、/(三)").lead) == ["浙江省财政厅"]
    assert doc.unknown_departments == []
    assert '"enclosed":{"title":"中小企业数字化转型行动方案"' in doc.model_dump_json()


def test_a_document_citing_another_by_title_encloses_nothing() -> None:
    doc = parse_text(
        "关于做好中小企业款项支付工作的通知\n各市州人民政府：\n"
        "《保障中小企业款项支付条例》已经国务院公布，现就有关事项通知如下。\n"
        "一、抓好宣传。\n二、加强督查。\n"
    )
    assert doc.enclosed is None
    assert [a.label for a in doc.articles()] == ["一、", "二、"]
