"""Turn an uploaded policy file (bytes) into normalised plain text.

Supported: plain text (UTF-8, GBK/GB18030 detected, not assumed), HTML pages, DOCX and PDF with a
text layer. Everything else is refused with an :class:`IngestError` naming the file and the reason.

Extraction is linear in the size of the input and bounded (:class:`Limits`): a page or Word file
with more elements or paragraphs than a policy document ever has, or a ZIP container that unpacks
to more than its limit, is refused before it is read into memory. Tables are kept as tables: each
row becomes one line between ``[表格]`` and ``[/表格]`` lines, its cells separated by `` | ``; a
two-column table of label cells (``发文字号：``) and value cells becomes ``label：value`` lines.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from huiqi.core.errors import DomainError

MAX_BYTES = 10 * 1024 * 1024
"""Largest file accepted (10 MiB): a policy document is text; anything bigger is not one."""

TABLE_START = "[表格]"
TABLE_END = "[/表格]"
CELL_SEP = " | "


@dataclass(frozen=True)
class Limits:
    """Bounds on what one uploaded document may cost to read (see the README's settings)."""

    max_unzipped_bytes: int = 50 * 1024 * 1024
    max_elements: int = 200_000
    max_paragraphs: int = 50_000


DEFAULT_LIMITS = Limits()

TEXT_SUFFIXES = {".txt", ".text", ".md", ""}
HTML_SUFFIXES = {".html", ".htm", ".shtml", ".xhtml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7z archive",
    b"\x7fELF": "an executable",
    b"MZ": "an executable",
}
_HTML_SNIFF = re.compile(
    rb"^\s*(<!doctype html|<html|<\?xml[^>]*>\s*<html|<head|<body|<meta)", re.I
)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CHROME_TAGS = (
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "iframe",
    "form",
    "button",
    "select",
)
_CHROME_HINT = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|breadcrumb|crumbs?|footer|foot|header|head-?bar|topbar|share|sidebar|"
    r"copyright|banner|position|location|toolbar)([-_ ]|$)",
    re.I,
)
_BLOCK_TAGS = (
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
    "table", "ul", "ol", "dd", "dt", "blockquote", "pre", "title",
)  # fmt: skip


class IngestError(DomainError):
    """A file that cannot be read as a policy document; the message names the file and the reason."""

    def __init__(self, filename: str, reason: str) -> None:
        zh, sep, en = reason.partition(" / ")
        if not sep:
            zh, en = _reason_zh(reason), reason
        super().__init__(f"{filename}:{zh}", f"{filename}: {en}")
        self.filename = filename
        self.reason = reason


# The Chinese of the reasons written in English below (a reason given as "中文 / English" needs none).
_KIND_ZH = {
    "a PNG image": "PNG 图片",
    "a JPEG image": "JPEG 图片",
    "a GIF image": "GIF 图片",
    "a gzip archive": "gzip 压缩包",
    "a RAR archive": "RAR 压缩包",
    "a 7z archive": "7z 压缩包",
    "an executable": "可执行程序",
}
_REASONS_ZH: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"the file is empty"), "文件为空"),
    (re.compile(r"binary content, not a text document"), "文件是二进制内容,不是文本文件"),
    (
        re.compile(r"the file is too large \(([\d,]+) bytes; the limit is ([\d,]+)\)"),
        r"文件过大(\1 字节,上限 \2 字节)",
    ),
    (re.compile(r"the file is too large \(more than ([\d,]+) bytes\)"), r"文件过大(超过 \1 字节)"),
    (
        re.compile(r"cannot determine the text encoding.*"),
        "无法识别文本编码(已尝试 UTF-8、GBK/GB18030 与自动识别)",
    ),
    (
        re.compile(r"starts with a UTF-(8|16) mark but is not UTF-\1.*"),
        r"文件以 UTF-\1 标记开头,但内容不是 UTF-\1 编码",
    ),
    (re.compile(r"damaged ZIP/DOCX container"), "ZIP/DOCX 文件已损坏"),
    (re.compile(r"not a readable DOCX file.*"), "不是可读取的 DOCX 文件"),
    (re.compile(r"not a readable PDF file"), "不是可读取的 PDF 文件"),
    (re.compile(r"cannot read the PDF.*"), "无法读取该 PDF 文件"),
    (
        re.compile(r"the PDF has no text layer.*"),
        "PDF 没有文字层(可能是扫描图片),请先进行文字识别(OCR)",
    ),
    (
        re.compile(r"unsupported format: a spreadsheet.*"),
        "不支持的格式:这是电子表格(XLSX),不是公文",
    ),
    (re.compile(r"unsupported format: a ZIP archive.*"), "不支持的格式:这是 ZIP 压缩包,不是公文"),
    (
        re.compile(r"unsupported format: legacy Word/Excel.*"),
        "不支持旧版 Word/Excel 格式(.doc/.xls),请另存为 .docx",
    ),
    (
        re.compile(r"unsupported format: (.*), not a text document"),
        lambda m: f"不支持的格式:这是{_KIND_ZH.get(m.group(1), m.group(1))},不是文本文件",
    ),
    (re.compile(r"the content is not a (\w+) file"), r"文件内容不是 \1 格式"),
    (
        re.compile(r"unsupported file type .*"),
        "不支持的文件类型,请上传 .txt、.html、.docx 或 .pdf 文件",
    ),
    (re.compile(r"no Chinese text found.*"), "未找到中文内容,不像政策文件"),
    (re.compile(r"cannot read the file.*"), "无法读取该文件"),
    (re.compile(r"is a directory, not a file"), "这是文件夹,不是文件"),
]


def _reason_zh(reason: str) -> str:
    """The Chinese of an English refusal reason (a plain Chinese sentence when none is listed)."""
    for pattern, zh in _REASONS_ZH:
        if pattern.fullmatch(reason):
            return pattern.sub(zh, reason)
    return "无法作为政策文件读取"


@dataclass(frozen=True)
class SourceText:
    """Normalised text of one ingested file, with how it was read."""

    filename: str
    kind: str  # "text", "html", "docx" or "pdf"
    encoding: str | None
    text: str
    notes: tuple[str, ...] = ()  # where decoding had to guess (mixed encodings), line by line


def _normalize_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
    table.update(dict.fromkeys(map(ord, "\u3000\u00a0\u2002\u2003\u2009\u202f\t"), " "))
    table.update(dict.fromkeys(map(ord, "\u2028\u2029\x0c\x0b"), "\n"))
    table.update(_ZERO_WIDTH)
    return table


_NORMALIZE = _normalize_table()
_NORMALIZED_CHARS = re.compile("[" + "".join(re.escape(chr(code)) for code in _NORMALIZE) + "]")


def normalize_text(text: str) -> str:
    """Normalise line ends, full-width ASCII forms, odd spaces and trailing blanks.

    Full-width letters, digits and punctuation (U+FF01–FF5E) become their ASCII forms so that a
    document reads the same whether it was typed with full-width or half-width punctuation; CJK
    punctuation without an ASCII twin (、。《》〔〕“”) is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Replacing each character that occurs is several times faster than ``str.translate`` on a
    # long page (translate looks every character up in the table); no replacement yields a
    # character that is itself replaced, so the order does not matter.
    for char in set(_NORMALIZED_CHARS.findall(text)):
        text = text.replace(char, _NORMALIZE[ord(char)] or "")
    return "\n".join(map(str.rstrip, text.split("\n"))).strip("\n") + "\n"


def _looks_like_chinese_text(text: str, charset: str = "gb2312") -> bool:
    """Sanity check for a decoding: no control bytes, and the CJK characters are common ones.

    Common means in GB2312 (simplified) or, for a text in traditional characters, in Big5.
    """
    if not text.strip() or _CONTROL.search(text):
        return False
    cjk = [ch for ch in text if "\u4e00" <= ch <= "\u9fff"]
    non_ascii = [ch for ch in text if ord(ch) > 0x7F]
    if not non_ascii:
        return True
    if len(cjk) < 0.5 * len(non_ascii):
        return False
    # Wrong-codec decodings of Chinese bytes land on rare characters; GB2312 holds the common ones.
    common = 0
    for ch in cjk:
        try:
            ch.encode(charset)
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.9 * len(cjk)


def decode_text(data: bytes, filename: str) -> tuple[str, str]:
    """Detect the encoding of text bytes (UTF-8, GBK/GB18030, …) and decode them."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise IngestError(
                filename, f"starts with a UTF-8 mark but is not UTF-8 ({exc.reason})"
            ) from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise IngestError(filename, "starts with a UTF-16 mark but is not UTF-16") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not _CONTROL.search(text):
            return text, "utf-8"
    candidates: list[str] = []
    for match in from_bytes(data[:200_000]):
        if match.encoding not in candidates:
            candidates.append(match.encoding)
    # GB18030 is a superset of GBK and GB2312; try it after the detector's own guesses.
    for fallback in ("gb18030",):
        if fallback not in candidates:
            candidates.append(fallback)
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if _looks_like_chinese_text(text):
            return text, "gb18030" if encoding in {"gbk", "gb2312", "gb18030"} else encoding
    # Traditional characters (Hong Kong, Macao, Taiwan): Big5, tried only after the GB family so
    # that a simplified text is never read as Big5 look-alikes.
    try:
        text = data.decode("big5hkscs")
    except UnicodeDecodeError:
        pass
    else:
        if _looks_like_chinese_text(text, "big5hkscs"):
            return text, "big5"
    raise IngestError(
        filename, "cannot determine the text encoding (tried UTF-8, GBK/GB18030 and detection)"
    )


_SPACES = re.compile(r"[ \t\r\n\u3000\u00a0]+")
_LABEL_CELL = re.compile(r"^[^:：]{1,12}[:：]$")
_BLOCK = frozenset(_BLOCK_TAGS)


def _cell_text(cell: Any) -> str:
    return _SPACES.sub(" ", "".join(cell.itertext())).strip()


def _rows(table: Any) -> list[list[str]]:
    """The rows of a table as cell texts (cells of nested tables are not rows of this one)."""
    rows: list[list[str]] = []
    for tr in table.iter("tr"):
        if _enclosing_table(tr) is not table:
            continue
        cells = [_cell_text(c) for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th")]
        if any(cells):
            rows.append(cells)
    return rows


def _enclosing_table(el: Any) -> Any:
    parent = el.getparent()
    while parent is not None and parent.tag != "table":
        parent = parent.getparent()
    return parent


def table_lines(rows: list[list[str]]) -> list[str]:
    """A table as text lines: label/value pairs, or rows between the table markers."""
    if rows and all(
        len(row) >= 2
        and all(_LABEL_CELL.match(cell) for cell in row[0::2] if cell)
        and any(row[0::2])
        for row in rows
    ):
        pairs = []
        for row in rows:
            for label, value in zip(row[0::2], [*row[1::2], ""][: len(row[0::2])], strict=True):
                if label:
                    pairs.append(f"{label}{value}")
        return pairs
    return [TABLE_START, *(CELL_SEP.join(row) for row in rows), TABLE_END]


def _is_data_table(table: Any) -> bool:
    """A table of rows and columns, not a layout table holding the page's blocks."""
    if any(True for _ in table.iterdescendants("table")):
        return False
    rows = [tr for tr in table.iter("tr")]
    widths = [sum(1 for c in tr if isinstance(c.tag, str) and c.tag in ("td", "th")) for tr in rows]
    return len(rows) >= 2 and max(widths, default=0) >= 2


def _is_chrome(el: Any) -> bool:
    if el.tag in _CHROME_TAGS:
        return True
    if el.tag in ("html", "body"):
        return False
    classes, ident = el.get("class"), el.get("id")
    if not classes and not ident:
        return False
    hints = " ".join([classes or "", ident or ""]).strip()
    return bool(hints and _CHROME_HINT.search(hints))


def decode_text_lines(data: bytes, filename: str) -> tuple[str, str, list[str]]:
    """Decode text bytes; a file mixing encodings is decoded line by line, noting the guesses.

    Returns the text, the encoding ("mixed" when lines differ) and notes naming the lines that
    were read as GB18030 in an otherwise UTF-8 file (or that could only be read with
    replacement characters).
    """
    try:
        text, encoding = decode_text(data, filename)
        return text, encoding, []
    except IngestError:
        pass
    lines: list[str] = []
    guessed: list[int] = []
    damaged: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            pass
        try:
            line = raw.decode("gb18030")
        except UnicodeDecodeError:
            line = raw.decode("utf-8", errors="replace")
            damaged.append(number)
        else:
            if not _looks_like_chinese_text(line):
                line = raw.decode("utf-8", errors="replace")
                damaged.append(number)
            else:
                guessed.append(number)
        lines.append(line)
    text = "\n".join(lines)
    if not _looks_like_chinese_text(text.replace("\ufffd", "")) or len(damaged) > len(lines) // 2:
        raise IngestError(
            filename, "cannot determine the text encoding (tried UTF-8, GBK/GB18030 and detection)"
        )
    notes = []
    if guessed:
        notes.append(
            f"行 {_ranges(guessed)} 按 GB18030 解码（推测） / lines {_ranges(guessed)} read as GB18030 (guessed)"
        )
    if damaged:
        notes.append(
            f"行 {_ranges(damaged)} 含无法识别的字节，已用 � 替代 / lines {_ranges(damaged)} had unreadable bytes, replaced"
        )
    return text, "mixed", notes


def _ranges(numbers: list[int]) -> str:
    """1,2,3,7 → '1–3, 7'."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(f"{start}" if start == prev else f"{start}–{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


_SPACE_RUN = re.compile(r"[ \t\u3000\u00a0]+")


def html_to_text(html: str | bytes, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """Extract the readable text of an HTML page, leaving out navigation, scripts and footers.

    Linear in the page size: one pass marks chrome and tables, each is dropped or replaced in
    place, a second pass puts line breaks around block elements, and lxml serialises the text.
    At most ``limits.max_elements`` elements are read; beyond that the page is refused.
    """
    import lxml.html
    from lxml import etree

    if isinstance(html, str):
        html = re.sub(r"^\s*<\?xml[^>]*>", "", html)
    if not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    chrome: list[Any] = []
    tables: list[Any] = []
    for count, el in enumerate(root.iter(), start=1):
        if count > limits.max_elements:
            raise IngestError(
                "page",
                f"页面元素过多（超过 {limits.max_elements:,} 个），不像政策文件，已拒绝 / "
                f"the page has more than {limits.max_elements:,} elements",
            )
        if not isinstance(el.tag, str):
            continue
        if _is_chrome(el):
            chrome.append(el)
        elif el.tag == "table":
            tables.append(el)
    for el in chrome:
        if el.getparent() is not None:
            el.drop_tree()
    # Innermost tables first: a data table nested in a layout table is replaced before the
    # layout table is looked at (and the layout table then holds no table any more).
    for table in reversed(tables):
        parent = table.getparent()
        if parent is None or not _is_data_table(table):
            continue
        block = etree.Element("div")
        block.text = "\n" + "\n".join(table_lines(_rows(table))) + "\n"
        block.tail = table.tail
        parent.replace(table, block)
    for el in root.iter():
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if tag == "br":
            el.tail = "\n" + (el.tail or "")
        elif tag in _BLOCK:
            el.text = "\n" + (el.text or "")
            el.tail = "\n" + (el.tail or "")
        elif tag in ("td", "th"):
            el.tail = " " + (el.tail or "")
    text = etree.tostring(root, method="text", encoding="unicode")
    text = _SPACE_RUN.sub(" ", text)
    return "\n".join(filter(None, map(str.strip, text.split("\n"))))


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _unzipped_size(data: bytes, filename: str, limits: Limits) -> zipfile.ZipFile:
    """Open a ZIP container, refusing one that unpacks to more than the limit."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise IngestError(filename, "damaged ZIP/DOCX container") from exc
    total = sum(info.file_size for info in archive.infolist())
    if total > limits.max_unzipped_bytes:
        raise IngestError(
            filename,
            f"解压后大小 {total:,} 字节超过上限 {limits.max_unzipped_bytes:,} 字节，疑似压缩炸弹，已拒绝 / "
            "the container unpacks to more than the limit",
        )
    return archive


def _docx_paragraph(p: Any) -> str:
    if (
        p.find(f".//{_W}br") is None
        and p.find(f".//{_W}tab") is None
        and p.find(f".//{_W}cr") is None
    ):
        return "".join(p.itertext(f"{_W}t"))
    out: list[str] = []
    for el in p.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr"):
        if el.tag == f"{_W}t":
            out.append(el.text or "")
        elif el.tag == f"{_W}tab":
            out.append("\t")
        else:
            out.append("\n")
    return "".join(out)


def _docx_table(tbl: Any) -> list[list[str]]:
    rows: list[list[str]] = []
    for tr in tbl.iterchildren(f"{_W}tr"):
        cells = []
        for tc in tr.iterchildren(f"{_W}tc"):
            text = " ".join(t for t in (_docx_paragraph(p).strip() for p in tc.iter(f"{_W}p")) if t)
            cells.append(_SPACES.sub(" ", text).strip())
        if any(cells):
            rows.append(cells)
    return rows


def _too_many_paragraphs(filename: str, limits: Limits) -> IngestError:
    return IngestError(
        filename,
        f"段落过多（超过 {limits.max_paragraphs:,} 段），不像政策文件，已拒绝 / "
        f"more than {limits.max_paragraphs:,} paragraphs",
    )


_PARAGRAPH_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?p[\s/>]")


def _docx_blocks(stream: Any, filename: str, limits: Limits) -> Iterator[str]:
    """Stream the body of word/document.xml: paragraphs and tables in order, bounded."""
    from lxml import etree

    paragraphs = 0
    body = f"{_W}body"
    try:
        for _, el in etree.iterparse(
            stream, events=("end",), tag=(f"{_W}p", f"{_W}tbl"), huge_tree=False
        ):
            if el.tag == f"{_W}p":
                paragraphs += 1
                if paragraphs > limits.max_paragraphs:
                    raise _too_many_paragraphs(filename, limits)
            parent = el.getparent()
            if parent is None or parent.tag != body:
                continue
            if el.tag == f"{_W}p":
                yield _docx_paragraph(el)
            elif el.tag == f"{_W}tbl":
                yield from table_lines(_docx_table(el))
            # Drop what was read so memory stays flat however long the body is.
            el.clear()
            while el.getprevious() is not None:
                del parent[0]
    except etree.XMLSyntaxError as exc:
        raise IngestError(filename, "not a readable DOCX file (damaged document.xml)") from exc


def docx_to_text(data: bytes, filename: str, *, limits: Limits = DEFAULT_LIMITS) -> str:
    """Extract paragraphs and tables of a DOCX file in document order (streamed, bounded)."""
    archive = _unzipped_size(data, filename, limits)
    if "word/document.xml" not in archive.namelist():
        raise IngestError(filename, "not a readable DOCX file (no word/document.xml)")
    xml = archive.read("word/document.xml")
    # A cheap upper bound first, so that a bomb is refused before any XML is built.
    if len(_PARAGRAPH_TAG.findall(xml)) > limits.max_paragraphs:
        raise _too_many_paragraphs(filename, limits)
    return "\n".join(_docx_blocks(io.BytesIO(xml), filename, limits))


def pdf_to_text(data: bytes, filename: str) -> str:
    """Extract the text layer of a PDF and re-join lines that the page width broke.

    Ruled tables (a 任务分工表 printed as a grid) are read as tables, cell by cell, and kept as
    table lines in their place; a table continued on the next page, with the same columns and
    nothing above it, is read as one table. Pages without rulings are read as plain text.
    """
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        text, ruled = _pdf_layout_text(data)
        # Only a PDF with ruling lines can hold a ruled table: the others are read once.
        blocks = _pdf_blocks_with_tables(data) if ruled else None
        if blocks is not None:
            text = "\n".join(b if isinstance(b, str) else "\n".join(b) for b in blocks)
    except PDFSyntaxError as exc:
        raise IngestError(filename, "not a readable PDF file") from exc
    except Exception as exc:  # pdfminer raises many types for damaged or encrypted files
        raise IngestError(filename, f"cannot read the PDF ({type(exc).__name__})") from exc
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", text):
        raise IngestError(filename, "the PDF has no text layer (a scanned image?); OCR it first")
    if blocks is None:
        return reflow_pdf_lines(text)
    # Prose is re-flowed block by block; a table's lines are never joined to the text around it.
    out = [reflow_pdf_lines(b) if isinstance(b, str) else "\n".join(b) for b in blocks]
    return "\n".join(part for part in out if part)


PARAGRAPH_BREAK = "\x00"
"""A line standing between two paragraphs of PDF text (the layout showed a gap or an indent)."""


def _pdf_layout_text(data: bytes) -> tuple[str, bool]:
    """The PDF's text lines in reading order, with a break line where a new paragraph begins.

    pdfminer's layout analysis gives each printed line with its position. A line further below
    the one before than the document's usual line pitch, or indented past the usual left edge,
    starts a paragraph: so a paragraph whose last line happens to fill the width is still not
    run into the next one. Also says whether a page has ruling lines (a ruled table).
    """
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTCurve, LTTextContainer, LTTextLine

    lines: list[tuple[int, float, float, float, str]] = []  # page, left, top, height, text
    ruled = False
    for number, page in enumerate(extract_pages(io.BytesIO(data))):
        rulings = 0
        for box in page:
            if isinstance(box, LTCurve):  # lines and rectangles are curves to pdfminer
                rulings += 1
            if not isinstance(box, LTTextContainer):
                continue
            for line in box:
                if isinstance(line, LTTextLine) and (text := line.get_text().strip()):
                    lines.append((number, line.x0, line.y1, line.height, text))
        ruled = ruled or rulings >= 4
    if not lines:
        return "", ruled
    pitches = sorted(
        round(a[2] - b[2], 1)
        for a, b in zip(lines, lines[1:], strict=False)
        if a[0] == b[0] and 0 < a[2] - b[2] < 4 * max(a[3], 1.0)
    )
    # The pitch inside a paragraph is the smaller of the common gaps (short paragraphs may make
    # the wider gap between paragraphs the more frequent one).
    pitch = pitches[len(pitches) // 5] if pitches else 0.0
    lefts = sorted(round(x[1]) for x in lines)
    left = lefts[len(lefts) // 2]
    out: list[str] = []
    previous: tuple[int, float, float, float, str] | None = None
    for line in lines:
        number, x0, top, height, text = line
        if previous is not None and (
            number != previous[0]
            and x0 > left + 0.8 * height
            or number == previous[0]
            and ((pitch and previous[2] - top > 1.3 * pitch) or x0 > left + 0.8 * height)
        ):
            out.append(PARAGRAPH_BREAK)
        out.append(text)
        previous = line
    return "\n".join(out), ruled


def _cell(value: str | None) -> str:
    """A PDF table cell's text: lines the cell width broke are joined (without a space in Chinese)."""
    if not value:
        return ""
    parts = [p.strip() for p in value.split("\n") if p.strip()]
    text = ""
    for part in parts:
        if text and not (_CJK_END.search(text) or _CJK_START.match(part)):
            text += " "
        text += part
    return text


_CJK_END = re.compile(r"[\u3000-\u9fff\uff00-\uffef]$")
_CJK_START = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def _pdf_blocks_with_tables(data: bytes) -> list[str | list[str]] | None:
    """Prose (str) and tables (their lines) in page order, or None when no page has a table."""
    import pdfplumber

    blocks: list[str | list[str]] = []
    found = False
    last_table: list[list[str]] | None = None
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            # Only a page with ruling lines can hold a ruled table: the others are not searched.
            tables = page.find_tables() if (page.lines or page.rects) else []
            top = 0.0
            for table in sorted(tables, key=lambda t: t.bbox[1]):
                x0, y0, x1, y1 = table.bbox
                above = page.crop((0, top, page.width, y0)).extract_text() if y0 > top else ""
                rows = [[_cell(c) for c in row] for row in table.extract()]
                rows = [row for row in rows if any(row)]
                if not rows:
                    continue
                found = True
                if above.strip():
                    blocks.append(above)
                    last_table = None
                if (
                    last_table is not None
                    and not above.strip()
                    and len(rows[0]) == len(last_table[0])
                    and isinstance(blocks[-1], list)
                ):
                    # The same table going on from the page before. Word and WPS print a long
                    # table's header rows again at the top of each page: they are not rows.
                    repeated = 0
                    while (
                        repeated < min(3, len(rows) - 1, len(last_table))
                        and rows[repeated] == last_table[repeated]
                    ):
                        repeated += 1
                    last_table.extend(rows[repeated:])
                    blocks[-1] = table_lines(last_table)
                else:
                    last_table = rows
                    blocks.append(table_lines(rows))
                top = y1
            rest = page.crop((0, top, page.width, page.height)).extract_text() if top else None
            if rest is None:
                rest = page.extract_text()
            if rest.strip():
                blocks.append(rest)
                last_table = None
    return blocks if found else None


_STRUCT_START = re.compile(
    r"^\s*(第[一二三四五六七八九十百零〇\d]+[章节条]|[一二三四五六七八九十]+、|[(（][一二三四五六七八九十百]+[)）]|\d+[.、．]|附件)"
)


def _display_width(line: str) -> float:
    return sum(1.0 if ord(ch) > 0x2E7F else 0.5 for ch in line)


def reflow_pdf_lines(text: str) -> str:
    """Re-join lines that a PDF broke at the page width.

    pdfminer gives every printed line, often with blank lines between them, so a line is taken
    as wrapped when it runs (nearly) to the full text width of the document, or when it ends
    mid-phrase (、 , ( 《) — unless the next line opens a new article or section, or a
    :data:`PARAGRAPH_BREAK` line stands between them.
    """
    lines = [line.strip() for line in text.replace("\x0c", "\n").split("\n")]
    widths = sorted(_display_width(line) for line in lines if line and line != PARAGRAPH_BREAK)
    if not widths:
        return ""
    full = widths[int(len(widths) * 0.9)] if len(widths) > 10 else widths[-1]
    out: list[str] = []
    joinable = False
    for line in lines:
        if line == PARAGRAPH_BREAK:
            joinable = False
            continue
        if not line:
            continue
        if out and joinable and not _STRUCT_START.match(line):
            out[-1] += line
        else:
            out.append(line)
        last = out[-1]
        joinable = _display_width(line) >= 0.85 * full or bool(re.search(r"[、,，(（《“]$", last))
    return "\n".join(out)


def _sniff_kind(data: bytes, filename: str, limits: Limits = DEFAULT_LIMITS) -> str:
    suffix = Path(filename).suffix.lower()
    head = data[:1024]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        names = _unzipped_size(data, filename, limits).namelist()
        if "word/document.xml" in names:
            return "docx"
        if any(name.startswith("xl/") for name in names):
            raise IngestError(filename, "unsupported format: a spreadsheet (XLSX), not a document")
        raise IngestError(filename, "unsupported format: a ZIP archive, not a document")
    if head.startswith(_OLE_MAGIC):
        raise IngestError(
            filename, "unsupported format: legacy Word/Excel (.doc/.xls); save it as .docx"
        )
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise IngestError(filename, f"unsupported format: {what}, not a text document")
    if suffix in {".docx", ".pdf"}:
        raise IngestError(filename, f"the content is not a {suffix[1:].upper()} file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(
            filename, f"unsupported file type {suffix!r}; use .txt, .html, .docx or .pdf"
        )
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise IngestError(filename, "binary content, not a text document")
    if suffix in HTML_SUFFIXES or _HTML_SNIFF.match(head):
        return "html"
    return "text"


def ingest_bytes(
    data: bytes, filename: str, *, max_bytes: int = MAX_BYTES, limits: Limits = DEFAULT_LIMITS
) -> SourceText:
    """Read one uploaded file into normalised text, or raise :class:`IngestError`."""
    if not data or not data.strip():
        raise IngestError(filename, "the file is empty")
    if len(data) > max_bytes:
        raise IngestError(
            filename, f"the file is too large ({len(data):,} bytes; the limit is {max_bytes:,})"
        )
    kind = _sniff_kind(data, filename, limits)
    encoding: str | None = None
    notes: list[str] = []
    if kind == "pdf":
        text = pdf_to_text(data, filename)
    elif kind == "docx":
        text = docx_to_text(data, filename, limits=limits)
    else:
        text, encoding, notes = decode_text_lines(data, filename)
        if "\x00" in text:
            raise IngestError(filename, "binary content, not a text document")
        if kind == "html":
            try:
                text = html_to_text(text, limits=limits)
            except IngestError as exc:
                raise IngestError(filename, exc.reason) from exc
    text = normalize_text(unicodedata.normalize("NFC", text))
    if not re.search(r"[\u4e00-\u9fff]", text):
        raise IngestError(
            filename, "no Chinese text found; this does not look like a policy document"
        )
    return SourceText(
        filename=filename, kind=kind, encoding=encoding, text=text, notes=tuple(notes)
    )


def ingest_file(
    path: str | Path, *, max_bytes: int = MAX_BYTES, limits: Limits = DEFAULT_LIMITS
) -> SourceText:
    """Read a policy file from disk (see :func:`ingest_bytes`)."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(str(path), f"cannot read the file ({exc.strerror})") from exc
    if path.is_dir():
        raise IngestError(str(path), "is a directory, not a file")
    if size > max_bytes:
        raise IngestError(
            name, f"the file is too large ({size:,} bytes; the limit is {max_bytes:,})"
        )
    return ingest_bytes(path.read_bytes(), name, max_bytes=max_bytes, limits=limits)
