"""Pydantic schema of rule, parameter, derived-value and scenario files (structure only; meaning is checked by the compiler)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

import cn2an
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_ARTICLE_RE = re.compile(r"^[(（]([一二三四五六七八九十百零〇]+)[)）]$")


class Strict(BaseModel):
    """Base: unknown keys are refused so typos surface."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Text(Strict):
    """Chinese and English wording."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class LegalBasis(Strict):
    """Where a rule or parameter comes from: document number plus article label."""

    doc_number: str = Field(min_length=1)
    article: str = Field(min_length=1)
    title: str | None = None
    url: str | None = None

    @property
    def article_no(self) -> int | None:
        """The article number for labels like (二十二), used to link to the policy page."""
        m = _ARTICLE_RE.match(self.article.strip())
        if not m:
            return None
        try:
            return int(cn2an.cn2an(m.group(1), "smart"))
        except ValueError:
            return None

    def label(self) -> str:
        """'甘工信发〔2020〕351号 (二十二)'."""
        return f"{self.doc_number} {self.article}"


SOURCE_KINDS = ("legal", "setting", "estimate")
_KIND_FIELDS = {
    "legal": ({"doc_number", "article"}, {"title", "url", "issued", "change"}),
    "setting": ({"by", "when", "why"}, set()),
    "estimate": ({"why"}, {"by", "when", "based_on"}),
}


class ParamSource(Strict):
    """Where a parameter value comes from: exactly one of three kinds, never mixed.

    ``legal``: a document number and article (``issued`` is the announcement date, ``change`` the
    move from the previous value the announcement states, e.g. ``-10bp``);
    ``setting``: an operator's decision — who (``by``), when (``when``) and why;
    ``estimate``: an assumed figure with its reasoning (``why``), optionally ``based_on`` a text.
    """

    kind: Literal["legal", "setting", "estimate"] = "legal"
    doc_number: str | None = Field(default=None, min_length=1)
    article: str | None = Field(default=None, min_length=1)
    title: str | None = None
    url: str | None = None
    issued: date | None = None
    change: str | None = Field(default=None, pattern=r"^[+-]\d+bp$")
    by: str | None = Field(default=None, min_length=1)
    when: date | None = None
    why: str | None = Field(default=None, min_length=1)
    based_on: LegalBasis | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ParamSource:
        required, optional = _KIND_FIELDS[self.kind]
        given = {k for k in type(self).model_fields if k != "kind" and getattr(self, k) is not None}
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"a {self.kind} source needs {', '.join(missing)}")
        stray = sorted(given - required - optional)
        if stray:
            raise ValueError(
                f"a {self.kind} source cannot carry {', '.join(stray)} "
                "(legal source, operator setting and estimate are never mixed)"
            )
        return self

    def legal(self) -> LegalBasis | None:
        """The legal citation of a legal source (None for settings and estimates)."""
        if self.kind != "legal" or not self.doc_number or not self.article:
            return None
        return LegalBasis(doc_number=self.doc_number, article=self.article, title=self.title)

    def label(self) -> str:
        """One line: the citation, the setting (who, when) or the estimate's reasoning."""
        if self.kind == "legal":
            when = f"({self.issued.isoformat()})" if self.issued else ""
            return f"{self.doc_number} {self.article}{when}"
        if self.kind == "setting":
            return f"运营设置 / operator setting: {self.by}, {self.when}: {self.why}"
        return f"估算 / estimate: {self.why}"


class ParamPeriod(Strict):
    """One effective period of a parameter's value and the source that sets it."""

    from_: date = Field(alias="from")
    to: date | None = None
    value: Any
    source: ParamSource

    @model_validator(mode="after")
    def _ordered(self) -> ParamPeriod:
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"period ends ({self.to}) before it starts ({self.from_})")
        return self


class ParameterDoc(Strict):
    """A named, dated parameter."""

    id: str = Field(pattern=NAME_PATTERN)
    title: Text
    unit: Literal["money", "ratio", "persons", "count", "year", "years", "date", "text", "bool"]
    description: Text | None = None
    values: list[ParamPeriod] = Field(min_length=1)


class DerivedDoc(Strict):
    """A value computed from catalogue fields, declared once and reused by name."""

    id: str = Field(pattern=NAME_PATTERN)
    kind: Literal["ratio", "years_since"]
    title: Text
    numerator: str | None = None
    denominator: str | None = None
    field: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> DerivedDoc:
        if self.kind == "ratio" and not (self.numerator and self.denominator):
            raise ValueError("a ratio needs numerator and denominator")
        if self.kind == "years_since" and not self.field:
            raise ValueError("years_since needs field")
        return self


# Where an input value came from (see docs/rules.md): a department's registry feed, an officer,
# the platform computing it from records, or the enterprise itself.
SourceKind = Literal["registry", "officer", "computed", "self_reported"]


class BenefitDoc(Strict):
    """Benefit amount: an exact formula in fen, optionally capped."""

    formula: str = Field(min_length=1)
    cap: Any = None
    title: Text | None = None


class RuleDoc(Strict):
    """A rule file."""

    id: str = Field(pattern=ID_PATTERN)
    title: Text
    description: Text | None = None
    legal_basis: list[LegalBasis] = Field(min_length=1)
    department: str = Field(min_length=1)
    mode: Literal["push", "auto_grant", "apply"]
    valid_from: date
    valid_to: date | None = None
    parameters: list[ParameterDoc] = Field(default_factory=list)
    derived: list[DerivedDoc] = Field(default_factory=list)
    conditions: dict[str, Any]
    benefit: BenefitDoc | None = None
    tags: list[str] = Field(default_factory=list)
    # auto_grant only: the kinds of input source a grant may be paid on without confirmation
    accept_sources: list[SourceKind] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RuleDoc:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        if self.mode == "auto_grant" and self.benefit is None:
            raise ValueError("an auto_grant rule needs a benefit formula (benefit.formula)")
        if self.accept_sources is not None:
            if self.mode != "auto_grant":
                raise ValueError("accept_sources applies to auto_grant rules only")
            if not self.accept_sources:
                raise ValueError("accept_sources: name at least one source kind")
            if len(set(self.accept_sources)) != len(self.accept_sources):
                raise ValueError("accept_sources: a source kind is listed twice")
        return self


class ParameterFile(Strict):
    """A parameters file."""

    parameters: list[ParameterDoc]


class DerivedFile(Strict):
    """The derived-values file."""

    derived: list[DerivedDoc]


class Expect(Strict):
    """What a scenario expects."""

    result: Literal["eligible", "ineligible", "unknown"]
    amount: Any = None  # money text, or "unknown" when the amount must stay to be confirmed
    failing: list[str] | None = None
    missing: list[str] | None = None
    near_miss: list[str] | None = None


class Scenario(Strict):
    """Inputs and an evaluation date, and the expected outcome."""

    name: str = Field(min_length=1)
    date: date
    inputs: dict[str, Any] = Field(default_factory=dict)
    expect: Expect

    @field_validator("inputs", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class ScenarioFile(Strict):
    """A rule's scenario tests."""

    rule: str
    scenarios: list[Scenario] = Field(min_length=1)
