"""Structure parser for Chinese policy documents.

Recognises metadata (title, 文号, issuers from the head or the closing signature, 主送, issue /
effective / publication dates, source of a web page, cited document numbers) with where each was
found, and the numbering grammar of Chinese documents: 第X编/章/节 and 第X条 (with (一) items inside
articles) in regulations, 一、/(一)/1. in opinions, 一、/1. in notices and 1./(1) in numbered measures,
items restarting in every article. Each unit's responsibility note becomes lead, supporting and
implementing departments (group notes apply to their items, "下同" to what follows); a task table
(任务分工表) becomes the task breakdown. Messy real texts are expected: articles glued onto the previous
line are split where the numbering says a new one begins, numbering gaps become warnings, and site
chrome (navigation, breadcrumbs, view counters, copyright lines) is dropped.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import operator
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cn2an

from huiqi.policy.departments import (
    Registry,
    Resolved,
    default_registry,
    province_named_in,
    province_of,
)
from huiqi.policy.ingest import CELL_SEP, TABLE_END, TABLE_START, SourceText, normalize_text
from huiqi.policy.quantities import find_quantities
from huiqi.policy.schemas import (
    DepartmentRef,
    EnclosedDocument,
    ParsedArticle,
    ParsedDocument,
    ParsedItem,
    ParsedSection,
    ParsedTable,
    QuantityOut,
    TaskOut,
    built,
)
from huiqi.policy.topics import tag_topics

CN_NUM = "零〇一二三四五六七八九十百千两"
_CN = f"[{CN_NUM}]+"

# Line-start markers.
RE_BOOK = re.compile(rf"^第\s*({_CN}|\d+)\s*编\s*(.*)$")
RE_CHAPTER = re.compile(rf"^第\s*({_CN}|\d+)\s*章\s*(.*)$")
RE_PART = re.compile(rf"^第\s*({_CN}|\d+)\s*节\s*(.*)$")
RE_REG_ARTICLE = re.compile(rf"^第\s*({_CN}|\d+)\s*条(\s*)(.*)$")
RE_SECTION = re.compile(r"^([一二三四五六七八九十]{1,3})\s*、\s*(.*)$")
RE_ARTICLE = re.compile(r"^\(\s*([一二三四五六七八九十百]{1,4})\s*\)\s*(.*)$")
# Third-level items: 1. / 1、 (not a decimal such as 1.5), and (1) / ① below them.
RE_ITEM = re.compile(r"^(\d{1,3})\s*[.、](?!\d)\s*(.*)$")
RE_SUBITEM = re.compile(r"^(?:\((\d{1,3})\)|([①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳]))\s*(.*)$")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
# The same markers glued after the end of a sentence or of a responsibility note. Each match is
# the closing mark alone (the marker is looked for ahead), so the split goes at its end; a
# pattern opening with a character class lets the regex engine skip straight to such marks.
RE_GLUED_ARTICLE = re.compile(r"[。;)”!](?=\s*\(\s*([一二三四五六七八九十百]{1,4})\s*\))")
RE_GLUED_SECTION = re.compile(r"[。;)”!](?=\s*([一二三四五六七八九十]{1,3})\s*、)")
RE_GLUED_REG_ARTICLE = re.compile(rf"[。;:”](?=\s*第\s*({_CN})\s*条\s)")

DOC_NUMBER = re.compile(
    r"(?P<prefix>[\u4e00-\u9fff]{1,14})\s*[〔\[【(（]\s*(?P<year>(?:19|20)\d\d)\s*[〕\]】)）]\s*"
    r"(?:第\s*)?(?P<seq>\d{1,5})\s*号"
)
DECREE_NUMBER = re.compile(
    r"(?P<prefix>[\u4e00-\u9fff]{2,20}?令)\s*(?:\(?\s*)?第\s*(?P<seq>\d{1,5})\s*号"
)
_PREFIX_NOISE = re.compile(
    r"^(?:中华人民共和国|根据|按照|依据|依照|参照|结合|落实|贯彻|执行|印发|转发|详见|见|和|及|与|以及|即)+"
)
DATE_CN = re.compile(
    r"((?:19|20)\d\d|[〇零一二三四五六七八九]{4})\s*年\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*月\s*(\d{1,2}|[一二三四五六七八九十]{1,3})\s*日"
)
DATE_ISO = re.compile(r"((?:19|20)\d\d)\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})")
DOC_TYPE_END = re.compile(
    r"(意见|办法|通知|条例|规定|方案|细则|决定|措施|公告|规划|指引|通告|批复|纲要|政策|法|规则|计划|要点|清单|目录|指南|制度|函)$"
)


def _word_scan(words: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern finding any of ``words`` (ASCII letters in any case) that scans a long text fast.

    It opens with the class of the words' first characters, which the regex engine skips to
    directly, then checks each word's rest behind a look-back at its first character; an
    alternation of the words themselves tries every word at every character (a tenth of the
    parse time of a 500 KB page).
    """

    def chars(text: str) -> str:
        return "".join(
            f"[{c.upper()}{c.lower()}]" if c.isascii() and c.isalpha() else re.escape(c)
            for c in text
        )

    firsts = sorted({c for w in words for c in (w[0].upper(), w[0].lower())})
    rests = "|".join(f"(?<={chars(w[0])}){chars(w[1:])}" for w in words)
    return re.compile(f"[{''.join(map(re.escape, firsts))}](?:{rests})")


_CHROME_STRONG = _word_scan(
    (
        "版权所有", "Copyright", "©", "ICP备", "ICP证", "公网安备", "网站标识码", "技术支持:",
        "技术支持：", "主办单位:", "主办单位：", "承办单位:", "承办单位：", "网站地图", "您当前的位置",
        "当前位置:", "当前位置：", "您现在的位置", "浏览次数", "访问次数", "阅读次数", "点击数:",
        "点击数：", "打印本页", "关闭窗口", "【打印】", "【关闭】", "【字体", "字号:", "字号：", "分享到",
        "扫一扫在手机", "视力保护色", "[打印]", "[关闭]",
    )
)  # fmt: skip

_CHROME_WEAK = re.compile(
    r"^(地址|邮箱|电子邮箱|电话|联系电话|邮编|传真|E-?mail)[:：]|联系我们|政务服务网|^首页$", re.I
)
_LABEL_KEYS = (
    "索引号|主题分类|分类|发文机关|发布机构|发文单位|发文字号|文号|字号|成文日期|发布日期|发文日期|"
    "印发日期|公布日期|施行日期|生效日期|实施日期|标题|名称|主题词|有效性|时效性|体裁分类|公文种类|"
    "浏览量|浏览次数|访问量|点击量"
)
_LABELED = re.compile(rf"^({_LABEL_KEYS})[:：]\s*(.*)$")
_LABEL_SPACES = re.compile(r"^([\u4e00-\u9fff](?:\s+[\u4e00-\u9fff]){1,4})\s*(?=[:：])")
_SOURCE = re.compile(r"(?:来源|信息来源|发布机构)[:：]\s*([^\s:：]+)")
_PUBLISHED = re.compile(
    r"(?:日期|发布时间|发布日期|时间)[:：]\s*(\S+(?:\s*\d{1,2}:\d{2}(?::\d{2})?)?)"
)
_PROMULGATION = re.compile(
    r"^[(（]?\s*(?P<date>.{8,14}日)\s*(?P<what>.*?)(?P<verb>公布|发布|修订|通过|施行|修正|批准)\s*[)）]?$"
)
_EFFECTIVE = re.compile(
    r"(?:本(?:条例|规定|办法|意见|通知|细则|决定|措施|方案|制度|规则|实施细则|实施意见|规划|公告|要点|政策)?"
    r"|以上政策|上述政策|本文件)?自(?P<date>(?:19|20)\d\d\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|"
    r"[〇零一二三四五六七八九]{4}年[一二三四五六七八九十]{1,2}月[一二三四五六七八九十]{1,3}日|"
    r"(?:印发|发布|公布|颁布)之日)起(?:施行|实施|执行|生效)"
)
_NOTE = re.compile(r"\((?P<body>(?:[^()]|\([^()]{0,40}\)){2,600})\)\s*$")
_NOTE_VERB = re.compile(
    r"(负责|组织实施|分工落实|牵头|配合|抓好落实|具体实施|共同推进|结合实际落实|参与|会同|"
    r"牵头单位|责任单位|配合单位|责任部门|牵头部门|负责部门|下同)"
)
_ISSUER_LINE = re.compile(
    r"^[\u4e00-\u9fff()（）]{1,40}(厅|局|委|委员会|政府|办公室|办公厅|院|部|会|中心|支行|分行|海关|办|署|总局|专家组)$"
)
_CLOSING = re.compile(
    r"^(附件\s*[:：\d]|附件$|联系人[:：]|联系电话[:：]|联系方式[:：]|抄送[:：]|[(（]此件|[(（]本文有删减)"
)
_CLOSING_PARAGRAPH = re.compile(
    r"^(现将|感谢|特此|此复|此函|以上意见|以上各项|请各地|请认真贯彻|各地区、各部门要认真贯彻|"
    r"本(?:意见|通知|方案|措施|要点|实施意见|工作要点)(?:自|从|由)|本(?:意见|通知|方案|措施)未尽事宜)"
)
_ADDRESSEE_GROUPS = re.compile(r"[,，;；]")
_ORG_END = re.compile(
    r"(政府|委员会|厅|局|委|办|部|院|会|处|室|机构|单位|中心|公司|集团|银行|分行|支行|军区|学校|院校|"
    r"企业|大学|党委|党组|组织|团体|协会|代表|委员|主席|法院|检察院|管委会|部门|总队|支队|所|站|社|联)$"
)
_SIGNATURE_DATE = re.compile(
    r"^(?:(?:19|20)\d\d\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|(?:19|20)\d\d\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}|"
    r"[〇零一二三四五六七八九]{4}\s*年\s*[一二三四五六七八九十]{1,3}\s*月\s*[一二三四五六七八九十]{1,3}\s*日)$"
)
_GENERIC_DEPT = re.compile(
    r"^((省|市|县|区)?直?各?(有关|相关|其他有关|其他相关)(单位|部门|方面)|(省|市|县|区)?(级)?各?成员单位|"
    r"无|/|—+|-+)$"
)
_LEVEL_PREFIX = re.compile(
    r"^(省|市(?!场)|县|区|国家|国务院|中国|中华|中央|全国|最高|人民银行|人行|各)"
)
_TASK_HEADERS = {
    "number": re.compile(r"^(序号|编号|序)$"),
    "title": re.compile(
        r"^(重点任务|主要任务|工作任务|任务名称|任务|重点工作|工作事项|事项|类别|领域)$"
    ),
    "text": re.compile(
        r"^(具体举措|具体措施|工作措施|主要措施|措施|工作内容|任务内容|具体内容|内容|目标任务|工作目标)$"
    ),
    "lead": re.compile(r"^(牵头单位|牵头部门|责任单位|责任部门|主责单位|负责单位|牵头)$"),
    "support": re.compile(r"^(配合单位|配合部门|协同单位|参与单位|协办单位|配合)$"),
    "deadline": re.compile(r"^(完成时限|完成时间|时间节点|时限|时间安排|进度安排|完成期限)$"),
}


def quantities_of(text: str) -> list[QuantityOut]:
    """The quantitative commitments of an article's text, in output form."""
    return [
        built(
            QuantityOut,
            text=q.text,
            value=q.value,
            value_max=q.value_max,
            unit=q.unit,
            op=q.op,
            kind=q.kind,
            sentence=q.sentence,
        )
        for q in find_quantities(text)
    ]


@lru_cache(maxsize=512)
def cn_number(raw: str) -> int:
    """Convert a Chinese or Arabic numeral (二十七, 27) to int."""
    raw = raw.strip()
    if raw.isdigit():
        return int(raw)
    return int(cn2an.cn2an(raw.replace("两", "二"), "smart"))


def cn_label(n: int) -> str:
    """Chinese numeral for n (27 → 二十七)."""
    return str(cn2an.an2cn(n))


def parse_date(text: str) -> dt.date | None:
    """First date in ``text`` (2020年12月18日, 二〇二〇年十二月十八日 or 2021-04-27)."""
    m = DATE_CN.search(text)
    if m:
        year_raw, month_raw, day_raw = m.groups()
        year = (
            int(year_raw)
            if year_raw.isdigit()
            else int(
                "".join(str("〇一二三四五六七八九".index(c.replace("零", "〇"))) for c in year_raw)
            )
        )
        parts = (year, cn_number(month_raw), cn_number(day_raw))
    else:
        m = DATE_ISO.search(text)
        if not m:
            return None
        parts = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    try:
        return dt.date(*parts)
    except ValueError:
        return None


def normalize_doc_number(m: re.Match[str]) -> str:
    """Canonical spelling of a matched document number: 甘工信发〔2020〕351号."""
    prefix = _PREFIX_NOISE.sub("", m.group("prefix")) or m.group("prefix")
    if "year" in m.groupdict():
        return f"{prefix}〔{m.group('year')}〕{int(m.group('seq'))}号"
    return f"{prefix}第{int(m.group('seq'))}号"


def find_doc_numbers(text: str) -> list[str]:
    """Every document number cited in ``text``, in order, without repeats."""
    found: list[tuple[int, int, str]] = []
    # Only lines holding 号 can hold a number: the patterns are not run over the rest.
    for at, line in enumerate(text.split("\n")):
        if "号" not in line:
            continue
        for m in DOC_NUMBER.finditer(line):
            found.append((at, m.start(), normalize_doc_number(m)))
        if "令" in line:
            for m in DECREE_NUMBER.finditer(line):
                found.append((at, m.start(), normalize_doc_number(m)))
    out: list[str] = []
    for _, _, number in sorted(found):
        if number not in out:
            out.append(number)
    return out


@dataclass
class _Item:
    number: int
    label: str
    title: str
    lines: list[str] = field(default_factory=list)
    clause: int | None = None  # the 款 of a regulation's article the item stands in


@dataclass
class _Article:
    number: int
    label: str
    title: str
    lines: list[str] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    intro: list[str] = field(default_factory=list)  # lines before the first item
    within: list[str] = field(default_factory=list)  # 第X编 / 第X节 headings above the article
    clauses: list[list[str]] = field(default_factory=list)  # 款 of a regulation's article


@dataclass
class _Section:
    number: int
    label: str
    title: str
    lines: list[str] = field(default_factory=list)
    articles: list[_Article] = field(default_factory=list)
    note: str | None = None  # a group note on the section's heading


@dataclass
class _Meta:
    title: str | None = None
    doc_number: str | None = None
    issuers: list[str] = field(default_factory=list)
    addressees: list[str] = field(default_factory=list)
    issued_on: dt.date | None = None
    published_on: dt.date | None = None
    effective_on: dt.date | None = None
    source: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: object, where: str, *, override: bool = False) -> None:
        """Set a field once (or override), remembering where it was found."""
        if value in (None, "", []):
            return
        if getattr(self, name) in (None, "", []) or override:
            setattr(self, name, value)
            self.sources[name] = where


_MD_HEADING = re.compile(r"^#{1,6}\s*")
_HTML_COMMENT = re.compile(r"<!--.*?-->")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _clean_line(line: str) -> str:
    line = line.strip()
    if line.startswith("#"):
        line = _MD_HEADING.sub("", line)
    if "<!--" in line:
        line = _HTML_COMMENT.sub("", line)
    if "**" in line:
        line = line.replace("**", "").strip()
    return line


def _is_nav_line(line: str) -> bool:
    """A menu row: several short words separated by spaces, with no sentence punctuation."""
    tokens = line.split()
    if len(tokens) < 4 or re.search(r"[。,;:、《]", line):
        return False
    return all(len(t) <= 8 for t in tokens)


def _is_breadcrumb(line: str) -> bool:
    return (
        bool(re.search(r"(首页|主页)\s*[>›»/]", line))
        or line.count(">") >= 2
        or line.count("»") >= 2
    )


def _looks_like_title(line: str) -> bool:
    if not 4 <= len(line) <= 120 or line.endswith(("。", ":", ";", ",")):
        return False
    if (
        RE_REG_ARTICLE.match(line)
        or RE_ARTICLE.match(line)
        or RE_SECTION.match(line)
        or RE_CHAPTER.match(line)
    ):
        return False
    if DOC_NUMBER.fullmatch(line) or DATE_CN.fullmatch(line) or DATE_ISO.fullmatch(line):
        return False
    return bool(DOC_TYPE_END.search(line))


def _strip_site_suffix(line: str) -> str:
    for part in re.split(r"\s*[_|｜]\s*|\s+-\s+|——", line):
        if DOC_TYPE_END.search(part.strip()):
            return part.strip()
    return line


def _label_key(line: str) -> str:
    """A label line with its label's inner spaces removed: 索 引 号:… → 索引号:…."""
    m = _LABEL_SPACES.match(line)
    if m:
        return m.group(1).replace(" ", "") + line[m.end() :]
    return line


def split_addressees(line: str) -> list[str]:
    """主送 groups as written: 各省、自治区、直辖市人民政府 stays one group, 教育部、外交部 are two."""
    out: list[str] = []
    for group in _ADDRESSEE_GROUPS.split(line):
        pending: list[str] = []
        for piece in (p.strip() for p in group.split("、")):
            if not piece:
                continue
            pending.append(piece)
            if _ORG_END.search(piece):
                out.append("、".join(pending))
                pending = []
        if pending:
            out.append("、".join(pending))
    return out


def _issuer_names(line: str) -> list[str] | None:
    """The issuers on a signature line (several separated by spaces), or None if it is not one."""
    names = [n for n in line.split() if n]
    if names and all(_ISSUER_LINE.match(n) for n in names) and len(line) <= 80:
        return names
    return None


def _congress_issuer(what: str) -> str | None:
    """上海市第十五届人民代表大会常务委员会第十八次会议 → 上海市人民代表大会常务委员会;
    第十三届全国人民代表大会第三次会议 → 全国人民代表大会."""
    m = re.search(
        r"(.{0,12}?)(?:第[一二三四五六七八九十]+届)?(全国人民代表大会常务委员会|全国人民代表大会|人民代表大会常务委员会|人民代表大会)",
        what,
    )
    if not m:
        return None
    return f"{m.group(1)}{m.group(2)}"


class _Parser:
    def __init__(
        self,
        text: str,
        registry: Registry,
        task_level: str | None = None,
        context: _Meta | None = None,
    ) -> None:
        self.registry = registry
        self.meta = _Meta()
        # The enclosing document's metadata, for a document it issues: where the enclosed one
        # says nothing of its issuer or date, department names are read as the enclosing one's.
        self.context = context or _Meta()
        self.warnings: list[str] = []
        self.task_level_choice = task_level
        self.tables: list[list[list[str]]] = []
        self.lines = self._lift_tables([_clean_line(line) for line in text.split("\n")])
        self.signature_lines: set[int] = set()

    # -- tables ---------------------------------------------------------------------------------

    def _lift_tables(self, lines: list[str]) -> list[str]:
        """Take the tables out of the line stream: each becomes one placeholder line."""
        out: list[str] = []
        rows: list[list[str]] | None = None
        for line in lines:
            if line == TABLE_START:
                rows = []
            elif line == TABLE_END and rows is not None:
                out.append(f"\x00table:{len(self.tables)}")
                self.tables.append(rows)
                rows = None
            elif rows is not None:
                rows.append([cell.strip() for cell in line.split(CELL_SEP.strip())])
            else:
                out.append(line)
        if rows:
            out.append(f"\x00table:{len(self.tables)}")
            self.tables.append(rows)
        return out

    @staticmethod
    def _table_of(line: str) -> int | None:
        return int(line[7:]) if line.startswith("\x00table:") else None

    # -- metadata and chrome -------------------------------------------------------------------

    def _take_page_metadata(self, line: str, following: str) -> tuple[bool, bool]:
        """Parse labelled metadata and 来源/日期 lines: (is chrome, the next line was its value)."""
        labeled = _LABELED.match(_label_key(line))
        if labeled and (extra := _PUBLISHED.search(line[labeled.start(2) :])):
            # 浏览量: 12 时间:2016-01-17 — a counter and the publication time on one line.
            self.meta.set("published_on", parse_date(extra.group(1)), "page")
        if labeled:
            key, value = labeled.group(1), labeled.group(2).strip()
            used_next = False
            if not value and following and not _LABELED.match(_label_key(following)):
                if len(following) <= 60 and not self._is_marker_line(following):
                    value, used_next = following, True
            where = f"label:{key}"
            if key in ("发文机关", "发布机构", "发文单位") and value:
                self.meta.set("issuers", [v for v in re.split(r"[、,，\s]+", value) if v], where)
            elif key in ("发文字号", "文号", "字号") and value:
                m = DOC_NUMBER.search(value) or DECREE_NUMBER.search(value)
                if m:
                    self.meta.set("doc_number", normalize_doc_number(m), where, override=True)
            elif key in ("成文日期", "发文日期", "印发日期"):
                self.meta.set("issued_on", parse_date(value), where, override=True)
            elif key in ("发布日期", "公布日期"):
                self.meta.set("published_on", parse_date(value), where, override=True)
            elif key in ("施行日期", "生效日期", "实施日期"):
                self.meta.set("effective_on", parse_date(value), where, override=True)
            elif key in ("标题", "名称") and value:
                self.meta.set("title", value, where, override=True)
            elif key in ("来源", "信息来源") and value:
                self.meta.set("source", value.split()[0], where)
            return True, used_next
        has_source = _SOURCE.search(line)
        has_date = _PUBLISHED.search(line)
        if has_source or (has_date and (_CHROME_STRONG.search(line) or len(line) < 40)):
            if has_source:
                self.meta.set("source", has_source.group(1), "page")
            if has_date:
                self.meta.set("published_on", parse_date(has_date.group(1)), "page")
            return True, False
        return bool(
            _CHROME_STRONG.search(line) or _is_nav_line(line) or _is_breadcrumb(line)
        ), False

    def _split_header(self) -> tuple[int, int]:
        """Find where the body starts and ends; fill title, 文号, 主送 and closing metadata."""
        lines = self.lines
        n = len(lines)
        first_marker = next((i for i, line in enumerate(lines) if self._is_marker_line(line)), n)
        order = self._order_head()
        title_at = None if order is None else order[1]
        skip_next = False
        # The head of an order is known: only the page's lines above it are read for metadata.
        for i in range(min(first_marker, 60) if order is None else order[0]):
            line = lines[i]
            if skip_next:
                lines[i] = ""
                skip_next = False
                continue
            if not line or self._table_of(line) is not None:
                continue
            following = next((x for x in lines[i + 1 : i + 3] if x), "")
            chrome, skip_next = self._take_page_metadata(line, following)
            if chrome:
                lines[i] = ""
                continue
            if title_at is None and _looks_like_title(_strip_site_suffix(line)):
                title_at = i
        if title_at is not None:
            self.meta.set("title", _strip_site_suffix(lines[title_at]), "head")
        else:
            title_at = next(
                (
                    i
                    for i in range(min(first_marker, 60))
                    if lines[i]
                    and not lines[i].endswith("。")
                    and len(lines[i]) <= 60
                    and not DOC_NUMBER.fullmatch(lines[i])
                    and self._table_of(lines[i]) is None
                ),
                -1,
            )
            if title_at >= 0 and title_at < first_marker:
                self.meta.set("title", lines[title_at], "head")
        start = title_at + 1 if title_at is not None and title_at >= 0 else 0
        for i in range(0, start):
            # A document whose first line is its 文号: keep the number, not as the title.
            if m := DOC_NUMBER.fullmatch(lines[i]):
                self.meta.set("doc_number", normalize_doc_number(m), "head")
            lines[i] = ""
        # Repeated title (HTML <title> then <h1>), 文号, promulgation lines and 主送 before the body.
        i = start
        while i < first_marker:
            line = lines[i]
            if not line:
                i += 1
                continue
            if self.meta.title and _strip_site_suffix(line) == self.meta.title:
                lines[i] = ""
            elif (m := DOC_NUMBER.fullmatch(line) or DOC_NUMBER.match(line)) and len(line) <= len(
                m.group()
            ) + 12:
                self.meta.set("doc_number", normalize_doc_number(m), "head")
                lines[i] = ""
            elif (p := _PROMULGATION.match(line)) and parse_date(p.group("date")):
                # 通过 … 修订 … 修正 on one line: the text is the version of the latest date.
                date = max(
                    found for m in DATE_CN.finditer(line) if (found := parse_date(m.group()))
                )
                if p.group("verb") == "施行":
                    self.meta.set("effective_on", date, "head", override=True)
                else:
                    self.meta.set("issued_on", date, "head", override=True)
                if d := DECREE_NUMBER.search(line):
                    self.meta.set("doc_number", normalize_doc_number(d), "head", override=True)
                    issuer = re.sub(r"^中华人民共和国", "", d.group("prefix"))[:-1]
                    self.meta.set("issuers", [issuer] if issuer else [], "head", override=True)
                elif congress := _congress_issuer(p.group("what")):
                    self.meta.set("issuers", [congress], "head")
                lines[i] = ""
            elif (
                line.endswith(":")
                and "。" not in line
                and len(line) <= 300
                and not self.meta.addressees
            ):
                self.meta.set("addressees", split_addressees(line[:-1]), "head")
                lines[i] = ""
                break
            elif len(line) > 60 or "。" in line:
                break
            i += 1
        end = self._find_end(max(start, first_marker if first_marker < n else start), start)
        return start, end

    def _order_head(self) -> tuple[int, int] | None:
        """An order standing alone (国务院令 / 第812号 over its text and the premier's signature):
        its title, number and issuer from its head, the signatory's line out of the text; the
        lines of its head and number, or None if the text does not open as an order."""
        lines = self.lines
        # Site chrome may stand above the head of a web page: the first 20 lines with text.
        shown = [i for i, line in enumerate(lines[:60]) if line][:20]
        heading = next(
            (
                (at, nxt)
                for at, nxt in itertools.pairwise(shown)
                if _ORDER_HEAD.match(lines[at]) and _ORDER_NUMBER.match(lines[nxt])
            ),
            None,
        )
        if heading is None:
            return None
        head = lines[heading[0]]
        m, n = _ORDER_HEAD.match(head), _ORDER_NUMBER.match(lines[heading[1]])
        assert m is not None and n is not None
        # A 主席令 promulgates a law adopted by the congress, which is its issuer.
        if m.group("issuer") == "主席":
            return None
        self.meta.set("title", head, "head")
        self.meta.set("doc_number", f"{m.group('issuer')}令第{cn_number(n.group('seq'))}号", "head")
        self.meta.set("issuers", [m.group("issuer")], "head")
        following = [i for i in range(heading[1] + 1, len(lines)) if lines[i]]
        for at, nxt in itertools.pairwise(following):
            if _SIGNATORY.match(lines[at]) and _SIGNATURE_DATE.match(lines[nxt]):
                lines[at] = ""
        return heading

    def _find_end(self, body_start: int, head_end: int) -> int:
        """Cut footer chrome and the closing signature/date; return the end of the body."""
        lines = self.lines
        end = len(lines)
        # One search over the body instead of one per line (no chrome pattern spans a line).
        body = "\n".join(lines[body_start:])
        chrome = _CHROME_STRONG.search(body)
        if chrome is not None:
            end = body_start + body.count("\n", 0, chrome.start())
        while end > body_start and (not lines[end - 1] or _CHROME_WEAK.search(lines[end - 1])):
            end -= 1
        end = self._signatures(min(head_end, body_start), end)
        return self._cut_closing(body_start, end)

    def _signatures(self, body_start: int, end: int) -> int:
        """Find the signature blocks (issuer lines above a date line); return where the body ends.

        The first block is the document's own (a notice transmitting a report signs before the
        report); a block at the very end closes the body, one in the middle is taken out of it.
        """
        lines = self.lines
        blocks: list[tuple[int, int, list[str], dt.date]] = []
        for i in range(body_start, end):
            line = lines[i]
            if not line or len(line) > 20 or not _SIGNATURE_DATE.match(line):
                continue
            date = parse_date(line)
            if date is None:
                continue
            issuers: list[str] = []
            j = i - 1
            while j > body_start:
                if lines[j]:
                    names = _issuer_names(lines[j])
                    if names is None:
                        break
                    issuers = [*names, *issuers]
                j -= 1
            blocks.append((j + 1, i, issuers, date))
        if not blocks:
            return end
        first = blocks[0]
        self.meta.set("issued_on", first[3], "signature")
        self.meta.set("issuers", first[2], "signature")
        last = blocks[-1]
        tail = [x for x in lines[last[1] + 1 : end] if x]
        at_end = all(_CLOSING.match(x) or len(x) <= 12 for x in tail)
        for begin, date_line, _, _ in blocks[:-1] if at_end else blocks:
            for k in range(begin, date_line + 1):
                self.signature_lines.add(k)
                lines[k] = ""
        if at_end:
            return last[0]
        return end

    def _cut_closing(self, body_start: int, end: int) -> int:
        """Attachments, contacts and copy-to lines after the last article close the document."""
        # Looked for from the end: the last marker is near it.
        last_marker = next(
            (i for i in range(end - 1, body_start - 1, -1) if self._is_marker_line(self.lines[i])),
            body_start,
        )
        for i in range(last_marker + 1, end):
            if _CLOSING.match(self.lines[i]):
                return i
        return end

    # -- hierarchy ------------------------------------------------------------------------------

    def _is_marker_line(self, line: str) -> bool:
        return bool(
            RE_REG_ARTICLE.match(line)
            or RE_ARTICLE.match(line)
            or RE_SECTION.match(line)
            or RE_CHAPTER.match(line)
        )

    def _style(self, body: list[str]) -> str:
        reg = sum(
            1
            for line in body
            if (m := RE_REG_ARTICLE.match(line)) and (m.group(2) or not m.group(3))
        )
        art = sum(1 for line in body if RE_ARTICLE.match(line))
        sec = sum(1 for line in body if RE_SECTION.match(line))
        num = sum(1 for line in body if RE_ITEM.match(line))
        # Items (一) inside a regulation's articles may outnumber the articles; an opinion's (一)
        # stand under 一、 sections. Without sections, two 第X条 markers make a regulation.
        if reg >= 2 and (reg >= art or sec < 2):
            return "regulation"
        if art >= 2:
            return "opinion"
        if sec >= 2:
            return "notice"
        if reg >= 1:
            return "regulation"
        if num >= 3:
            return "numbered"
        return "plain"

    def build(self) -> ParsedDocument:
        start, end = self._split_header()
        body = [line for line in self.lines[start:end]]
        style = self._style([line for line in body if line])
        preamble: list[str] = []
        sections: list[_Section] = []
        if style == "plain":
            text_lines = [line for line in body if line and self._table_of(line) is None]
            sections = [_Section(0, "", "", articles=[_Article(1, "", "", text_lines)])]
            if not any(self._is_task_table(rows) for rows in self.tables):
                self.warnings.append(
                    "no recognisable structure (no 一、/(一)/第一条 markers): stored as one article"
                )
        else:
            sections = self._walk(body, style, preamble)
        return self._finish(style, preamble, sections)

    def _walk(self, body: list[str], style: str, preamble: list[str]) -> list[_Section]:
        sections: list[_Section] = []
        state = {"sec": 0, "art": 0}
        current_section: _Section | None = None
        current_article: _Article | None = None
        current_item: _Item | None = None
        within: list[str] = []  # the 第X编 and 第X节 the walk is in

        def ensure_section() -> _Section:
            nonlocal current_section
            if current_section is None:
                current_section = _Section(0, "", "")
                sections.append(current_section)
            return current_section

        def open_section(num: int, label: str, title: str, glued: bool) -> None:
            nonlocal current_section, current_article, current_item
            expected = state["sec"] + 1
            if glued:
                self.warnings.append(
                    f"section {label} started on the same line as the end of the previous text; split there"
                )
            if num > expected:
                missing = "、".join(f"{cn_label(k)}、" for k in range(expected, num))
                self.warnings.append(f"numbering gap: section {missing} missing before {label}")
            elif num < expected:
                self.warnings.append(
                    f"section {label} is out of order (after {cn_label(state['sec'])}、)"
                )
            state["sec"] = num
            note = None
            if m := _NOTE.search(title):
                if _NOTE_VERB.search(m.group("body")):
                    note, title = m.group(0).strip(), title[: m.start()].strip()
            current_section = _Section(num, label, title, note=note)
            sections.append(current_section)
            current_article = None
            current_item = None

        def open_article(num: int, label: str, rest: str, glued: bool) -> None:
            nonlocal current_article, current_item
            section = ensure_section()
            expected = state["art"] + 1
            restarted = num == 1 and state["art"] > 0 and not section.articles
            if glued and current_article is not None:
                self.warnings.append(
                    f"article {label} was glued onto the last line of article {current_article.label}; split there"
                )
            elif glued:
                self.warnings.append(
                    f"article {label} was glued onto the previous line; split there"
                )
            if num > expected:
                missing = "、".join(self._label(style, k) for k in range(expected, num))
                self.warnings.append(
                    f"numbering gap: article {missing} missing between "
                    f"{self._label(style, state['art'])} and {label}"
                    if state["art"]
                    else f"numbering gap: article {missing} missing before {label}"
                )
            elif num < expected and not restarted:
                self.warnings.append(
                    f"article {label} is out of order (after {self._label(style, state['art'])})"
                )
            state["art"] = num
            if style == "regulation":
                title, text = "", rest
            else:
                title, text = _split_title(rest)
            current_article = _Article(num, label, title, [text] if text else [])
            current_article.intro = list(current_article.lines)
            if style == "regulation" and text:
                current_article.clauses.append([text])
            section.articles.append(current_article)
            current_item = None

        def open_item(num: int, label: str, rest: str, raw: str) -> None:
            nonlocal current_item
            assert current_article is not None
            current_article.lines.append(raw)
            if style == "regulation":
                title, text = "", rest
            else:
                title, text = _split_title(rest)
            current_item = _Item(num, label, title, [text] if text else [])
            if style == "regulation":
                # An item (项) stands in the paragraph (款) that introduces it.
                if not current_article.clauses:
                    current_article.clauses.append([])
                current_article.clauses[-1].append(raw)
                current_item.clause = len(current_article.clauses)
            current_article.items.append(current_item)

        def add_text(text: str) -> None:
            nonlocal current_item
            if not text:
                return
            if current_article is not None:
                current_article.lines.append(text)
                if style == "regulation":
                    # In a regulation every paragraph of an article is a 款; one after the
                    # items ends the last item (a 项 is one paragraph).
                    current_article.clauses.append([text])
                    current_item = None
                    if not current_article.items:
                        current_article.intro.append(text)
                elif current_item is not None:
                    current_item.lines.append(text)
                else:
                    current_article.intro.append(text)
            elif current_section is not None:
                current_section.lines.append(text)
            else:
                preamble.append(text)

        for raw in body:
            table = self._table_of(raw) if raw else None
            if table is not None:
                rows = self.tables[table]
                if not self._is_task_table(rows):
                    for row in rows:
                        add_text(" | ".join(row))
                continue
            pending: str | None = raw
            glued = False
            while pending:
                pending = pending.strip()
                marker = self._line_start(style, pending, state)
                if marker is None and current_article is not None:
                    if item := self._item_start(style, pending):
                        open_item(*item, pending)
                        break
                if marker is None:
                    head, tail = self._split_glued(style, pending, state)
                    add_text(head)
                else:
                    kind, num, label, rest = marker
                    if kind == "book":
                        within[:] = [label]
                        break
                    if kind == "part":
                        within[:] = [*(w for w in within if w.endswith("编")), label]
                        break
                    after = dict(state, **({"sec": num} if kind == "section" else {"art": num}))
                    head, tail = self._split_glued(style, rest, after)
                    if kind == "section":
                        within[:] = [w for w in within if w.endswith("编")]
                        open_section(num, label, head, glued)
                    else:
                        open_article(num, label, head, glued)
                        if current_article is not None:
                            current_article.within = list(within)
                pending, glued = tail, True
        return sections

    def _item_start(self, style: str, line: str) -> tuple[int, str, str] | None:
        """An item marker inside an article: (一) in regulations, 1. elsewhere, (1)/① in 1. lists."""
        if style == "regulation":
            if m := RE_ARTICLE.match(line):
                return cn_number(m.group(1)), f"({m.group(1)})", m.group(2).strip()
            return None
        if style == "numbered":
            if m := RE_SUBITEM.match(line):
                number = int(m.group(1)) if m.group(1) else _CIRCLED.index(m.group(2)) + 1
                label = f"({m.group(1)})" if m.group(1) else m.group(2)
                return number, label, m.group(3).strip()
            return None
        if m := RE_ITEM.match(line):
            return int(m.group(1)), f"{int(m.group(1))}.", m.group(2).strip()
        return None

    def _line_start(
        self, style: str, line: str, state: dict[str, int]
    ) -> tuple[str, int, str, str] | None:
        """Recognise a marker at the start of ``line``: (kind, number, label, rest of line)."""
        if style == "regulation":
            if m := RE_CHAPTER.match(line):
                return (
                    "section",
                    cn_number(m.group(1)),
                    f"第{m.group(1)}章",
                    re.sub(r"\s+", "", m.group(2)),
                )
            if m := RE_BOOK.match(line):
                return "book", cn_number(m.group(1)), f"第{m.group(1)}编", m.group(2).strip()
            if m := RE_PART.match(line):
                return "part", cn_number(m.group(1)), f"第{m.group(1)}节", m.group(2).strip()
            if m := RE_REG_ARTICLE.match(line):
                num = cn_number(m.group(1))
                if m.group(2) or not m.group(3) or num == state["art"] + 1:
                    return "article", num, f"第{m.group(1)}条", m.group(3).strip()
            return None
        if style == "opinion":
            if m := RE_SECTION.match(line):
                return "section", cn_number(m.group(1)), f"{m.group(1)}、", m.group(2).strip()
            if m := RE_ARTICLE.match(line):
                return "article", cn_number(m.group(1)), f"({m.group(1)})", m.group(2).strip()
            return None
        if style == "numbered":
            if m := RE_ITEM.match(line):
                return "article", int(m.group(1)), f"{int(m.group(1))}.", m.group(2).strip()
            return None
        if m := RE_SECTION.match(line):
            return "article", cn_number(m.group(1)), f"{m.group(1)}、", m.group(2).strip()
        return None

    def _split_glued(self, style: str, text: str, state: dict[str, int]) -> tuple[str, str | None]:
        """Find a marker glued inside ``text`` that the numbering expects next; split before it."""
        candidates: list[int] = []
        art, sec = state["art"], state["sec"]
        if style == "regulation":
            for m in RE_GLUED_REG_ARTICLE.finditer(text):
                if art < cn_number(m.group(1)) <= art + 3:
                    candidates.append(m.end())
        elif style == "opinion":
            for m in RE_GLUED_ARTICLE.finditer(text):
                if art < cn_number(m.group(1)) <= art + 3:
                    candidates.append(m.end())
            for m in RE_GLUED_SECTION.finditer(text):
                if sec < cn_number(m.group(1)) <= sec + 2:
                    candidates.append(m.end())
        elif style == "notice":
            for m in RE_GLUED_SECTION.finditer(text):
                if art < cn_number(m.group(1)) <= art + 3:
                    candidates.append(m.end())
        if not candidates:
            return text, None
        cut = min(candidates)
        return text[:cut].rstrip(), text[cut:]

    @staticmethod
    def _label(style: str, n: int) -> str:
        if style == "regulation":
            return f"第{cn_label(n)}条"
        if style == "notice":
            return f"{cn_label(n)}、"
        if style == "numbered":
            return f"{n}."
        return f"({cn_label(n)})"

    # -- finishing ------------------------------------------------------------------------------

    def _jurisdiction(self) -> tuple[str | None, str | None, str | None]:
        """(province, level, city) of the document, from its number, issuers and title."""
        meta, context = self.meta, self.context
        number = meta.doc_number or context.doc_number or ""
        issuers = meta.issuers or context.issuers
        titles = " ".join(t for t in (meta.title, context.title) if t)
        central = number.startswith(("国发", "国办", "国函", "国务院令")) or any(
            i.startswith(("国务院", "中共中央", "中央", "全国人民代表大会"))
            or (i.endswith("部") and not i.startswith(("省", "市")) and len(i) <= 8)
            for i in issuers
        )
        if central:
            return None, "central", None
        province = province_of(number or None, *issuers, meta.title, context.title)
        if province is None:
            province = province_named_in(titles) or province_named_in(" ".join(issuers))
        city = None
        for text in [*issuers, meta.title or "", context.title or ""]:
            if m := re.match(r"^([\u4e00-\u9fff]{2,6}?市)(?!场)", text):
                if not any(text.startswith(p) for p in ("北京市", "上海市", "天津市", "重庆市")):
                    city = m.group(1)
                    break
        level = "municipal" if city else ("provincial" if province else None)
        return province, level, city

    def _finish(self, style: str, preamble: list[str], sections: list[_Section]) -> ParsedDocument:
        meta = self.meta
        if not meta.issuers and meta.doc_number:
            dept = self.registry.issuer_for_prefix(meta.doc_number)
            if dept is not None:
                meta.set("issuers", [dept.full_name], "registry:doc_number")
        province, level, city = self._jurisdiction()
        closing = self._closing_paragraphs(style, sections)
        on = (
            meta.issued_on
            or meta.published_on
            or self.context.issued_on
            or self.context.published_on
        )
        ctx = _Context(self.registry, province, level, on, city)
        unknown: list[str] = []
        out_sections: list[ParsedSection] = []
        all_text: list[str] = list(preamble)
        units: list[tuple[list[str], _Unit]] = []
        carried: _Note | None = None
        for section in sections:
            spath = [section.label] if section.label else []
            group = ctx.note(section.note) if section.note else None
            articles = []
            for art in section.articles:
                text = "\n".join(line for line in art.lines if line).strip()
                all_text.append(text)
                books = [w for w in art.within if w.endswith("编")]
                parts = [w for w in art.within if w.endswith("节")]
                apath = [*books, *spath, *parts, art.label] if art.label else []
                intro = "\n".join(x for x in art.intro if x).strip() if art.items else text
                own = ctx.note_of(intro)
                if own is not None and own.same_below:
                    carried = own
                elif own is None and carried is not None:
                    own = carried.inherited()
                if own is None and group is not None:
                    own = group.inherited()
                items: list[ParsedItem] = []
                item_units: list[tuple[list[str], _Unit]] = []
                for item in art.items:
                    itext = "\n".join(line for line in item.lines if line).strip()
                    inote = ctx.note_of(itext)
                    if inote is not None and inote.same_below:
                        carried = inote
                    elif inote is None and own is not None and own.source != "inherited-next":
                        inote = own.inherited()
                    ipath = [*apath, item.label]
                    unit = _Unit(item.label, item.title, itext, inote)
                    item_units.append((ipath, unit))
                    items.append(self._item(item, itext, ipath, inote, unknown))
                units.append(
                    (
                        apath,
                        _Unit(art.label, art.title, text, own, level="article", leaf=not art.items),
                    )
                )
                units.extend(item_units)
                articles.append(self._article(art, text, apath, own, items, unknown))
            all_text.extend(section.lines)
            out_sections.append(
                ParsedSection(
                    number=section.number,
                    label=section.label,
                    title=section.title,
                    text="\n".join(section.lines),
                    articles=articles,
                )
            )
        if style not in ("plain",) and not any(s.articles for s in out_sections):
            self.warnings.append("no articles found")
        tasks, task_level, tables = self._tasks(style, units, ctx, unknown)
        for note in ctx.notes:
            self.warnings.append(note)
        all_text.append(closing)
        cited = [d for d in find_doc_numbers("\n".join(all_text)) if d != meta.doc_number]
        self._effective_date(out_sections, closing)
        levels = self._levels(style, out_sections)
        return ParsedDocument(
            title=meta.title,
            doc_number=meta.doc_number,
            issuer="、".join(meta.issuers) if meta.issuers else None,
            issuers=meta.issuers,
            addressees=meta.addressees,
            issued_on=meta.issued_on,
            published_on=meta.published_on,
            effective_on=meta.effective_on,
            source=meta.source,
            cited_documents=cited,
            province=province,
            jurisdiction=level,
            style=style,
            levels=levels,
            task_level=task_level,
            preamble="\n".join(preamble),
            sections=out_sections,
            closing=closing,
            tasks=tasks,
            tables=tables,
            metadata_sources=dict(meta.sources),
            warnings=self.warnings,
            unknown_departments=unknown,
        )

    def _closing_paragraphs(self, style: str, sections: list[_Section]) -> str:
        """Move closing paragraphs (施行, 感谢, 现将…报送) off the last unit into the closing."""
        if style in ("regulation", "plain") or not sections:
            return ""
        last_section = sections[-1]
        if not last_section.articles:
            return ""
        article = last_section.articles[-1]
        target: list[str] = article.items[-1].lines if article.items else article.lines
        cut = next(
            (i for i, line in enumerate(target) if i > 0 and _CLOSING_PARAGRAPH.match(line)), None
        )
        if cut is None:
            return ""
        moved = target[cut:]
        del target[cut:]
        if article.items:
            for line in moved:
                if line in article.lines:
                    article.lines.remove(line)
        return "\n".join(moved)

    def _effective_date(self, sections: list[ParsedSection], closing: str) -> None:
        """施行 date from the last articles or the closing (自…起施行)."""
        last = (a.text for s in reversed(sections) for a in reversed(s.articles))
        for text in [closing, *itertools.islice(last, 3)]:
            if m := _EFFECTIVE.search(text or ""):
                raw = m.group("date")
                if raw.endswith("之日"):
                    # An enclosed plan takes effect when the notice issuing it is dated.
                    issued = self.meta.issued_on or self.context.issued_on
                    self.meta.set("effective_on", issued, "body:印发之日")
                else:
                    self.meta.set("effective_on", parse_date(raw), "body")
                return

    @staticmethod
    def _levels(style: str, sections: list[ParsedSection]) -> list[str]:
        levels: list[str] = []
        if any(s.label.startswith("第") for s in sections):
            levels.append("第X章")
        elif any(s.label for s in sections):
            levels.append("一、")
        articles = [a for s in sections for a in s.articles if a.label]
        within = [w for a in articles for w in a.path[:-1] if w.endswith(("编", "节"))]
        if any(w.endswith("编") for w in within):
            levels.insert(0, "第X编")
        if any(w.endswith("节") for w in within):
            levels.append("第X节")
        if articles:
            first = articles[0].label
            clauses = any(len(a.clauses) > 1 for a in articles)
            levels.append(
                "第X条"
                if first.startswith("第")
                else "一、"
                if first.endswith("、")
                else "1."
                if first.endswith(".")
                else "(一)"
            )
            if clauses:
                levels.append("款")
        items = [i for a in articles for i in a.items]
        if items:
            first = items[0].label
            levels.append(
                "(一)"
                if first.startswith("(") and not first[1].isdigit()
                else "(1)"
                if first.startswith("(")
                else "①"
                if first in _CIRCLED
                else "1."
            )
        return levels

    def _is_task_table(self, rows: list[list[str]]) -> bool:
        return _task_columns(rows) is not None

    def _tasks(
        self,
        style: str,
        units: list[tuple[list[str], _Unit]],
        ctx: _Context,
        unknown: list[str],
    ) -> tuple[list[TaskOut], str | None, list[ParsedTable]]:
        """The task breakdown: the units of the level carrying the notes, merged with task tables."""
        by_level: dict[str, list[tuple[list[str], _Unit]]] = {}
        for path, unit in units:
            if path:
                by_level.setdefault(_level_of(unit.label), []).append((path, unit))
        chosen = self.task_level_choice
        if chosen is None:
            noted = [
                lvl
                for lvl, us in by_level.items()
                if any(u.note is not None and u.note.source == "note" for _, u in us)
            ]
            # Notes on one level: its units are the tasks; spread over levels: the leaves are.
            chosen = noted[0] if len(noted) == 1 else "leaves" if noted else None
        tasks: list[TaskOut] = []
        if chosen == "leaves":
            tasks = [unit.task(path) for path, unit in units if path and unit.leaf]
        elif chosen is not None:
            for path, unit in by_level.get(chosen, []):
                tasks.append(unit.task(path))
        tables: list[ParsedTable] = []
        for rows in self.tables:
            columns = _task_columns(rows)
            tables.append(ParsedTable(rows=rows, task_table=columns is not None))
            if columns is None:
                continue
            header_at, cols = columns
            by_label = {t.label.rstrip(".、"): t for t in tasks}
            for row in rows[header_at + 1 :]:
                if row == rows[header_at]:
                    continue  # the header printed again (a table across pages, a pasted copy)
                cell = {k: (row[i].strip() if i < len(row) else "") for k, i in cols.items()}
                label = cell.get("number", "") or str(len(tasks) + 1)
                lead = ctx.refs(cell.get("lead", ""), "lead")
                support = [
                    r
                    for r in ctx.refs(cell.get("support", ""), "cooperating")
                    if r.name not in {x.name for x in lead}
                ]
                existing = by_label.get(label) if tasks else None
                if existing is not None:
                    existing.lead = existing.lead or lead
                    existing.support = existing.support or support
                    existing.deadline = cell.get("deadline") or existing.deadline
                    existing.source = "note+table"
                    continue
                tasks.append(
                    TaskOut(
                        path=[label],
                        label=label,
                        title=cell.get("title", ""),
                        text=cell.get("text", ""),
                        lead=lead,
                        support=support,
                        deadline=cell.get("deadline") or None,
                        source="table",
                    )
                )
            if chosen is None:
                chosen = "table"
        for task in tasks:
            for ref in [*task.lead, *task.support]:
                if not ref.known and ref.name not in unknown:
                    unknown.append(ref.name)
                    self.warnings.append(
                        f"department not in the registry: {ref.name!r} (task {'/'.join(task.path)}); kept as written"
                    )
        return tasks, chosen, tables

    def _article(
        self,
        art: _Article,
        text: str,
        path: list[str],
        note: _Note | None,
        items: list[ParsedItem],
        unknown: list[str],
    ) -> ParsedArticle:
        refs = list(note.refs) if note else []
        implementers = list(note.implementers) if note else []
        seen = {r.name for r in refs}
        for item in items:
            for ref in item.department_refs:
                if ref.name not in seen:
                    seen.add(ref.name)
                    refs.append(ref.model_copy(update={"role": "lead" if not refs else ref.role}))
            implementers += [i for i in item.implementers if i not in implementers]
        self._flag_unknown(refs, art.label, unknown)
        return built(
            ParsedArticle,
            number=art.number,
            label=art.label,
            title=art.title,
            text=text,
            path=path,
            clauses=["\n".join(c) for c in art.clauses],
            responsibility_note=note.text if note and note.source == "note" else None,
            departments=[r.name for r in refs],
            implementers=implementers,
            department_refs=refs,
            quantities=quantities_of(text),
            topics=tag_topics(art.title, text),
            items=items,
        )

    def _item(
        self, item: _Item, text: str, path: list[str], note: _Note | None, unknown: list[str]
    ) -> ParsedItem:
        refs = list(note.refs) if note else []
        self._flag_unknown(refs, "/".join(path), unknown)
        return built(
            ParsedItem,
            number=item.number,
            label=item.label,
            title=item.title,
            text=text,
            path=path,
            clause=item.clause,
            responsibility_note=note.text if note and note.source == "note" else None,
            departments=[r.name for r in refs],
            implementers=list(note.implementers) if note else [],
            department_refs=refs,
            quantities=quantities_of(text),
        )

    def _flag_unknown(self, refs: list[DepartmentRef], where: str, unknown: list[str]) -> None:
        for ref in refs:
            if not ref.known and ref.name not in unknown:
                unknown.append(ref.name)
                self.warnings.append(
                    f"department not in the registry: {ref.name!r} (article {where}); kept as written"
                )


def _level_of(label: str) -> str:
    """The numbering level a label belongs to: 一、 (一) 1. (1) ① 第X章 第X条."""
    if label.startswith("第"):
        return "第X章" if label.endswith("章") else "第X条"
    if label.endswith("、"):
        return "一、"
    if label.endswith("."):
        return "1."
    if label in _CIRCLED:
        return "①"
    if label.startswith("(") and label[1:2].isdigit():
        return "(1)"
    return "(一)"


def _task_columns(rows: list[list[str]]) -> tuple[int, dict[str, int]] | None:
    """Where the header row of a task table is and which column holds what, or None."""
    for at, row in enumerate(rows[:3]):
        cols: dict[str, int] = {}
        for i, cell in enumerate(row):
            key = next((k for k, rx in _TASK_HEADERS.items() if rx.match(cell.strip())), None)
            if key and key not in cols:
                cols[key] = i
        if "lead" in cols and len(cols) >= 3:
            return at, cols
    return None


@dataclass
class _Note:
    """A parsed responsibility note: departments by role, implementers, and its instructions."""

    text: str
    refs: list[DepartmentRef]
    lead: list[DepartmentRef]
    support: list[DepartmentRef]
    implementers: list[str]
    same_below: bool = False  # 下同: applies to the following units without their own note
    source: str = "note"

    def inherited(self) -> _Note:
        """The same note applied to a unit that has none of its own."""
        return _Note(
            self.text, self.refs, self.lead, self.support, self.implementers, False, "inherited"
        )


@dataclass
class _Unit:
    label: str
    title: str
    text: str
    note: _Note | None
    level: str = "item"
    leaf: bool = True

    def task(self, path: list[str]) -> TaskOut:
        note = self.note
        return built(
            TaskOut,
            path=list(path),
            label=self.label,
            title=self.title,
            text=self.text,
            lead=list(note.lead) if note else [],
            support=list(note.support) if note else [],
            implementers=list(note.implementers) if note else [],
            deadline=None,
            note=note.text if note else None,
            source=note.source if note else "note",
        )


@dataclass
class _Context:
    """What a note's names mean in this document: its registry, province, level and date."""

    registry: Registry
    province: str | None
    level: str | None
    on: dt.date | None
    city: str | None
    notes: list[str] = field(default_factory=list)
    cache: dict[str, Resolved] = field(default_factory=dict)
    # Notes repeat ("省工信厅牵头" on dozens of units): each is read once; its refs are shared.
    seen_notes: dict[str, _Note] = field(default_factory=dict)

    def note_of(self, text: str) -> _Note | None:
        m = _NOTE.search(text)
        if not m or not _NOTE_VERB.search(m.group("body")):
            return None
        return self.note(m.group(0))

    def note(self, note_text: str) -> _Note:
        body = note_text.strip()[1:-1]
        if (known := self.seen_notes.get(body)) is not None:
            return known
        parsed = parse_note(body)
        lead = self._resolve(parsed.lead, "lead", parsed.hints)
        names_lead = {r.name for r in lead}
        support = [
            r for r in self._resolve(parsed.support, None, parsed.hints) if r.name not in names_lead
        ]
        refs = [*lead, *support]
        note = _Note(
            f"({body})", refs, lead, support, parsed.implementers, parsed.same_below, "note"
        )
        self.seen_notes[body] = note
        return note

    def refs(self, cell: str, role: str) -> list[DepartmentRef]:
        parsed = parse_note(cell, default_role="lead" if role == "lead" else "support")
        names = parsed.lead + [n for n in parsed.support if n not in parsed.lead]
        if role == "lead":
            return self._resolve([(n, "lead") for n, _ in names], "lead", parsed.hints)
        return self._resolve([(n, "cooperating") for n, _ in names], None, parsed.hints)

    def _resolve(
        self, names: list[tuple[str, str]], force: str | None, hints: dict[str, str]
    ) -> list[DepartmentRef]:
        refs: list[DepartmentRef] = []
        seen: set[str] = set()
        for name, role in names:
            key = hints.get(name, name)
            resolved = self.cache.get(key)
            if resolved is None:
                resolved = self.registry.resolve(
                    key, province=self.province, level=self.level, on=self.on, city=self.city
                )
                self.cache[key] = resolved
            if resolved.name in seen:
                continue
            seen.add(resolved.name)
            if resolved.note and resolved.note not in self.notes:
                self.notes.append(resolved.note)
            refs.append(
                DepartmentRef(
                    as_written=name,
                    name=resolved.name,
                    code=resolved.code,
                    full_name=resolved.full_name,
                    known=resolved.known,
                    role=force or role,
                )
            )
        return refs


def _prefix_len(text: str, pos: int, prefix: str) -> int:
    """Distance back from ``pos`` to ``prefix`` (skipping spaces)."""
    j = pos - 1
    while j >= 0 and text[j] == " ":
        j -= 1
    return pos - j if j >= 0 and text[j] == prefix else 0


_TITLE_SENTENCE = re.compile(r"^([^。!?;]{1,40}?)[。!?;]\s*(.*)$")


def _split_title(rest: str) -> tuple[str, str]:
    """Split the rest of an article's marker line into its title and the start of its body."""
    rest = rest.strip()
    if not rest:
        return "", ""
    m = _TITLE_SENTENCE.match(rest)
    if m and ("," not in m.group(1) or (len(m.group(1)) <= 20 and m.group(1).count(",") == 1)):
        return m.group(1).strip(), m.group(2).strip()
    if "。" not in rest and len(rest) <= 40 and "," not in rest:
        return rest, ""
    return "", rest


@dataclass
class ParsedNote:
    """Names of a responsibility note by role, before the registry reads them."""

    lead: list[tuple[str, str]]  # (name, role): role "lead", "responsible" or "cooperating"
    support: list[tuple[str, str]]
    implementers: list[str]
    same_below: bool
    hints: dict[str, str] = field(default_factory=dict)  # name as written → name to look up


_ROLE_TAIL = re.compile(
    r"(?P<role>按照?职责分工负责|按照?职责负责|按职责分工落实|按职责落实|分工负责|分工落实|负责落实|牵头负责|共同负责|"
    r"负责|牵头|配合|参与|协助|支持|组织实施|抓好落实|具体实施|具体落实|贯彻落实|结合实际落实|结合实际抓好落实|"
    r"共同推进|推进|落实)$"
)
_IMPLEMENT_ROLES = (
    "组织实施",
    "抓好落实",
    "负责落实",
    "具体实施",
    "具体落实",
    "贯彻落实",
    "结合实际落实",
    "结合实际抓好落实",
    "按职责落实",
)
_LABELLED_ROLE = re.compile(
    r"^(?P<label>牵头单位|牵头部门|责任单位|责任部门|负责部门|负责单位|主责单位|配合单位|配合部门|参与单位|实施单位|适用范围|完成时限|时间节点)[:：]\s*(?P<names>.*)$"
)


_SEMI = re.compile(r"[;；]")
_COMMA = re.compile(r"[,，]")
_PREFIX_OF = re.compile(r"^(省委|省|市委|市(?!场))")
_HAS_LEVEL = re.compile(r"[省市]")
_DEPT_END = re.compile(r"(厅|委|局|办|社|会)$")
_VERTICAL = re.compile(r"^[\u4e00-\u9fff]{2,3}(金融监管局|银保监局|证监局|监管局)$")
_BY = re.compile(r"^(由|请)")
_ETC_TAIL = re.compile(r"等[^、,，]*$")
_NAME_SPLIT = re.compile(r"[、,，\s]+")
_ETC = re.compile(r"(等单位|等部门|等)$")
_PAREN_TAIL = re.compile(r"\([^()]*\)$")


def parse_note(body: str, *, default_role: str = "responsible") -> ParsedNote:
    """Split a responsibility note into lead, supporting and implementing names (see _parse_note)."""
    cached = _parse_note(body, default_role)
    return ParsedNote(
        list(cached.lead),
        list(cached.support),
        list(cached.implementers),
        cached.same_below,
        dict(cached.hints),
    )


@lru_cache(maxsize=4096)
def _parse_note(body: str, default_role: str) -> ParsedNote:
    """Split a responsibility note into lead, supporting and implementing names (as written).

    Forms understood, alone or combined: "X牵头，Y配合", "X、Y按职责分工负责", "X负责；各市州政府组织
    实施", "X会同Y", "负责部门：X；适用范围：…", "X（下同）" and "列第一位者为牵头单位" (instructions,
    not names). Without 牵头 the first name listed leads. Names after the first sharing its 省 (or
    市) prefix get it (省工业和信息化厅、科技厅 → 省科技厅); "等单位", "各有关单位" add no name.
    """
    same_below = "下同" in body
    body = re.sub(
        r"[,，;；]?\s*(下同|列第一位(?:的|者)?为牵头单位|排在第一位(?:的|者)?为牵头单位)\s*",
        "；",
        body,
    )
    leads: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    implementers: list[str] = []
    explicit_lead = False
    for part in _SEMI.split(body):
        part = part.strip(" ,，")
        if not part:
            continue
        labelled = _LABELLED_ROLE.match(part)
        if labelled:
            label, names_text = labelled.group("label"), labelled.group("names")
            if label in ("适用范围", "完成时限", "时间节点"):
                continue
            names = _note_names(names_text)
            if label.startswith(("牵头", "主责")):
                leads.extend((n, "lead") for n in names)
                explicit_lead = True
            elif label.startswith(("配合", "参与")):
                others.extend((n, "cooperating") for n in names)
            elif label == "实施单位":
                implementers.extend(names)
            else:
                others.extend((n, "responsible") for n in names)
            continue
        pending: list[str] = []
        for clause in _COMMA.split(part):
            clause = clause.strip()
            if not clause:
                continue
            role_m = _ROLE_TAIL.search(clause)
            if role_m is None and "会同" not in clause:
                pending.append(clause)
                continue
            role = role_m.group("role") if role_m else ""
            text = clause[: role_m.start()] if role_m else clause
            groups = [*pending, text]
            pending = []
            joined = "、".join(g for g in groups if g)
            head, _, partner = joined.partition("会同")
            names = _note_names(head)
            partners = _note_names(partner)
            if role in _IMPLEMENT_ROLES or (names and all(n.startswith("各") for n in names)):
                implementers.extend(names)
                continue
            if role.startswith("牵头") or (partner and not role.startswith(("配合", "参与"))):
                leads.extend((n, "lead") for n in names)
                explicit_lead = explicit_lead or role.startswith("牵头") or bool(partner)
            elif role in ("配合", "参与", "协助", "支持"):
                others.extend((n, "cooperating") for n in names)
            else:
                others.extend((n, "responsible") for n in names)
            others.extend((n, "cooperating") for n in partners)
        if pending:
            names = _note_names("、".join(pending))
            if default_role == "lead":
                leads.extend((n, "lead") for n in names)
                explicit_lead = True
            else:
                others.extend(
                    (n, "responsible" if default_role == "responsible" else "cooperating")
                    for n in names
                )
    hints = _share_prefix([*leads, *others])
    if not explicit_lead and others and default_role != "support":
        first = others.pop(0)
        leads = [(first[0], "lead")]
    return ParsedNote(leads, others, implementers, same_below, hints)


def _share_prefix(names: list[tuple[str, str]]) -> dict[str, str]:
    """省工业和信息化厅、科技厅 → 省科技厅: a bare department name takes the 省/市 of the one before."""
    hints: dict[str, str] = {}
    prefix = ""
    for name, _ in names:
        m = _PREFIX_OF.match(name)
        if m:
            prefix = "省" if m.group(1).startswith("省") else "市"
        elif (
            prefix
            and not _LEVEL_PREFIX.match(name)
            and not _HAS_LEVEL.search(name.replace("市场", ""))
            and _DEPT_END.search(name)
        ):
            if not _VERTICAL.match(name):
                hints[name] = prefix + name
    return hints


def _note_names(clause: str) -> list[str]:
    clause = _BY.sub("", clause.strip())
    clause = _ETC_TAIL.sub("", clause)
    names: list[str] = []
    for raw in _NAME_SPLIT.split(clause):
        name = _ETC.sub("", raw.strip())
        name = _PAREN_TAIL.sub("", name).strip()  # 省市场监管局(省知识产权局): one body
        if not name or _GENERIC_DEPT.match(name) or len(name) < 2:
            continue
        if name not in names:
            names.append(name)
    return names


def parse_responsibility(
    text: str,
    registry: Registry,
    province: str | None = None,
    *,
    level: str | None = None,
    on: dt.date | None = None,
) -> tuple[str | None, list[DepartmentRef], list[str]]:
    """Parse the trailing responsibility note: departments in order (first = lead) and implementers."""
    ctx = _Context(registry, province, level, on, None)
    note = ctx.note_of(text)
    if note is None:
        return None, [], []
    return note.text, note.refs, note.implementers


def to_simplified(text: str) -> tuple[str, bool]:
    """A text in traditional characters converted to simplified (and whether it was)."""
    sample = text[:5_000]
    converted = _T2S().convert(sample)
    changed = (
        sum(map(operator.ne, sample, converted)) if len(converted) == len(sample) else len(sample)
    )
    cjk = len(_CJK.findall(sample)) or 1
    if changed < 0.03 * cjk:
        return text, False
    return _T2S().convert(text), True


@lru_cache(maxsize=1)
def _T2S() -> Any:  # noqa: N802 - a cached converter, used like a constant
    import opencc

    return opencc.OpenCC("t2s")


# A notice or order whose body is another document: 现将《X》印发给你们, 《X》…现转发给你们,
# 《X》已经…通过，现予公布.
_ENCLOSES = re.compile(r"《(?P<title>[^《》]{4,80})》[^。《]{0,60}?(?P<verb>印发|转发|公布|发布)")
_ATTACHMENT_LABEL = re.compile(r"^附件\s*\d*\s*:?$")
_ORDER_HEAD = re.compile(r"^(?:中华人民共和国)?(?P<issuer>[\u4e00-\u9fff]{2,20}?)令$")
_SIGNATORY = re.compile(
    r"^(?:总理|省长|市长|主席|部长|主任|局长|署长|行长)\s*[\u4e00-\u9fff]{2,4}$"
)
_ORDER_NUMBER = re.compile(rf"^第\s*(?P<seq>{_CN}|\d+)\s*号$")


def _enclosure(lines: list[str]) -> tuple[int, int, str, str] | None:
    """Whether the text encloses another document, named in 《》 by a sentence near its head that
    印发/转发/公布 it and printed as a title line further down: (end of the enclosing part, line
    of the enclosed title, that title, the relation)."""
    index: dict[str, int] | None = None
    for i, line in enumerate(lines[:80]):
        m = _ENCLOSES.search(line) if "《" in line else None
        if m is None:
            continue
        if index is None:
            # Title lines by their text without spaces, built once and only for such texts.
            index = {}
            for j, other in enumerate(lines):
                if 4 <= len(other) <= 120:
                    index.setdefault(re.sub(r"\s+", "", other), j)
        title = re.sub(r"\s+", "", m.group("title"))
        start = index.get(title)
        if start is None or start <= i:
            continue
        cut = start
        while cut > i + 1 and (
            not lines[cut - 1].strip() or _ATTACHMENT_LABEL.match(lines[cut - 1].strip())
        ):
            cut -= 1
        verb = m.group("verb")
        return cut, start, title, "公布" if verb in ("公布", "发布") else verb
    return None


def _enclosing(
    lines: list[str],
    enclosure: tuple[int, int, str, str],
    registry: Registry,
    task_level: str | None,
) -> ParsedDocument:
    """Parse a notice or order and the document it encloses: the enclosing one's metadata, the
    enclosed one's structure, and the enclosed one's own metadata under ``enclosed``."""
    cut, start, title, relation = enclosure
    head = [line.strip() for line in lines[:cut]]
    outer_parser = _Parser("\n".join(head), registry)
    outer = outer_parser.build()
    meta = outer_parser.meta
    # An order (国务院令 第728号) signs with the premier's name above the date: its number and
    # issuer are in its head, its date is the last line of its signature.
    heading = [line for line in head if line]
    signing: set[str] = set()
    if len(heading) >= 2 and (m := _ORDER_HEAD.match(heading[0])):
        if (n := _ORDER_NUMBER.match(heading[1])) and m.group("issuer") != "主席":
            meta.set("doc_number", f"{m.group('issuer')}令第{cn_number(n.group('seq'))}号", "head")
            meta.set("issuers", [m.group("issuer")], "head")
            signing = {heading[1], *(x for x in heading if _SIGNATORY.match(x))}
    if meta.issued_on is None:
        dated = next((x for x in reversed(heading) if _SIGNATURE_DATE.match(x)), None)
        if dated is not None and (on := parse_date(dated)) is not None:
            meta.set("issued_on", on, "signature")
    inner = _Parser("\n".join(lines[start:]), registry, task_level, context=meta).build()
    parts = (outer.preamble, *(a.text for a in outer.articles()), outer.closing)
    text = "\n".join(x for part in parts for x in part.split("\n") if x and x not in signing)
    cited = [*outer.cited_documents, *inner.cited_documents]
    warnings = [w for w in outer.warnings if not w.startswith("no recognisable structure")]
    return inner.model_copy(
        update={
            "title": meta.title,
            "doc_number": meta.doc_number,
            "issuer": "、".join(meta.issuers) if meta.issuers else None,
            "issuers": meta.issuers,
            "addressees": meta.addressees,
            "issued_on": meta.issued_on,
            "published_on": meta.published_on or inner.published_on,
            "effective_on": outer.effective_on or inner.effective_on,
            "source": meta.source or inner.source,
            "cited_documents": [d for d in dict.fromkeys(cited) if d != meta.doc_number],
            "preamble": text,
            "metadata_sources": dict(meta.sources),
            "warnings": [*warnings, *inner.warnings],
            "enclosed": EnclosedDocument(
                title=title,
                relation=relation,
                issuers=inner.issuers,
                addressees=inner.addressees,
                issued_on=inner.issued_on,
                effective_on=inner.effective_on,
                preamble=inner.preamble,
                metadata_sources=inner.metadata_sources,
            ),
        }
    )


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while a document is built.

    A long document builds tens of thousands of small objects that all stay alive; the collector
    would rescan them again and again (a quarter of the parse time on a 500 KB page) for no
    garbage. Reference counting still frees everything as usual. Afterwards the new objects go
    straight to the oldest generation (freeze, then unfreeze, which moves lists, not objects):
    otherwise the first young collection would walk all of them at once (a tenth of the parse),
    only to find them alive. Cyclic garbage among them is still found by the next full collection.
    When something else holds objects frozen, that is left as it is and the young collection runs.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def parse_text(
    text: str, *, registry: Registry | None = None, task_level: str | None = None
) -> ParsedDocument:
    """Parse normalised (or raw) policy text into its structure.

    ``task_level`` names the numbering level whose units are the tasks ("一、", "(一)", "1.",
    "第X条" …); by default the level carrying the most responsibility notes. A text in traditional
    characters is read in simplified ones (with a warning saying so).
    """
    return _parse_normalized(normalize_text(text), registry, task_level)


def _parse_normalized(
    text: str, registry: Registry | None, task_level: str | None
) -> ParsedDocument:
    simplified, converted = to_simplified(text)
    registry = registry or default_registry()
    with _without_cycle_collection():
        lines = simplified.split("\n")
        enclosure = _enclosure(lines)
        if enclosure is None:
            doc = _Parser(simplified, registry, task_level).build()
        else:
            doc = _enclosing(lines, enclosure, registry, task_level)
    if converted:
        doc.warnings.insert(
            0,
            "繁体文本已转换为简体后解析 / the text is in traditional characters: read in simplified",
        )
    return doc


def parse_source(
    source: SourceText, *, registry: Registry | None = None, task_level: str | None = None
) -> ParsedDocument:
    """Parse an ingested file (its decoding notes become warnings)."""
    # Ingesting normalised the text already: a long page is not normalised twice.
    doc = _parse_normalized(source.text, registry, task_level)
    if source.notes:
        doc.warnings = [*source.notes, *doc.warnings]
    return doc
