"""Score the parser against the hand-checked structures of the regression corpus.

Each ``tests/data/policy/corpus/expected/*.yaml`` names a corpus text, the renditions to parse
(text, web page, DOCX, PDF) and what a reader finds in it: metadata, the outline of numbered units
(paths such as ``一、/(三)/1.``), some titles and endings, the document a notice or order
encloses (``enclosed``: its title, relation, signature and dates), the 款 of a law's articles, and per task
its lead, supporting and implementing departments (official names). Every expectation is one
check; structure checks and department checks are counted separately. A document marked
``held_out: true`` was collected after the parser was written and scored before any change made
for it: its score is reported apart (out-of-sample). ``python -m bench policy --corpus`` prints both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from huiqi.policy.ingest import ingest_file
from huiqi.policy.parser import parse_source
from huiqi.policy.schemas import ParsedDocument

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "policy" / "corpus"
EXPECTED = CORPUS / "expected"
META_FIELDS = (
    "title",
    "doc_number",
    "issuers",
    "issued_on",
    "published_on",
    "effective_on",
    "addressees",
    "cited_documents",
    "province",
    "source",
)


@dataclass
class Score:
    """Checks passed and failed, by kind, with what failed."""

    structure: list[bool] = field(default_factory=list)
    departments: list[bool] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def check(self, kind: str, ok: bool, what: str) -> None:
        """Record one check."""
        (self.structure if kind == "structure" else self.departments).append(ok)
        if not ok:
            self.failures.append(what)

    @staticmethod
    def ratio(checks: list[bool]) -> str:
        """'passed/total (percent)'."""
        if not checks:
            return "0/0"
        return f"{sum(checks)}/{len(checks)} ({100 * sum(checks) / len(checks):.1f}%)"


def _units(doc: ParsedDocument) -> list[tuple[str, Any]]:
    """Every numbered unit of the document with its path: sections, articles and items."""
    out: list[tuple[str, Any]] = []
    for section in doc.sections:
        prefix = [section.label] if section.label else []
        if section.label:
            # A chapter under a 编 is named with it, as its articles are (第五编/第一章): chapters
            # restart in every 编.
            path = next((a.path for a in section.articles if section.label in a.path), None)
            if path:
                prefix = path[: path.index(section.label) + 1]
            out.append(("/".join(prefix), section))
        for article in section.articles:
            if not article.label:
                continue
            apath = getattr(article, "path", None) or [*prefix, article.label]
            out.append(("/".join(apath), article))
            for item in getattr(article, "items", []) or []:
                out.append(("/".join(getattr(item, "path", None) or [*apath, item.label]), item))
    return out


def _names(refs: list[Any]) -> list[str]:
    return [r.full_name or r.name for r in refs]


def _tasks(doc: ParsedDocument) -> dict[str, dict[str, list[str]]]:
    """Per task path: lead, support and implementers (official names where resolved)."""
    tasks = getattr(doc, "tasks", None)
    out: dict[str, dict[str, list[str]]] = {}
    if tasks is not None:
        for task in tasks:
            out["/".join(task.path)] = {
                "lead": _names(task.lead),
                "support": _names(task.support),
                "implementers": list(task.implementers),
            }
        return out
    # Documents parsed before tasks existed: the article's departments, first (or 牵头) leads.
    for path, unit in _units(doc):
        refs = getattr(unit, "department_refs", None)
        if refs is None:
            continue
        out[path] = {
            "lead": _names([r for r in refs if r.role in ("lead",)]),
            "support": _names([r for r in refs if r.role != "lead"]),
            "implementers": list(getattr(unit, "implementers", [])),
        }
    return out


def _value(doc: ParsedDocument, name: str) -> Any:
    if name == "issuers":
        issuers = getattr(doc, "issuers", None)
        if issuers is None:
            return [doc.issuer] if doc.issuer else []
        return list(issuers)
    return getattr(doc, name, None)


def score_document(expected: dict[str, Any], doc: ParsedDocument, where: str, score: Score) -> None:
    """Compare one parsed rendition with its expected structure."""
    meta = expected.get("meta", {})
    for key in META_FIELDS:
        if key not in meta:
            continue
        want = meta[key]
        got = _value(doc, key)
        if isinstance(want, dt.date) or want is None:
            ok = got == want
        else:
            ok = got == want
        score.check("structure", ok, f"{where}: {key} = {got!r}, expected {want!r}")
    # A notice or order whose body is another document: that document's own metadata apart.
    enclosed = getattr(doc, "enclosed", None)
    if "enclosed" in expected:
        for key, want in expected["enclosed"].items():
            got = getattr(enclosed, key, None) if enclosed is not None else None
            ok = enclosed is not None and got == want
            score.check("structure", ok, f"{where}: enclosed {key} = {got!r}, expected {want!r}")
    else:
        score.check(
            "structure", enclosed is None, f"{where}: enclosed = {enclosed!r}, expected none"
        )
    if "preamble_ends" in expected:
        score.check(
            "structure",
            doc.preamble.endswith(expected["preamble_ends"]),
            f"{where}: preamble ends {doc.preamble[-30:]!r}, not {expected['preamble_ends']!r}",
        )
    units = dict(_units(doc))
    outline = expected.get("outline") or []
    got_paths = [p for p, _ in _units(doc)]
    for path in outline:
        score.check("structure", path in units, f"{where}: missing unit {path}")
    extra = [p for p in got_paths if p not in outline]
    score.check("structure", not extra, f"{where}: units not in the document: {extra[:6]}")
    for path, title in (expected.get("titles") or {}).items():
        got = getattr(units.get(path), "title", None)
        score.check("structure", got == title, f"{where}: title of {path} = {got!r}")
    for path, ending in (expected.get("ends") or {}).items():
        text = getattr(units.get(path), "text", "") or ""
        score.check(
            "structure",
            text.endswith(ending),
            f"{where}: {path} ends {text[-30:]!r}, not {ending!r}",
        )
    if "body_ends" in expected:
        body = "\n".join(
            [doc.preamble, *(a.text for a in doc.articles())] if doc.articles() else [doc.preamble]
        ).strip()
        score.check(
            "structure",
            body.endswith(expected["body_ends"]),
            f"{where}: body ends {body[-30:]!r}, not {expected['body_ends']!r}",
        )
    for path, count in (expected.get("clauses") or {}).items():
        got = len(getattr(units.get(path), "clauses", None) or [])
        score.check("structure", got == count, f"{where}: {path} has {got} 款, expected {count}")
    for path, number in (expected.get("item_clauses") or {}).items():
        got = getattr(units.get(path), "clause", None)
        score.check("structure", got == number, f"{where}: {path} in 款 {got}, expected {number}")
    for key, ending in (expected.get("clause_ends") or {}).items():
        path, _, number = key.rpartition("#")
        clauses = getattr(units.get(path), "clauses", None) or []
        text = clauses[int(number) - 1] if len(clauses) >= int(number) else ""
        score.check("structure", text.endswith(ending), f"{where}: {key} ends {text[-30:]!r}")
    names = expected.get("names") or {}
    tasks = _tasks(doc)
    want_tasks = expected.get("tasks") or {}
    if not want_tasks:
        found = [p for p, t in tasks.items() if t["lead"] or t["support"]]
        score.check("departments", not found, f"{where}: departments where none are: {found[:4]}")
    deadlines = expected.get("deadlines") or {}
    for path, deadline in deadlines.items():
        got = next(
            (t.deadline for t in getattr(doc, "tasks", []) or [] if "/".join(t.path) == path), None
        )
        score.check("structure", got == deadline, f"{where}: deadline of {path} = {got!r}")
    for path, want in want_tasks.items():
        got_task = tasks.get(path)
        for role in ("lead", "support", "implementers"):
            expect = [names.get(n, n) for n in want.get(role, [])]
            got = got_task[role] if got_task else None
            score.check(
                "departments",
                got == expect,
                f"{where}: {path} {role} = {got!r}, expected {expect!r}",
            )


def run_corpus() -> dict[str, Score]:
    """Parse every rendition of every corpus document and score it: in-sample and held-out."""
    scores = {"in-sample": Score(), "held-out": Score()}
    for spec_path in sorted(EXPECTED.glob("*.yaml")):
        expected = yaml.safe_load(spec_path.read_text("utf-8"))
        score = scores["held-out" if expected.get("held_out") else "in-sample"]
        for rendition, overrides in (expected.get("renditions") or {}).items():
            path = (CORPUS / rendition).resolve()
            if not path.exists():
                score.skipped.append(f"{spec_path.stem}: {rendition} not found")
                continue
            spec = dict(expected)
            spec["meta"] = {**expected.get("meta", {}), **(overrides or {})}
            doc = parse_source(ingest_file(path))
            score_document(spec, doc, f"{spec_path.stem} [{Path(rendition).name}]", score)
    return scores
