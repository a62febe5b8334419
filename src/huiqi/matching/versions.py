"""Rule versions: publishing rules into the database and reading the published ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiqi.core.db import utcnow
from huiqi.core.errors import NotFound
from huiqi.matching.models import RuleVersion
from huiqi.rules.compiler import Rule
from huiqi.rules.library import Library, load_base, load_library
from huiqi.rules.source import RuleValidationError


class MatchingError(NotFound):
    """A matching request cannot be served (unknown rule or enterprise, invalid draft)."""


@dataclass
class LoadReport:
    """What `load_rules` did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


log = logging.getLogger("huiqi.matching")
_BASE: Library | None = None
_PARSED: dict[str, Rule] = {}


def base_library() -> Library:
    """Derived values and parameters that stored rules reference (loaded once)."""
    global _BASE
    if _BASE is None:
        _BASE = load_base()
    return _BASE


def _rule_from(version: RuleVersion) -> Rule:
    """The checked Rule of a stored version (cached by content hash)."""
    key = f"{version.rule_id}:{version.hash}"
    if key not in _PARSED:
        _PARSED[key] = base_library().parse_rule(
            version.source, f"{version.rule_id} v{version.version}"
        )
    return _PARSED[key]


def rule_of_version(version: RuleVersion) -> Rule:
    """The checked rule of any stored version (published, in review or retired)."""
    return _rule_from(version)


def new_version(
    session: Session, rule: Rule, *, status: str, created_at: datetime | None = None, **extra: Any
) -> RuleVersion:
    """A rule's next version row (number, text, title, department and legal basis), not yet added."""
    newest = latest_version(session, rule.id)
    basis = rule.doc.legal_basis[0]
    return RuleVersion(
        rule_id=rule.id,
        version=(newest.version + 1) if newest else 1,
        hash=rule.hash,
        status=status,
        source=rule.source,
        title_zh=rule.doc.title.zh,
        title_en=rule.doc.title.en,
        mode=rule.doc.mode,
        department=rule.doc.department,
        doc_number=basis.doc_number,
        article=basis.article,
        valid_from=rule.doc.valid_from,
        valid_to=rule.doc.valid_to,
        created_at=created_at or utcnow(),
        **extra,
    )


def publish_rule(
    session: Session, rule: Rule, created_by: str | None = None
) -> tuple[RuleVersion, bool]:
    """Store a rule as the published version; returns (version, whether anything changed).

    This is the trusted path of the packaged library (`huiqi rules load`, the demo); people change
    rules through huiqi.matching.workflow, which checks departments and reviews.
    """
    current = session.scalars(
        select(RuleVersion).where(RuleVersion.rule_id == rule.id, RuleVersion.status == "published")
    ).first()
    if current is not None and current.hash == rule.hash:
        return current, False
    if current is not None:
        current.status = "retired"
    now = utcnow()
    version = new_version(
        session,
        rule,
        status="published",
        created_at=now,
        created_by=created_by,
        published_by=created_by,
        published_at=now,
    )
    session.add(version)
    session.flush()
    return version, True


def load_rules(
    session: Session, library: Library | None = None, retire_missing: bool = False
) -> LoadReport:
    """Publish the library's rules (idempotent: an unchanged rule adds nothing)."""
    lib = library or load_library()
    report = LoadReport()
    for rule in lib.rules.values():
        existed = latest_version(session, rule.id) is not None
        _version, changed = publish_rule(session, rule, created_by="library")
        (report.updated if existed else report.added).append(
            rule.id
        ) if changed else report.unchanged.append(rule.id)
    if retire_missing:
        for version in published_versions(session):
            if version.rule_id not in lib.rules:
                version.status = "retired"
                report.retired.append(version.rule_id)
    session.flush()
    return report


def latest_version(session: Session, rule_id: str) -> RuleVersion | None:
    """The newest stored version of a rule."""
    return session.scalars(
        select(RuleVersion)
        .where(RuleVersion.rule_id == rule_id)
        .order_by(RuleVersion.version.desc())
        .limit(1)
    ).first()


def published_versions(session: Session) -> list[RuleVersion]:
    """Every rule's published version, by rule id."""
    return list(
        session.scalars(
            select(RuleVersion)
            .where(RuleVersion.status == "published")
            .order_by(RuleVersion.rule_id)
        )
    )


def published_rule(session: Session, rule_id: str) -> Rule:
    """The checked rule of a rule id's published version."""
    version = next((v for v in published_versions(session) if v.rule_id == rule_id), None)
    if version is None:
        raise MatchingError(f"no published rule {rule_id!r}")
    return _rule_from(version)


def published_rules(session: Session) -> list[tuple[RuleVersion, Rule]]:
    """Published versions with their checked rules.

    A stored version that today's checks refuse (say, a constant beyond 64 bits published
    before they existed) is left out with a logged reason, so it never stops a matching run.
    """
    out = []
    for version in published_versions(session):
        try:
            out.append((version, _rule_from(version)))
        except RuleValidationError as exc:
            log.error(
                "rule %s v%s is refused by validation and left out of matching: %s",
                version.rule_id,
                version.version,
                "; ".join(e.reason for e in exc.errors),
            )
    return out
