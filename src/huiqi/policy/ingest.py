"""Turn an uploaded policy file (bytes) into normalised plain text.

Supported: plain text (UTF-8, GBK/GB18030 detected, not assumed), HTML pages, DOCX and PDF with a
text layer. Everything else is refused with an :class:`IngestError` naming the file and the reason.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from huiqi.core.errors import DomainError

MAX_BYTES = 10 * 1024 * 1024
"""Largest file accepted (10 MiB): a policy document is text; anything bigger is not one."""

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
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


@dataclass(frozen=True)
class SourceText:
    """Normalised text of one ingested file, with how it was read."""

    filename: str
    kind: str  # "text", "html", "docx" or "pdf"
    encoding: str | None
    text: str


def normalize_text(text: str) -> str:
    """Normalise line ends, full-width ASCII forms, odd spaces and trailing blanks.

    Full-width letters, digits and punctuation (U+FF01–FF5E) become their ASCII forms so that a
    document reads the same whether it was typed with full-width or half-width punctuation; CJK
    punctuation without an ASCII twin (、。《》〔〕“”) is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_ZERO_WIDTH)
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif ch in "\u3000\u00a0\u2002\u2003\u2009\u202f\t":
            out.append(" ")
        elif ch in "\u2028\u2029\x0c\x0b":
            out.append("\n")
        else:
            out.append(ch)
    lines = [line.rstrip() for line in "".join(out).split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def _looks_like_chinese_text(text: str) -> bool:
    """Sanity check for a decoding: no control bytes, and the CJK characters are common ones."""
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
            ch.encode("gb2312")
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
    raise IngestError(
        filename, "cannot determine the text encoding (tried UTF-8, GBK/GB18030 and detection)"
    )


def html_to_text(html: str | bytes) -> str:
    """Extract the readable text of an HTML page, leaving out navigation, scripts and footers."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(_CHROME_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.name in ("html", "body"):
            continue
        attrs = getattr(tag, "attrs", None) or {}
        hints = " ".join([*attrs.get("class", []), attrs.get("id", "") or ""])
        if hints and _CHROME_HINT.search(hints):
            tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        if tag.name == "br":
            tag.replace_with("\n")
        else:
            tag.insert_before("\n")
            tag.insert_after("\n")
    for cell in soup.find_all(("td", "th")):
        cell.insert_after(" ")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\u3000\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def docx_to_text(data: bytes, filename: str) -> str:
    """Extract paragraphs and table cells of a DOCX file in document order."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several unrelated types for a broken package
        raise IngestError(filename, f"not a readable DOCX file ({type(exc).__name__})") from exc
    lines: list[str] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, document).text)
        elif tag == "tbl":
            for row in Table(child, document).rows:
                lines.append(" ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(lines)


def pdf_to_text(data: bytes, filename: str) -> str:
    """Extract the text layer of a PDF and re-join lines that the page width broke."""
    from pdfminer.high_level import extract_text
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        text = extract_text(io.BytesIO(data))
    except PDFSyntaxError as exc:
        raise IngestError(filename, "not a readable PDF file") from exc
    except Exception as exc:  # pdfminer raises many types for damaged or encrypted files
        raise IngestError(filename, f"cannot read the PDF ({type(exc).__name__})") from exc
    if not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", text):
        raise IngestError(filename, "the PDF has no text layer (a scanned image?); OCR it first")
    return reflow_pdf_lines(text)


_STRUCT_START = re.compile(
    r"^\s*(第[一二三四五六七八九十百零〇\d]+[章节条]|[一二三四五六七八九十]+、|[(（][一二三四五六七八九十百]+[)）]|\d+[.、．]|附件)"
)


def _display_width(line: str) -> float:
    return sum(1.0 if ord(ch) > 0x2E7F else 0.5 for ch in line)


def reflow_pdf_lines(text: str) -> str:
    """Re-join lines that a PDF broke at the page width.

    pdfminer gives every printed line, often with blank lines between them, so a line is taken
    as wrapped when it runs (nearly) to the full text width of the document, or when it ends
    mid-phrase (、 , ( 《) — unless the next line opens a new article or section.
    """
    lines = [line.strip() for line in text.replace("\x0c", "\n").split("\n")]
    widths = sorted(_display_width(line) for line in lines if line)
    if not widths:
        return ""
    full = widths[int(len(widths) * 0.9)] if len(widths) > 10 else widths[-1]
    out: list[str] = []
    joinable = False
    for line in lines:
        if not line:
            continue
        if out and joinable and not _STRUCT_START.match(line):
            out[-1] += line
        else:
            out.append(line)
        last = out[-1]
        joinable = _display_width(line) >= 0.85 * full or bool(re.search(r"[、,，(（《“]$", last))
    return "\n".join(out)


def _sniff_kind(data: bytes, filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    head = data[:1024]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile as exc:
            raise IngestError(filename, "damaged ZIP/DOCX container") from exc
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


def ingest_bytes(data: bytes, filename: str, *, max_bytes: int = MAX_BYTES) -> SourceText:
    """Read one uploaded file into normalised text, or raise :class:`IngestError`."""
    if not data or not data.strip():
        raise IngestError(filename, "the file is empty")
    if len(data) > max_bytes:
        raise IngestError(
            filename, f"the file is too large ({len(data):,} bytes; the limit is {max_bytes:,})"
        )
    kind = _sniff_kind(data, filename)
    encoding: str | None = None
    if kind == "pdf":
        text = pdf_to_text(data, filename)
    elif kind == "docx":
        text = docx_to_text(data, filename)
    else:
        text, encoding = decode_text(data, filename)
        if "\x00" in text:
            raise IngestError(filename, "binary content, not a text document")
        if kind == "html":
            text = html_to_text(text)
    text = normalize_text(unicodedata.normalize("NFC", text))
    if not re.search(r"[\u4e00-\u9fff]", text):
        raise IngestError(
            filename, "no Chinese text found; this does not look like a policy document"
        )
    return SourceText(filename=filename, kind=kind, encoding=encoding, text=text)


def ingest_file(path: str | Path, *, max_bytes: int = MAX_BYTES) -> SourceText:
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
    return ingest_bytes(path.read_bytes(), name, max_bytes=max_bytes)
