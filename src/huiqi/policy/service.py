"""Policy library services: import with versions, corrections, publication, tasks, links.

Services take the session first and never commit; the request or CLI job commits.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core import clock
from huiqi.core.errors import DomainError
from huiqi.policy import repository
from huiqi.policy.departments import Registry, default_registry
from huiqi.policy.ingest import IngestError, SourceText, ingest_bytes
from huiqi.policy.models import (
    DepartmentAlias,
    Policy,
    PolicyArticle,
    PolicySection,
    PolicyStatus,
    PolicyTask,
    PolicyVersion,
)
from huiqi.policy.parser import parse_responsibility, parse_source, quantities_of
from huiqi.policy.schemas import DepartmentRef, ParsedDocument
from huiqi.policy.search import tokens_for_index
from huiqi.policy.topics import tag_topics

DEMO_FILE = "data/samples/gansu-gongxinfa-2020-351.txt"


class PolicyError(DomainError):
    """A policy operation that cannot be done, with the reason."""


@dataclass
class ImportResult:
    """What an import did: created a policy, added a version, or changed nothing."""

    outcome: str  # "created", "new_version" or "unchanged"
    policy: Policy
    version: PolicyVersion
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ArticleRef:
    """A link target for an article (used by rules to show their legal basis)."""

    policy_id: int
    doc_number: str | None
    policy_title: str
    article_id: int
    number: int
    label: str
    title: str

    @property
    def url(self) -> str:
        """Public page of the policy, anchored at the article."""
        return f"/policy/{self.policy_id}#art-{self.number}"


@dataclass(frozen=True)
class TaskRow:
    """One line of a task breakdown (任务分工表)."""

    policy_id: int
    doc_number: str | None
    policy_title: str
    article_number: int
    article_label: str
    article_title: str
    lead: str
    cooperating: list[str]
    implementers: list[str]
    targets: list[str]
    unknown: list[str]


def registry_for(session: Session) -> Registry:
    """The department registry plus the aliases officers have mapped."""
    aliases = repository.department_aliases(session)
    return default_registry().with_aliases(aliases) if aliases else default_registry()


def canonical_lines(doc: ParsedDocument) -> list[str]:
    """The document as lines of text, chrome-free, for hashing and for diffs between versions."""
    lines = [doc.title or "", doc.doc_number or ""]
    lines += [p for p in doc.preamble.split("\n") if p]
    for section in doc.sections:
        if section.label or section.title:
            lines.append(f"{section.label}{section.title}")
        lines += [p for p in section.text.split("\n") if p]
        for article in section.articles:
            lines.append(f"{article.label}{article.title}")
            lines += [p for p in article.text.split("\n") if p]
    return lines


def content_hash(doc: ParsedDocument) -> str:
    """Hash of the document's content; the same text in another encoding or format hashes equal."""
    joined = "\n".join("".join(line.split()) for line in canonical_lines(doc))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def _article_changes(old: dict[str, Any], new: ParsedDocument) -> list[str]:
    before = {a["label"]: a for s in old.get("sections", []) for a in s["articles"]}
    after = {a.label: a for a in new.articles()}
    changes = []
    for label, article in after.items():
        if label not in before:
            changes.append(f"{label} {article.title}: added")
        elif (
            "".join(before[label]["text"].split()) != "".join(article.text.split())
            or before[label]["title"] != article.title
        ):
            changes.append(f"{label} {article.title}: changed")
    changes += [
        f"{label} {a['title']}: removed" for label, a in before.items() if label not in after
    ]
    return changes


def import_source(
    session: Session, source: SourceText, *, publish: bool = False, user_id: int | None = None
) -> ImportResult:
    """Store a parsed file: a new policy, a new version of a known one, or nothing if unchanged."""
    doc = parse_source(source, registry=registry_for(session))
    return import_parsed(session, doc, source, publish=publish, user_id=user_id)


def import_bytes(
    session: Session,
    data: bytes,
    filename: str,
    *,
    max_bytes: int,
    publish: bool = False,
    user_id: int | None = None,
) -> ImportResult:
    """Ingest, parse and store an uploaded file (raises IngestError for bad files; nothing stored)."""
    return import_source(
        session, ingest_bytes(data, filename, max_bytes=max_bytes), publish=publish, user_id=user_id
    )


def import_parsed(
    session: Session,
    doc: ParsedDocument,
    source: SourceText,
    *,
    publish: bool = False,
    user_id: int | None = None,
) -> ImportResult:
    """Store an already parsed document (see :func:`import_source`)."""
    if not doc.title:
        raise PolicyError(f"{source.filename}: no title found; the document cannot be filed")
    digest = content_hash(doc)
    policy = (
        repository.by_doc_number(session, doc.doc_number)
        if doc.doc_number
        else repository.by_title(session, doc.title, doc.issuer)
    )
    payload = doc.model_dump(mode="json")
    if policy is not None:
        same = next((v for v in policy.versions if v.content_hash == digest), None)
        if same is not None:
            return ImportResult("unchanged", policy, same, doc.warnings)
        previous = policy.versions[-1]
        old_lines = canonical_lines(ParsedDocument.model_validate(previous.parsed))
        diff = "\n".join(
            difflib.unified_diff(
                old_lines,
                canonical_lines(doc),
                fromfile=f"version {previous.number}",
                tofile=f"version {previous.number + 1}",
                lineterm="",
            )
        )
        version = PolicyVersion(
            number=previous.number + 1,
            content_hash=digest,
            source_filename=source.filename,
            source_kind=source.kind,
            source_encoding=source.encoding,
            source_text=source.text,
            parsed=payload,
            diff=diff,
            changes=_article_changes(previous.parsed, doc),
            created_by=user_id,
        )
        policy.versions.append(version)
        _apply_metadata(policy, doc)
        _rebuild_structure(session, policy, doc)
        outcome = "new_version"
    else:
        policy = Policy(status=PolicyStatus.draft)
        _apply_metadata(policy, doc)
        version = PolicyVersion(
            number=1,
            content_hash=digest,
            source_filename=source.filename,
            source_kind=source.kind,
            source_encoding=source.encoding,
            source_text=source.text,
            parsed=payload,
            diff="",
            changes=[],
            created_by=user_id,
        )
        policy.versions.append(version)
        session.add(policy)
        session.flush()
        _rebuild_structure(session, policy, doc)
        outcome = "created"
    if publish:
        set_status(session, policy, PolicyStatus.published)
    session.flush()
    return ImportResult(outcome, policy, version, doc.warnings)


def _apply_metadata(policy: Policy, doc: ParsedDocument) -> None:
    policy.title = doc.title or policy.title
    policy.doc_number = doc.doc_number
    policy.issuer = doc.issuer
    policy.addressees = doc.addressees
    policy.issued_on = doc.issued_on
    policy.published_on = doc.published_on
    policy.source = doc.source
    policy.province = doc.province
    policy.style = doc.style
    policy.preamble = doc.preamble
    policy.cited_documents = doc.cited_documents
    policy.warnings = doc.warnings
    policy.search_tokens = tokens_for_index(policy.title, policy.doc_number or "")
    if policy.valid_from is None:
        policy.valid_from = doc.issued_on


def _rebuild_structure(session: Session, policy: Policy, doc: ParsedDocument) -> None:
    """Replace the policy's sections, articles and tasks with those of ``doc``."""
    if policy.id is not None:
        # ORM deletes (not bulk DELETE) so the session forgets the old rows before ids are reused.
        for old_article in list(policy.articles):
            session.delete(old_article)
        for old_section in list(policy.sections):
            session.delete(old_section)
        session.flush()
        session.expire(policy, ["sections", "articles"])
    position = 0
    for s_pos, parsed_section in enumerate(doc.sections):
        row = PolicySection(
            policy_id=policy.id,
            position=s_pos,
            number=parsed_section.number,
            label=parsed_section.label,
            title=parsed_section.title,
            text=parsed_section.text,
        )
        session.add(row)
        session.flush()
        for article in parsed_section.articles:
            art = PolicyArticle(
                policy_id=policy.id,
                section_id=row.id,
                position=position,
                number=article.number,
                label=article.label,
                title=article.title,
                text=article.text,
                responsibility_note=article.responsibility_note,
                implementers=article.implementers,
                quantities=[q.model_dump(mode="json") for q in article.quantities],
                topics=_topic_string(article.topics),
                search_tokens=tokens_for_index(article.title, article.text),
                corrected=False,
            )
            art.tasks = _tasks(article.department_refs)
            session.add(art)
            position += 1
    session.flush()


def _topic_string(topics: list[str]) -> str:
    return " " + " ".join(topics) + " " if topics else ""


def _tasks(refs: list[DepartmentRef]) -> list[PolicyTask]:
    return [
        PolicyTask(
            position=i,
            department=ref.name,
            department_code=ref.code,
            as_written=ref.as_written,
            role=ref.role,
            known=ref.known,
        )
        for i, ref in enumerate(refs)
    ]


def set_status(session: Session, policy: Policy, status: str) -> None:
    """Move a policy to draft, published or repealed."""
    try:
        policy.status = PolicyStatus(status)
    except ValueError:
        raise PolicyError(f"unknown status {status!r}; use draft, published or repealed") from None
    if policy.status == PolicyStatus.repealed and policy.valid_to is None:
        policy.valid_to = clock.today()
    session.flush()


def set_validity(
    session: Session, policy: Policy, valid_from: dt.date | None, valid_to: dt.date | None
) -> None:
    """Set the dates a policy is in force."""
    if valid_from and valid_to and valid_to < valid_from:
        raise PolicyError(f"validity ends ({valid_to}) before it starts ({valid_from})")
    policy.valid_from, policy.valid_to = valid_from, valid_to
    session.flush()


def correct_article(
    session: Session,
    article: PolicyArticle,
    *,
    title: str,
    text: str,
    departments: list[str] | None = None,
    implementers: list[str] | None = None,
) -> None:
    """Apply an officer's correction to an article; quantities, topics and search follow the text."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise PolicyError(
            f"条款{article.label}:正文不能为空",
            f"article {article.label}: the text may not be empty",
        )
    registry = registry_for(session)
    policy = article.policy
    article.title = title.strip()
    article.text = text
    note, refs, found_implementers = parse_responsibility(text, registry, policy.province)
    article.responsibility_note = note
    if departments is not None:
        refs = []
        for i, name in enumerate(n.strip() for n in departments if n.strip()):
            resolved = registry.resolve(name, province=policy.province)
            refs.append(
                DepartmentRef(
                    as_written=resolved.as_written,
                    name=resolved.name,
                    code=resolved.code,
                    full_name=resolved.full_name,
                    known=resolved.known,
                    role="lead" if i == 0 else "responsible",
                )
            )
    article.tasks = _tasks(refs)
    article.implementers = implementers if implementers is not None else found_implementers
    article.quantities = [q.model_dump(mode="json") for q in quantities_of(text)]
    article.topics = _topic_string(tag_topics(article.title, text))
    article.search_tokens = tokens_for_index(article.title, text)
    article.corrected = True
    session.flush()


def map_department(session: Session, alias: str, code: str, *, user_id: int | None = None) -> int:
    """Map a department name the registry lacked onto a registered department; returns tasks updated."""
    dept = default_registry().by_code(code)
    if dept is None:
        raise PolicyError(
            f"部门名录中没有代码为 {code!r} 的部门", f"no registered department with code {code!r}"
        )
    existing = session.scalar(select(DepartmentAlias).where(DepartmentAlias.alias == alias))
    if existing is None:
        session.add(DepartmentAlias(alias=alias, department_code=code, created_by=user_id))
    else:
        existing.department_code = code
    updated = 0
    for task in session.scalars(
        select(PolicyTask).where(PolicyTask.department == alias, PolicyTask.known.is_(False))
    ):
        task.department, task.department_code, task.known = dept.name, dept.code, True
        updated += 1
    session.flush()
    return updated


def find_policy(session: Session, key: str | int) -> Policy | None:
    """A policy by id or by document number (文号)."""
    if isinstance(key, int) or str(key).isdigit():
        return repository.get_policy(session, int(key))
    return repository.by_doc_number(session, str(key).strip())


def find_article(session: Session, doc_number: str, article_number: int) -> ArticleRef | None:
    """Locate an article by document number and article number, for legal-basis links."""
    policy = repository.by_doc_number(session, doc_number)
    if policy is None:
        return None
    article = repository.article_by_number(session, policy.id, article_number)
    if article is None:
        return None
    return ArticleRef(
        policy_id=policy.id,
        doc_number=policy.doc_number,
        policy_title=policy.title,
        article_id=article.id,
        number=article.number,
        label=article.label,
        title=article.title,
    )


def _targets(article: PolicyArticle) -> list[str]:
    return [q["text"] for q in article.quantities]


def _task_row(policy: Policy, article: PolicyArticle) -> TaskRow:
    tasks = article.tasks
    return TaskRow(
        policy_id=policy.id,
        doc_number=policy.doc_number,
        policy_title=policy.title,
        article_number=article.number,
        article_label=article.label,
        article_title=article.title,
        lead=tasks[0].department if tasks else "",
        cooperating=[t.department for t in tasks[1:]],
        implementers=list(article.implementers),
        targets=_targets(article),
        unknown=[t.department for t in tasks if not t.known],
    )


def task_rows(session: Session, policy: Policy) -> list[TaskRow]:
    """The task breakdown of one policy: one row per article."""
    return [_task_row(policy, article) for article in policy.articles]


def department_task_rows(
    session: Session, department: str, *, unmapped: bool = False, code: str | None = None
) -> list[TaskRow]:
    """Everything a department must do across all published policies (lead or cooperating).

    With ``unmapped`` the name is taken as written in tasks the registry could not resolve (one
    not yet mapped); ``code`` selects a department exactly, e.g. another province's 省财政厅.
    """
    name = department.strip()
    if code:
        dept_code: str | None = code
    else:
        dept = None if unmapped else registry_for(session).lookup(name)
        dept_code = dept.code if dept else None
    seen: set[int] = set()
    rows = []
    for task in repository.tasks_of_department(session, dept_code, name):
        article = task.article
        if article.id in seen:
            continue
        seen.add(article.id)
        rows.append(_task_row(article.policy, article))
    return rows


def quantity_value(raw: dict[str, Any]) -> Decimal:
    """A stored quantity's value as Decimal."""
    return Decimal(str(raw["value"]))


def load_demo(session: Session) -> None:
    """Import the seed document (甘工信发〔2020〕351号) as a published policy; safe to run again."""
    data = resources.files("huiqi.policy").joinpath(DEMO_FILE).read_bytes()
    try:
        result = import_source(session, ingest_bytes(data, "甘工信发〔2020〕351号.txt"))
    except IngestError as exc:  # the packaged sample is known-good; a failure is a packaging bug
        raise PolicyError(str(exc)) from exc
    if result.policy.status != PolicyStatus.published:
        set_status(session, result.policy, PolicyStatus.published)
