"""Page numbers and page links for long lists, keeping the other query parameters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

PAGE_SIZE = 20
"""Rows per page on the public list and on search results."""

API_DEFAULT_LIMIT = 50
API_MAX_LIMIT = 200
"""Largest page the JSON API hands out in one response."""


@dataclass(frozen=True)
class Pager:
    """Where a page sits in a result of ``total`` rows, and links to the other pages."""

    page: int
    size: int
    total: int
    path: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(
        cls,
        page: int,
        total: int,
        path: str,
        params: Iterable[tuple[str, str]] = (),
        size: int = PAGE_SIZE,
    ) -> Pager:
        """A pager on ``page`` (clamped to the pages there are), keeping non-empty ``params``."""
        pages = max(1, -(-total // size))
        kept = tuple((k, v) for k, v in params if k != "page" and v != "")
        return cls(page=min(max(page, 1), pages), size=size, total=total, path=path, params=kept)

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.size

    @property
    def first_row(self) -> int:
        """1-based number of the first row shown (0 when there are none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last_row(self) -> int:
        """1-based number of the last row shown."""
        return min(self.offset + self.size, self.total)

    @property
    def has_prev(self) -> bool:
        """Whether a page comes before this one."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Whether a page comes after this one."""
        return self.page < self.pages

    def url(self, page: int) -> str:
        """Link to ``page`` with the same filters."""
        params = list(self.params)
        if page > 1:
            params.append(("page", str(page)))
        return self.path + ("?" + urlencode(params) if params else "")

    def window(self, around: int = 2) -> list[int | None]:
        """Page numbers to link: the first, the last and those near this one; None for a gap."""
        wanted = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        numbers = sorted(n for n in wanted if 1 <= n <= self.pages)
        out: list[int | None] = []
        for n in numbers:
            if out and n - (out[-1] or 0) > 1:
                out.append(None)
            out.append(n)
        return out
