"""Pydantic shapes of parsed policy documents and of the policy API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer


def _json_number(value: Decimal | None) -> int | float | None:
    # Quantities are parsed as Decimal; JSON carries them as numbers. A decimal with at most 15
    # significant digits round-trips through float's shortest repr, so the printed text is exact.
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


class QuantityOut(BaseModel):
    """A quantitative commitment in an article."""

    text: str
    value: Decimal
    value_max: Decimal | None = None
    unit: str
    op: str
    kind: str
    sentence: str

    @field_serializer("value", "value_max", when_used="json")
    def _number(self, value: Decimal | None) -> int | float | None:
        return _json_number(value)


class DepartmentRef(BaseModel):
    """A department named in an article, as written and as the registry resolved it."""

    as_written: str
    name: str
    code: str | None = None
    full_name: str | None = None
    known: bool = False
    role: str = "responsible"  # "lead", "responsible" or "cooperating"


class ParsedItem(BaseModel):
    """A numbered item inside an article: 1. in opinions and notices, (一) (项) in regulations."""

    number: int
    label: str
    title: str = ""
    text: str = ""
    path: list[str] = Field(default_factory=list)  # labels from the top: ["一、", "(三)", "1."]
    responsibility_note: str | None = None
    departments: list[str] = Field(default_factory=list)
    implementers: list[str] = Field(default_factory=list)
    department_refs: list[DepartmentRef] = Field(default_factory=list)
    quantities: list[QuantityOut] = Field(default_factory=list)


class ParsedArticle(BaseModel):
    """One article: (一)… in opinions, 第一条… in regulations, 一、 in notices.

    ``text`` is the whole article, its items included; ``items`` are its numbered items, each with
    its own text and responsibility note. ``departments`` are the article's own note's, then its
    items' (so the department pages find every article a department works on).
    """

    number: int
    label: str
    title: str = ""
    text: str = ""
    path: list[str] = Field(default_factory=list)
    responsibility_note: str | None = None
    departments: list[str] = Field(default_factory=list)
    implementers: list[str] = Field(default_factory=list)
    department_refs: list[DepartmentRef] = Field(default_factory=list)
    quantities: list[QuantityOut] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    items: list[ParsedItem] = Field(default_factory=list)


class TaskOut(BaseModel):
    """One task of the document's task breakdown: who leads, who supports, who implements.

    Tasks are the units of the level that carries the responsibility notes (``task_level``), or
    the rows of a task table (任务分工表), merged where both name the same task.
    """

    path: list[str]
    label: str
    title: str = ""
    text: str = ""
    lead: list[DepartmentRef] = Field(default_factory=list)
    support: list[DepartmentRef] = Field(default_factory=list)
    implementers: list[str] = Field(default_factory=list)
    deadline: str | None = None
    note: str | None = None
    source: str = "note"  # "note", "table", "note+table" or "inherited" (a group's or 下同 note)


class ParsedTable(BaseModel):
    """A table of the document, kept as rows of cells; ``task_table`` when it is the breakdown."""

    rows: list[list[str]]
    path: list[str] = Field(default_factory=list)  # the unit it stands in
    task_table: bool = False


class ParsedSection(BaseModel):
    """A section (一、…) or chapter (第一章…); number 0 when the document has none."""

    number: int
    label: str = ""
    title: str = ""
    text: str = ""
    articles: list[ParsedArticle] = Field(default_factory=list)


class ParsedDocument(BaseModel):
    """The structure of one policy document."""

    model_config = ConfigDict(ser_json_timedelta="iso8601")

    title: str | None = None
    doc_number: str | None = None
    issuer: str | None = None  # the issuers joined with 、 (kept for older readers)
    issuers: list[str] = Field(default_factory=list)  # each issuing body, head or signature
    addressees: list[str] = Field(default_factory=list)  # 主送 groups as written
    issued_on: dt.date | None = None  # 成文/印发/公布/通过 date
    published_on: dt.date | None = None  # the page's 发布日期
    effective_on: dt.date | None = None  # 施行/生效 date
    source: str | None = None  # the page's 来源
    cited_documents: list[str] = Field(default_factory=list)
    province: str | None = None
    jurisdiction: str | None = None  # "central", "provincial" or "municipal"
    style: str = "plain"  # "opinion", "regulation", "notice", "numbered" or "plain"
    levels: list[str] = Field(default_factory=list)  # numbering levels present, top first
    task_level: str | None = None  # the level whose units are the tasks, e.g. "1."
    preamble: str = ""
    sections: list[ParsedSection] = Field(default_factory=list)
    closing: str = ""  # closing paragraphs after the last item (施行, 印发, 请认真贯彻 …)
    tasks: list[TaskOut] = Field(default_factory=list)
    tables: list[ParsedTable] = Field(default_factory=list)
    metadata_sources: dict[str, str] = Field(default_factory=dict)  # field → where it was found
    warnings: list[str] = Field(default_factory=list)
    unknown_departments: list[str] = Field(default_factory=list)

    def articles(self) -> list[ParsedArticle]:
        """All articles in document order."""
        return [a for s in self.sections for a in s.articles]

    def article(self, number: int) -> ParsedArticle | None:
        """The first article with this number."""
        return next((a for a in self.articles() if a.number == number), None)
