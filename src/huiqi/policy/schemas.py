"""Pydantic shapes of parsed policy documents and of the policy API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_serializer

_Model = TypeVar("_Model", bound=BaseModel)
_set = object.__setattr__


def built(model: type[_Model], **values: Any) -> _Model:
    """An instance of ``model`` from values the parser made itself, every field given, unvalidated.

    The parser builds thousands of articles, items, tasks and quantities per long document, and
    validating what it has just typed itself costs about as much as building the values; input
    from outside (the API, stored JSON) is still validated. Lists passed in belong to the instance.
    """
    if len(values) != len(model.__pydantic_fields__):
        missing = set(model.__pydantic_fields__) - set(values)
        raise TypeError(f"{model.__name__}: every field must be given (missing {sorted(missing)})")
    obj = model.__new__(model)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


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
    clause: int | None = None  # in a regulation, the 款 (paragraph of the article) it stands in
    responsibility_note: str | None = None
    departments: list[str] = Field(default_factory=list)
    implementers: list[str] = Field(default_factory=list)
    department_refs: list[DepartmentRef] = Field(default_factory=list)
    quantities: list[QuantityOut] = Field(default_factory=list)


class ParsedArticle(BaseModel):
    """One article: (一)… in opinions, 第一条… in regulations, 一、 in notices.

    ``text`` is the whole article, its items included; ``items`` are its numbered items, each with
    its own text and responsibility note. ``departments`` are the article's own note's, then its
    items' (so the department pages find every article a department works on). In a regulation,
    ``clauses`` are its 款: the paragraphs of the article, the first being 第一款, each with the
    items (项) that stand in it.
    """

    number: int
    label: str
    title: str = ""
    text: str = ""
    path: list[str] = Field(default_factory=list)
    clauses: list[str] = Field(default_factory=list)
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


class EnclosedDocument(BaseModel):
    """The document another one issues, transmits or promulgates (印发/转发/公布 a plan, a report,
    a regulation): its own title and signature, apart from the enclosing notice or order."""

    title: str = Field(description="its title as the enclosing document names it in 《》")
    relation: str = Field(
        description='how the enclosing document carries it: "印发", "转发" or "公布"'
    )
    issuers: list[str] = Field(
        default_factory=list, description="its own issuers (its signature), if it has any"
    )
    addressees: list[str] = Field(default_factory=list, description="its own 主送, if any")
    issued_on: dt.date | None = Field(None, description="its own date (its signature)")
    effective_on: dt.date | None = Field(None, description="施行 date stated in its text")
    preamble: str = Field("", description="its text before its first numbered unit")
    metadata_sources: dict[str, str] = Field(
        default_factory=dict, description="where each of its fields was found"
    )


class ParsedDocument(BaseModel):
    """The structure of one policy document (every field documented in the JSON schema)."""

    model_config = ConfigDict(ser_json_timedelta="iso8601")

    title: str | None = Field(None, description="标题 as printed (site suffixes removed)")
    doc_number: str | None = Field(None, description="文号 of this document, canonical spelling")
    issuer: str | None = Field(None, description="the issuers joined with 、 (for older readers)")
    issuers: list[str] = Field(
        default_factory=list, description="issuing bodies, from the head, a label or the signature"
    )
    addressees: list[str] = Field(default_factory=list, description="主送 groups as written")
    issued_on: dt.date | None = Field(None, description="成文/印发/公布/通过 date")
    published_on: dt.date | None = Field(None, description="the web page's 发布日期")
    effective_on: dt.date | None = Field(None, description="施行/生效 date")
    source: str | None = Field(None, description="the web page's 来源")
    cited_documents: list[str] = Field(
        default_factory=list, description="other documents' 文号 cited in the text"
    )
    province: str | None = Field(None, description="the province the document belongs to")
    jurisdiction: str | None = Field(
        None, description='"central", "provincial" or "municipal" (how department names are read)'
    )
    style: str = Field(
        "plain", description='"opinion", "regulation", "notice", "numbered" or "plain"'
    )
    levels: list[str] = Field(
        default_factory=list,
        description='numbering levels present, top first: ["一、", "(一)", "1."]; "款" when '
        "a regulation's articles have more than one paragraph",
    )
    task_level: str | None = Field(
        None,
        description='the level whose units are the tasks ("(一)", "1.", …), "leaves" or "table"',
    )
    preamble: str = Field("", description="text before the first numbered unit")
    sections: list[ParsedSection] = Field(
        default_factory=list, description="sections (一、/第一章) with their articles and items"
    )
    closing: str = Field(
        "", description="closing paragraphs after the last unit (施行, 请认真贯彻, 现将…)"
    )
    tasks: list[TaskOut] = Field(
        default_factory=list, description="the task breakdown: lead, support, implementers per task"
    )
    tables: list[ParsedTable] = Field(default_factory=list, description="the document's tables")
    metadata_sources: dict[str, str] = Field(
        default_factory=dict,
        description='where each metadata field was found: "head", "label:发文字号", "signature", '
        '"page", "body", "registry:doc_number"',
    )
    enclosed: EnclosedDocument | None = Field(
        None,
        description="when the body is another document (a notice 印发/转发 a plan or report, an "
        "order 公布 a regulation): that document's own metadata. The fields above (title, 文号, "
        "issuers, dates, preamble) are then the enclosing document's, and sections, tasks and "
        "tables are the enclosed document's structure",
    )
    warnings: list[str] = Field(default_factory=list, description="what the reader should check")
    unknown_departments: list[str] = Field(
        default_factory=list, description="department names no registry layer resolved"
    )

    def articles(self) -> list[ParsedArticle]:
        """All articles in document order."""
        return [a for s in self.sections for a in s.articles]

    def article(self, number: int) -> ParsedArticle | None:
        """The first article with this number."""
        return next((a for a in self.articles() if a.number == number), None)
