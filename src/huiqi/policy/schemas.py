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


class ParsedArticle(BaseModel):
    """One article: (一)… in opinions, 第一条… in regulations."""

    number: int
    label: str
    title: str = ""
    text: str = ""
    responsibility_note: str | None = None
    departments: list[str] = Field(default_factory=list)
    implementers: list[str] = Field(default_factory=list)
    department_refs: list[DepartmentRef] = Field(default_factory=list)
    quantities: list[QuantityOut] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)


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
    issuer: str | None = None
    addressees: list[str] = Field(default_factory=list)
    issued_on: dt.date | None = None
    published_on: dt.date | None = None
    source: str | None = None
    cited_documents: list[str] = Field(default_factory=list)
    province: str | None = None
    style: str = "plain"  # "opinion", "regulation", "notice" or "plain"
    preamble: str = ""
    sections: list[ParsedSection] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    unknown_departments: list[str] = Field(default_factory=list)

    def articles(self) -> list[ParsedArticle]:
        """All articles in document order."""
        return [a for s in self.sections for a in s.articles]

    def article(self, number: int) -> ParsedArticle | None:
        """The first article with this number."""
        return next((a for a in self.articles() if a.number == number), None)
