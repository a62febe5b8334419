"""Structure parser for Chinese policy documents.

Recognises metadata (title, 文号, issuer, 主送, 成文日期, publication date and source of a web page,
cited document numbers), the hierarchy of opinions (一、 sections; (一) articles), regulations
(第一章 chapters; 第一条 articles) and notices (一、 items only), each article's responsibility note,
quantities and topics. Messy real texts are expected: articles glued onto the previous line are
split where the numbering says a new one begins, numbering gaps become warnings, and site chrome
(navigation, breadcrumbs, view counters, copyright lines) is dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

import cn2an

from huiqi.policy.departments import Registry, default_registry, province_of
from huiqi.policy.ingest import SourceText, normalize_text
from huiqi.policy.quantities import find_quantities
from huiqi.policy.schemas import (
    DepartmentRef,
    ParsedArticle,
    ParsedDocument,
    ParsedSection,
    QuantityOut,
)
from huiqi.policy.topics import tag_topics

CN_NUM = "零〇一二三四五六七八九十百两"
_CN = f"[{CN_NUM}]+"

# Line-start markers.
RE_CHAPTER = re.compile(rf"^第\s*({_CN}|\d+)\s*章\s*(.*)$")
RE_PART = re.compile(rf"^第\s*({_CN}|\d+)\s*节\s*(.*)$")
RE_REG_ARTICLE = re.compile(rf"^第\s*({_CN}|\d+)\s*条(\s*)(.*)$")
RE_SECTION = re.compile(r"^([一二三四五六七八九十]{1,3})\s*、\s*(.*)$")
RE_ARTICLE = re.compile(r"^\(\s*([一二三四五六七八九十百]{1,4})\s*\)\s*(.*)$")
# The same markers glued after the end of a sentence or of a responsibility note.
RE_GLUED_ARTICLE = re.compile(r"(?<=[。;)”!])\s*\(\s*([一二三四五六七八九十百]{1,4})\s*\)")
RE_GLUED_SECTION = re.compile(r"(?<=[。;)”!])\s*([一二三四五六七八九十]{1,3})\s*、")
RE_GLUED_REG_ARTICLE = re.compile(rf"(?<=[。;:”])\s*第\s*({_CN})\s*条\s")

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

_CHROME_STRONG = re.compile(
    r"版权所有|Copyright|©|ICP备|ICP证|公网安备|网站标识码|技术支持[:：]|主办单位[:：]|承办单位[:：]|"
    r"网站地图|您当前的位置|当前位置[:：]|您现在的位置|浏览次数|访问次数|阅读次数|点击数[:：]|"
    r"打印本页|关闭窗口|【打印】|【关闭】|【字体|字号[:：]|分享到|扫一扫在手机|视力保护色|\[打印\]|\[关闭\]",
    re.I,
)
_CHROME_WEAK = re.compile(
    r"^(地址|邮箱|电子邮箱|电话|联系电话|邮编|传真|E-?mail)[:：]|联系我们|政务服务网|^首页$", re.I
)
_LABELED = re.compile(
    r"^(索引号|主题分类|发文机关|发布机构|发文字号|文号|成文日期|发布日期|发文日期|标题|名称|主题词|有效性|生效日期|体裁分类|公文种类)[:：]\s*(.*)$"
)
_SOURCE = re.compile(r"(?:来源|信息来源|发布机构)[:：]\s*([^\s:：]+)")
_PUBLISHED = re.compile(
    r"(?:日期|发布时间|发布日期|时间)[:：]\s*(\S+(?:\s*\d{1,2}:\d{2}(?::\d{2})?)?)"
)
_PROMULGATION = re.compile(
    r"^[(（]?\s*(?P<date>.{8,14}日)\s*(?P<what>.*?)(公布|发布|修订|通过|施行|修正)\s*[)）]?$"
)
_NOTE = re.compile(r"[(（](?P<body>[^()（）]{2,600})[)）]\s*$")
_NOTE_VERB = re.compile(r"(负责|组织实施|分工落实|牵头|配合|抓好落实|具体实施|共同推进)")
_NOTE_IMPLEMENT = re.compile(r"(组织实施|抓好落实|负责落实|具体实施|具体落实|贯彻落实)$")
_NOTE_TAIL = re.compile(
    r"(按照?职责分工负责|按照?职责负责|按职责分工落实|分工负责|分工落实|负责落实|牵头负责|共同负责|负责|牵头|配合|参与|"
    r"组织实施|抓好落实|具体实施|具体落实|贯彻落实|共同推进)$"
)
_ISSUER_LINE = re.compile(
    r"^[\u4e00-\u9fff()（）]{3,40}(厅|局|委|委员会|政府|办公室|办公厅|院|部|会|中心|支行|分行|海关)$"
)
_CLOSING = re.compile(
    r"^(附件\s*[:：\d]|附件$|联系人[:：]|联系电话[:：]|联系方式[:：]|抄送[:：]|[(（]此件)"
)
_ADDRESSEE_SPLIT = re.compile(r"[、,，;；]")


def quantities_of(text: str) -> list[QuantityOut]:
    """The quantitative commitments of an article's text, in output form."""
    return [
        QuantityOut(
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
    found: list[tuple[int, str]] = []
    for m in DOC_NUMBER.finditer(text):
        found.append((m.start(), normalize_doc_number(m)))
    for m in DECREE_NUMBER.finditer(text):
        found.append((m.start(), normalize_doc_number(m)))
    out: list[str] = []
    for _, number in sorted(found):
        if number not in out:
            out.append(number)
    return out


@dataclass
class _Article:
    number: int
    label: str
    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class _Section:
    number: int
    label: str
    title: str
    lines: list[str] = field(default_factory=list)
    articles: list[_Article] = field(default_factory=list)


@dataclass
class _Meta:
    title: str | None = None
    doc_number: str | None = None
    issuer: str | None = None
    addressees: list[str] = field(default_factory=list)
    issued_on: dt.date | None = None
    published_on: dt.date | None = None
    source: str | None = None


def _clean_line(line: str) -> str:
    line = line.strip()
    line = re.sub(r"^#{1,6}\s*", "", line)
    line = re.sub(r"<!--.*?-->", "", line)
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


class _Parser:
    def __init__(self, text: str, registry: Registry) -> None:
        self.registry = registry
        self.meta = _Meta()
        self.warnings: list[str] = []
        self.lines = [_clean_line(line) for line in text.split("\n")]

    # -- metadata and chrome -------------------------------------------------------------------

    def _take_page_metadata(self, line: str) -> bool:
        """Parse 来源/日期/labelled metadata lines; return True when the line is chrome."""
        labeled = _LABELED.match(line)
        if labeled:
            key, value = labeled.group(1), labeled.group(2).strip()
            if key in ("发文机关", "发布机构") and value and not self.meta.issuer:
                self.meta.issuer = value
            elif key in ("发文字号", "文号") and value:
                m = DOC_NUMBER.search(value) or DECREE_NUMBER.search(value)
                if m:
                    self.meta.doc_number = normalize_doc_number(m)
            elif key == "成文日期":
                self.meta.issued_on = parse_date(value) or self.meta.issued_on
            elif key in ("发布日期", "发文日期"):
                self.meta.published_on = parse_date(value) or self.meta.published_on
            elif key in ("标题", "名称") and value:
                self.meta.title = value
            return True
        has_source = _SOURCE.search(line)
        has_date = _PUBLISHED.search(line)
        if has_source or (has_date and (_CHROME_STRONG.search(line) or len(line) < 40)):
            if has_source and not self.meta.source:
                self.meta.source = has_source.group(1)
            if has_date:
                self.meta.published_on = parse_date(has_date.group(1)) or self.meta.published_on
            return True
        return bool(_CHROME_STRONG.search(line) or _is_nav_line(line) or _is_breadcrumb(line))

    def _split_header(self) -> tuple[int, int]:
        """Find where the body starts and ends; fill title, 文号, 主送 and closing metadata."""
        lines = self.lines
        n = len(lines)
        first_marker = next((i for i, line in enumerate(lines) if self._is_marker_line(line)), n)
        title_at = None
        for i in range(min(first_marker, 60)):
            line = lines[i]
            if not line:
                continue
            if self._take_page_metadata(line):
                lines[i] = ""
                continue
            if title_at is None and _looks_like_title(_strip_site_suffix(line)):
                title_at = i
        if self.meta.title is None and title_at is not None:
            self.meta.title = _strip_site_suffix(lines[title_at])
        if title_at is None:
            title_at = next(
                (
                    i
                    for i in range(min(first_marker, 60))
                    if lines[i] and not lines[i].endswith("。") and len(lines[i]) <= 60
                ),
                -1,
            )
            if title_at >= 0 and self.meta.title is None and title_at < first_marker:
                self.meta.title = lines[title_at]
        start = title_at + 1 if title_at is not None and title_at >= 0 else 0
        for i in range(0, start):
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
                self.meta.doc_number = self.meta.doc_number or normalize_doc_number(m)
                lines[i] = ""
            elif (p := _PROMULGATION.match(line)) and parse_date(p.group("date")):
                self.meta.issued_on = parse_date(p.group("date"))
                if d := DECREE_NUMBER.search(line):
                    self.meta.doc_number = normalize_doc_number(d)
                    issuer = re.sub(r"^中华人民共和国", "", d.group("prefix"))[:-1]
                    self.meta.issuer = issuer or self.meta.issuer
                lines[i] = ""
            elif (
                line.endswith(":")
                and "。" not in line
                and len(line) <= 300
                and not self.meta.addressees
            ):
                self.meta.addressees = [
                    a.strip() for a in _ADDRESSEE_SPLIT.split(line[:-1]) if a.strip()
                ]
                lines[i] = ""
                break
            elif len(line) > 60 or "。" in line:
                break
            i += 1
        end = self._find_end(max(start, first_marker))
        return start, end

    def _find_end(self, body_start: int) -> int:
        """Cut footer chrome and the closing signature/date; return the end of the body."""
        lines = self.lines
        end = len(lines)
        for i in range(body_start, len(lines)):
            if lines[i] and _CHROME_STRONG.search(lines[i]):
                end = i
                break
        while end > body_start and (not lines[end - 1] or _CHROME_WEAK.search(lines[end - 1])):
            end -= 1
        end = self._closing_date(body_start, end)
        return self._cut_closing(body_start, end)

    def _closing_date(self, body_start: int, end: int) -> int:
        """Find the closing date (and issuer lines above it); return where the body ends."""
        lines = self.lines
        # Closing block: a date-only line, optionally preceded by issuer lines, near the end.
        for i in range(end - 1, max(body_start, end - 12) - 1, -1):
            line = lines[i]
            if not line:
                continue
            if (DATE_CN.fullmatch(line) or DATE_ISO.fullmatch(line)) and (date := parse_date(line)):
                self.meta.issued_on = self.meta.issued_on or date
                issuers: list[str] = []
                j = i - 1
                while j > body_start and (not lines[j] or _ISSUER_LINE.match(lines[j])):
                    if lines[j]:
                        issuers.insert(0, lines[j])
                    j -= 1
                if issuers:
                    self.meta.issuer = self.meta.issuer or "、".join(issuers)
                    return j + 1
                return i
        return end

    def _cut_closing(self, body_start: int, end: int) -> int:
        """Attachments, contacts and copy-to lines after the last article close the document."""
        last_marker = max(
            (i for i in range(body_start, end) if self._is_marker_line(self.lines[i])),
            default=body_start,
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
        if reg >= 2 and reg >= art:
            return "regulation"
        if art >= 2:
            return "opinion"
        if sec >= 2:
            return "notice"
        if reg >= 1:
            return "regulation"
        return "plain"

    def build(self) -> ParsedDocument:
        start, end = self._split_header()
        body = [line for line in self.lines[start:end]]
        style = self._style([line for line in body if line])
        preamble: list[str] = []
        sections: list[_Section] = []
        if style == "plain":
            text_lines = [line for line in body if line]
            self.warnings.append(
                "no recognisable structure (no 一、/(一)/第一条 markers): stored as one article"
            )
            sections = [_Section(0, "", "", articles=[_Article(1, "", "", text_lines)])]
        else:
            sections = self._walk(body, style, preamble)
        return self._finish(style, preamble, sections)

    def _walk(self, body: list[str], style: str, preamble: list[str]) -> list[_Section]:
        sections: list[_Section] = []
        state = {"sec": 0, "art": 0}
        current_section: _Section | None = None
        current_article: _Article | None = None

        def ensure_section() -> _Section:
            nonlocal current_section
            if current_section is None:
                current_section = _Section(0, "", "")
                sections.append(current_section)
            return current_section

        def open_section(num: int, label: str, title: str, glued: bool) -> None:
            nonlocal current_section, current_article
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
            current_section = _Section(num, label, title)
            sections.append(current_section)
            current_article = None

        def open_article(num: int, label: str, rest: str, glued: bool) -> None:
            nonlocal current_article
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
            section.articles.append(current_article)

        def add_text(text: str) -> None:
            if not text:
                return
            if current_article is not None:
                current_article.lines.append(text)
            elif current_section is not None:
                current_section.lines.append(text)
            else:
                preamble.append(text)

        for raw in body:
            pending: str | None = raw
            glued = False
            while pending:
                pending = pending.strip()
                marker = self._line_start(style, pending, state)
                if marker is None:
                    head, tail = self._split_glued(style, pending, state)
                    add_text(head)
                else:
                    kind, num, label, rest = marker
                    if kind == "part":
                        break
                    after = dict(state, **({"sec": num} if kind == "section" else {"art": num}))
                    head, tail = self._split_glued(style, rest, after)
                    if kind == "section":
                        open_section(num, label, head, glued)
                    else:
                        open_article(num, label, head, glued)
                pending, glued = tail, True
        return sections

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
            if RE_PART.match(line):
                return "part", 0, "", ""
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
                    candidates.append(m.start())
        elif style == "opinion":
            for m in RE_GLUED_ARTICLE.finditer(text):
                if art < cn_number(m.group(1)) <= art + 3:
                    candidates.append(m.start())
            for m in RE_GLUED_SECTION.finditer(text):
                if sec < cn_number(m.group(1)) <= sec + 2:
                    candidates.append(m.start())
        elif style == "notice":
            for m in RE_GLUED_SECTION.finditer(text):
                if art < cn_number(m.group(1)) <= art + 3:
                    candidates.append(m.start())
        candidates = [c for c in candidates if c > 0]
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
        return f"({cn_label(n)})"

    # -- finishing ------------------------------------------------------------------------------

    def _finish(self, style: str, preamble: list[str], sections: list[_Section]) -> ParsedDocument:
        meta = self.meta
        province = province_of(meta.doc_number, meta.issuer, meta.title)
        if meta.issuer is None and meta.doc_number:
            dept = self.registry.issuer_for_prefix(meta.doc_number)
            if dept is not None:
                meta.issuer = dept.full_name
        unknown: list[str] = []
        out_sections: list[ParsedSection] = []
        all_text: list[str] = list(preamble)
        for section in sections:
            articles = []
            for art in section.articles:
                text = "\n".join(line for line in art.lines if line).strip()
                all_text.append(text)
                articles.append(self._article(art, text, province, unknown))
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
        if style != "plain" and not any(s.articles for s in out_sections):
            self.warnings.append("no articles found")
        cited = [d for d in find_doc_numbers("\n".join(all_text)) if d != meta.doc_number]
        return ParsedDocument(
            title=meta.title,
            doc_number=meta.doc_number,
            issuer=meta.issuer,
            addressees=meta.addressees,
            issued_on=meta.issued_on,
            published_on=meta.published_on,
            source=meta.source,
            cited_documents=cited,
            province=province,
            style=style,
            preamble="\n".join(preamble),
            sections=out_sections,
            warnings=self.warnings,
            unknown_departments=unknown,
        )

    def _article(
        self, art: _Article, text: str, province: str | None, unknown: list[str]
    ) -> ParsedArticle:
        note, refs, implementers = parse_responsibility(text, self.registry, province)
        for ref in refs:
            if not ref.known and ref.name not in unknown:
                unknown.append(ref.name)
                self.warnings.append(
                    f"department not in the registry: {ref.name!r} (article {art.label}); kept as written"
                )
        quantities = quantities_of(text)
        return ParsedArticle(
            number=art.number,
            label=art.label,
            title=art.title,
            text=text,
            responsibility_note=note,
            departments=[r.name for r in refs],
            implementers=implementers,
            department_refs=refs,
            quantities=quantities,
            topics=tag_topics(art.title, text),
        )


def _prefix_len(text: str, pos: int, prefix: str) -> int:
    """Distance back from ``pos`` to ``prefix`` (skipping spaces)."""
    j = pos - 1
    while j >= 0 and text[j] == " ":
        j -= 1
    return pos - j if j >= 0 and text[j] == prefix else 0


def _split_title(rest: str) -> tuple[str, str]:
    """Split the rest of an article's marker line into its title and the start of its body."""
    rest = rest.strip()
    if not rest:
        return "", ""
    m = re.match(r"^([^。!?;]{1,40}?)[。!?;]\s*(.*)$", rest)
    if m and "," not in m.group(1):
        return m.group(1).strip(), m.group(2).strip()
    if "。" not in rest and len(rest) <= 40 and "," not in rest:
        return rest, ""
    return "", rest


def parse_responsibility(
    text: str, registry: Registry, province: str | None = None
) -> tuple[str | None, list[DepartmentRef], list[str]]:
    """Parse the trailing responsibility note: departments in order (first = lead) and implementers."""
    m = _NOTE.search(text)
    if not m or not _NOTE_VERB.search(m.group("body")):
        return None, [], []
    body = m.group("body")
    leads: list[str] = []
    others: list[tuple[str, str]] = []
    implementers: list[str] = []
    for part in re.split(r"[;；]", body):
        for clause in re.split(r"[,，](?=[^、]*?(?:牵头|配合|负责|组织实施|落实|参与))", part):
            clause = clause.strip()
            if not clause:
                continue
            names = _note_names(clause)
            if _NOTE_IMPLEMENT.search(clause) or (names and all(n.startswith("各") for n in names)):
                implementers.extend(names)
            elif "牵头" in clause:
                leads.extend(names)
            elif re.search(r"(配合|参与)$", clause):
                others.extend((n, "cooperating") for n in names)
            else:
                others.extend((n, "responsible") for n in names)
    ordered = [(n, "lead") for n in leads] + others
    refs: list[DepartmentRef] = []
    seen: set[str] = set()
    for i, (name, role) in enumerate(ordered):
        resolved = registry.resolve(name, province=province)
        if resolved.name in seen:
            continue
        seen.add(resolved.name)
        refs.append(
            DepartmentRef(
                as_written=resolved.as_written,
                name=resolved.name,
                code=resolved.code,
                full_name=resolved.full_name,
                known=resolved.known,
                role="lead" if i == 0 else role,
            )
        )
    return f"({body})", refs, implementers


def _note_names(clause: str) -> list[str]:
    clause = _NOTE_TAIL.sub("", clause.strip())
    clause = _NOTE_TAIL.sub("", clause)
    clause = re.sub(r"等[^、]*$", "", clause)
    clause = re.sub(r"^(由|请)", "", clause)
    return [n.strip() for n in re.split(r"[、,，]", clause) if n.strip()] if clause else []


def parse_text(text: str, *, registry: Registry | None = None) -> ParsedDocument:
    """Parse normalised (or raw) policy text into its structure."""
    return _Parser(normalize_text(text), registry or default_registry()).build()


def parse_source(source: SourceText, *, registry: Registry | None = None) -> ParsedDocument:
    """Parse an ingested file."""
    return parse_text(source.text, registry=registry)
