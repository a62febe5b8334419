"""Typed domain events and a small synchronous in-process bus.

A domain publishes what happened (an enterprise changed, results changed, a grant was decided);
other domains react through handlers that `huiqi.wiring.install()` subscribes in one place. A
handler runs in the publisher's session and transaction, in priority order (lower first), so
everything a change causes is committed or rolled back together at the CLI or request boundary.

This module depends on nothing in huiqi, so every domain may import it without creating a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar, overload

import numpy as np
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ResultChange:
    """A new or changed matching result, as matching stores it and grants and notify read it."""

    credit_code: str
    rule_id: str
    rule_version: str
    result: str  # eligible | ineligible | unknown
    missing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    rule_title: str = ""
    enterprise_name: str = ""
    amount_fen: int | None = None
    mode: str = "push"  # push | auto_grant | apply
    legal_basis: str = ""
    previous: str | None = None  # the stored result before this change (None: first result)
    deadline: date | None = None
    # the stored state this change replaces, as a stamp of when it was written ("" for none):
    # with it in the dedupe key each change is told once, however often a result comes back
    since: str = ""


RESULTS = ("ineligible", "eligible", "unknown")  # by result code, as matching packs them
NO_PREVIOUS = 3  # previous-result code of a pair that had no stored result


@dataclass(frozen=True)
class RuleFacts:
    """What a change says about its rule (the same for every enterprise)."""

    rule_id: str
    rule_version: str
    title: str
    mode: str
    legal_basis: str


@dataclass(frozen=True, eq=False)
class ChangeSet(Sequence[ResultChange]):
    """Many result changes kept column-wise, sorted by enterprise; a ResultChange is made only
    when one is read, so a first run's millions of news cost arrays, not objects.

    `enterprise` and `rule` index `enterprises` (credit code, name) and `rules`; `result` and
    `previous` are result codes (RESULTS; NO_PREVIOUS for none); `missing` is the comma-joined
    missing fields of unknown results; `amounts` maps a change's position to its amount; `since`
    holds each enterprise's ResultChange.since (empty: none for all).
    """

    rules: tuple[RuleFacts, ...]
    enterprises: tuple[tuple[str, str], ...]
    enterprise: np.ndarray
    rule: np.ndarray
    result: np.ndarray
    previous: np.ndarray
    missing: np.ndarray
    amounts: dict[int, int] = field(default_factory=dict)
    since: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.enterprise.size)

    @overload
    def __getitem__(self, i: int) -> ResultChange: ...

    @overload
    def __getitem__(self, i: slice) -> list[ResultChange]: ...

    def __getitem__(self, i: int | slice) -> ResultChange | list[ResultChange]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        who = int(self.enterprise[i])
        code, name = self.enterprises[who]
        facts = self.rules[int(self.rule[i])]
        previous = int(self.previous[i])
        text = str(self.missing[i] or "")
        return ResultChange(
            credit_code=code,
            rule_id=facts.rule_id,
            rule_version=facts.rule_version,
            result=RESULTS[int(self.result[i])],
            missing=tuple(m for m in text.split(",") if m),
            rule_title=facts.title,
            enterprise_name=name,
            amount_fen=self.amounts.get(i),
            mode=facts.mode,
            legal_basis=facts.legal_basis,
            previous=None if previous == NO_PREVIOUS else RESULTS[previous],
            since=self.since[who] if self.since else "",
        )

    def __iter__(self) -> Iterator[ResultChange]:
        for i in range(len(self)):
            yield self[i]

    def of_mode(self, mode: str) -> list[ResultChange]:
        """The changes of rules with this mode (e.g. auto_grant), made into objects."""
        wanted = np.asarray([f.mode == mode for f in self.rules], dtype=bool)
        if not wanted.any():
            return []
        return [self[i] for i in np.flatnonzero(wanted[self.rule]).tolist()]


def of_mode(changes: Sequence[ResultChange], mode: str) -> list[ResultChange]:
    """The changes of rules with this mode, without making objects of a ChangeSet's others."""
    if isinstance(changes, ChangeSet):
        return changes.of_mode(mode)
    return [c for c in changes if c.mode == mode]


@dataclass(frozen=True)
class EnterpriseChanged:
    """Registry values of these enterprises (credit codes) were inserted or changed.

    `created_values`, when the publisher has them at hand (a bulk import's batch), are all the
    stored values of the enterprises the change created, as a Polars frame (code, field, year,
    value, as_of, source, like ``enterprise.repository.live_value_frame``): a handler may read
    those enterprises' values there instead of from the database.
    """

    codes: frozenset[str]
    created_values: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class ResultsChanged:
    """Matching stored new or changed results, evaluated on `on`."""

    changes: Sequence[ResultChange]  # a tuple, or a ChangeSet for many
    on: date
    actor: str | None = None  # who caused the run (e.g. the officer who published a rule)


@dataclass(frozen=True)
class GrantDecided:
    """A grant reached a decision the enterprise is told about (e.g. disbursed).

    It carries the message grants composed, so the notifying domain needs nothing of grants.
    """

    grant_id: int
    credit_code: str
    status: str
    rule_id: str
    rule_version: int
    subject: str
    body: str
    link: str
    # the same message in English
    subject_en: str = ""
    body_en: str = ""


E = TypeVar("E")
Handler = Callable[[Session, Any], None]


@dataclass
class Bus:
    """Handlers by event type, each with a priority (lower runs first) and a label."""

    handlers: dict[type, list[tuple[int, str, Handler]]] = field(default_factory=dict)

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[Session, E], None],
        priority: int = 100,
        label: str = "",
    ) -> None:
        """Call `handler(session, event)` for every published event of this type (once per handler).

        `label` names what the handler does in progress reports (e.g. "grants").
        """
        listed = self.handlers.setdefault(event_type, [])
        if all(fn is not handler for _, _, fn in listed):
            listed.append((priority, label or handler.__name__, handler))
            listed.sort(key=lambda entry: entry[0])

    def unsubscribe(self, event_type: type, handler: Handler) -> None:
        """Stop calling a handler (tests subscribe temporary ones)."""
        listed = self.handlers.get(event_type, [])
        listed[:] = [entry for entry in listed if entry[2] is not handler]

    def publish(
        self,
        session: Session,
        event: object,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        """Run the handlers of the event's type now, in the caller's session and transaction.

        `observe(label, seconds)` is told how long each handler took.
        """
        for _, label, handler in list(self.handlers.get(type(event), [])):
            start = time.perf_counter()
            handler(session, event)
            if observe is not None:
                observe(label, time.perf_counter() - start)

    def subscribed(self, event_type: type) -> list[Handler]:
        """The handlers of an event type, in the order they run."""
        return [fn for _, _, fn in self.handlers.get(event_type, [])]


bus = Bus()


def subscribe(
    event_type: type[E], handler: Callable[[Session, E], None], priority: int = 100, label: str = ""
) -> None:
    """Subscribe a handler on the process bus."""
    bus.subscribe(event_type, handler, priority, label)


def unsubscribe(event_type: type, handler: Handler) -> None:
    """Remove a handler from the process bus."""
    bus.unsubscribe(event_type, handler)


def publish(
    session: Session, event: object, observe: Callable[[str, float], None] | None = None
) -> None:
    """Publish an event on the process bus within the caller's transaction."""
    bus.publish(session, event, observe)


def enterprise_changed(session: Session, codes: Iterable[str], created_values: Any = None) -> None:
    """Publish EnterpriseChanged for these credit codes (nothing when there are none)."""
    found = frozenset(codes)
    if found:
        publish(session, EnterpriseChanged(found, created_values))


def results_changed(
    session: Session, changes: Iterable[ResultChange], on: date, actor: str | None = None
) -> None:
    """Publish ResultsChanged for these changes (nothing when there are none)."""
    listed = tuple(changes)
    if listed:
        publish(session, ResultsChanged(listed, on, actor))
