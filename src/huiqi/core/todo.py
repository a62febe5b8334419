"""One to-do interface for the workbenches: each domain contributes a provider listing what a
user has to act on (grants to review, rules awaiting publication, applications near their
deadline…); the home page shows them all, so a new domain only adds its provider to PROVIDERS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from huiqi.accounts.models import User


@dataclass(frozen=True)
class TodoItem:
    """Something to act on: a count, what it is (Chinese and English) and where to do it."""

    zh: str
    en: str
    count: int
    href: str
    urgent: bool = False


Provider = Callable[[Session, "User"], list[TodoItem]]

# module paths of the domains' providers (each module defines `todo(session, user)`)
PROVIDERS = (
    "huiqi.grants.todo",
    "huiqi.matching.todo",
    "huiqi.finance.todo",
    "huiqi.notify.todo",
    "huiqi.funds.todo",
    "huiqi.funds.officer_todo",
)


def providers() -> list[Provider]:
    """Every domain's to-do provider."""
    return [import_module(name).todo for name in PROVIDERS]


def todo_for(session: Session, user: User) -> list[TodoItem]:
    """What this user has to act on, from every domain (items with a count; urgent first)."""
    items: list[TodoItem] = []
    for provider in providers():
        items.extend(i for i in provider(session, user) if i.count)
    return sorted(items, key=lambda i: not i.urgent)
