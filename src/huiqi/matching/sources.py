"""Where every parameter and rule says its figures come from, checked against the policy library.

A legal source citing a document held in the policy library (the packaged seed, parsed with the
policy parser) is checked: the cited article must exist and the cited figure must be among the
quantities the parser found in it. A mismatch shows both texts side by side. A legal source citing a
document the library does not hold is "unverified" and listed with its citation; operator settings
and estimates are listed as what they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from huiqi.policy.parser import cn_number, parse_text
from huiqi.rules.compiler import Parameter
from huiqi.rules.library import Library
from huiqi.rules.schema import ParamSource
from huiqi.rules.values import VType

SAMPLES = "data/samples"
FEN_PER_UNIT = {"分": 1, "元": 100, "万元": 1_000_000, "亿元": 10_000_000_000}
_LABEL = re.compile(
    r"^(?:[(（]([一二三四五六七八九十百零〇两]+)[)）]|第([一二三四五六七八九十百零〇两]+)条)$"
)

VERIFIED = "verified"
MISMATCH = "mismatch"
UNVERIFIED = "unverified"
SETTING = "setting"
ESTIMATE = "estimate"


@dataclass(frozen=True)
class LibraryArticle:
    """One article of a document in the library, with the quantities the parser found."""

    doc_number: str
    number: int
    label: str
    title: str
    text: str
    quantities: tuple[tuple[str, str, Decimal, str], ...]  # (text, kind, value, unit)

    def quantity_texts(self) -> list[str]:
        """The quantities as written in the article."""
        return [q[0] for q in self.quantities]


@cache
def library_articles() -> dict[str, dict[int, LibraryArticle]]:
    """Document number → article number → article, for every document packaged as a sample."""
    out: dict[str, dict[int, LibraryArticle]] = {}
    folder = resources.files("huiqi.policy").joinpath(SAMPLES)
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".txt"):
            continue
        doc = parse_text(item.read_text(encoding="utf-8"))
        if not doc.doc_number:
            continue
        articles = out.setdefault(doc.doc_number, {})
        for section in doc.sections:
            for a in section.articles:
                articles[a.number] = LibraryArticle(
                    doc_number=doc.doc_number,
                    number=a.number,
                    label=a.label,
                    title=a.title,
                    text=a.text,
                    quantities=tuple((q.text, q.kind, q.value, q.unit) for q in a.quantities),
                )
    return out


def article_number(label: str) -> int | None:
    """(二十二) or 第七条 → its number; None for labels such as 附件2."""
    m = _LABEL.match(label.strip())
    if not m:
        return None
    return cn_number(m.group(1) or m.group(2))


def figure_in(value: Any, vtype: VType, quantity: tuple[str, str, Decimal, str]) -> bool:
    """Whether a parameter value is the figure a quantity states (same magnitude and unit)."""
    _text, kind, number, unit = quantity
    if vtype.kind == "ratio":
        return kind == "percent" and Fraction(number) == Fraction(value) * 100
    if vtype.kind == "money":
        factor = FEN_PER_UNIT.get(unit)
        return factor is not None and Fraction(number) * factor == Fraction(value)
    if vtype.kind == "int":
        return kind != "percent" and unit not in FEN_PER_UNIT and Fraction(number) == value
    return False


def _shown(value: Any, vtype: VType) -> str:
    if vtype.kind == "ratio":
        return (
            f"{Decimal(value.numerator) / Decimal(value.denominator) * 100:f}".rstrip("0").rstrip(
                "."
            )
            + "%"
        )
    if vtype.kind == "money":
        return f"{Decimal(value) / 100:f}元"
    if isinstance(value, tuple):
        return "、".join(str(v) for v in value)
    return str(value)


@dataclass
class SourceCheck:
    """One parameter period (or rule citation) and what its source says about it."""

    subject: str  # parameter id, or "rule:<id>"
    start: date | None
    end: date | None
    value: str
    kind: str  # legal | setting | estimate
    citation: str
    status: str  # verified | mismatch | unverified | setting | estimate
    reason: str = ""
    article: LibraryArticle | None = None


def check_citation(
    doc_number: str,
    article: str,
    value: Any = None,
    vtype: VType | None = None,
    articles: dict[str, dict[int, LibraryArticle]] | None = None,
) -> tuple[str, str, LibraryArticle | None]:
    """(status, reason, article) of one legal citation; reasons show both texts on a mismatch."""
    held = (library_articles() if articles is None else articles).get(doc_number)
    if held is None:
        return UNVERIFIED, f"{doc_number} 不在政策库中 / not in the policy library", None
    number = article_number(article)
    found = held.get(number) if number is not None else None
    if found is None:
        labels = "、".join(a.label for a in held.values())
        return (
            MISMATCH,
            f"{doc_number} 没有条款 {article} / has no article {article} (articles: {labels})",
            None,
        )
    if value is None or vtype is None or vtype.kind not in ("ratio", "money", "int"):
        return VERIFIED, "条款存在 / the article exists", found
    if any(figure_in(value, vtype, q) for q in found.quantities):
        return VERIFIED, f"{_shown(value, vtype)} 见于 / appears in {found.label}", found
    return (
        MISMATCH,
        f"参数值 / value: {_shown(value, vtype)}\n"
        f"{doc_number} {found.label} 中的数量 / quantities of the article: "
        f"{'、'.join(found.quantity_texts()) or '(无 / none)'}\n"
        f"条文 / article text: {found.text}",
        found,
    )


def check_period(
    pid: str,
    start: date,
    end: date | None,
    value: Any,
    vtype: VType,
    src: ParamSource,
    articles: dict[str, dict[int, LibraryArticle]] | None = None,
) -> SourceCheck:
    """The check of one parameter period."""
    shown = _shown(value, vtype)
    if src.kind == "setting":
        return SourceCheck(pid, start, end, shown, src.kind, src.label(), SETTING)
    if src.kind == "estimate":
        return SourceCheck(pid, start, end, shown, src.kind, src.label(), ESTIMATE)
    assert src.doc_number is not None and src.article is not None
    status, reason, art = check_citation(src.doc_number, src.article, value, vtype, articles)
    return SourceCheck(pid, start, end, shown, src.kind, src.label(), status, reason, art)


def parameter_checks(
    params: dict[str, Parameter], articles: dict[str, dict[int, LibraryArticle]] | None = None
) -> list[SourceCheck]:
    """Every period of every parameter, checked."""
    return [
        check_period(p.id, start, end, value, p.vtype, src, articles)
        for p in sorted(params.values(), key=lambda p: p.id)
        for start, end, value, src in p.periods
    ]


def rule_checks(
    library: Library, articles: dict[str, dict[int, LibraryArticle]] | None = None
) -> list[SourceCheck]:
    """Every legal basis of every rule: the article must exist when the library holds the document."""
    out = []
    for rule in sorted(library.rules.values(), key=lambda r: r.id):
        for basis in rule.doc.legal_basis:
            status, reason, art = check_citation(basis.doc_number, basis.article, articles=articles)
            out.append(
                SourceCheck(
                    f"rule:{rule.id}",
                    rule.doc.valid_from,
                    rule.doc.valid_to,
                    "",
                    "legal",
                    basis.label(),
                    status,
                    reason,
                    art,
                )
            )
    return out
