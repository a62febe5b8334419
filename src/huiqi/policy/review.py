"""What the officer's review page shows: the source text, line by line, anchored at each article."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from markupsafe import Markup

from huiqi.policy.search import highlight


@dataclass
class SourceLine:
    """One line of the source text and the numbers of the articles that start on it."""

    text: str
    articles: list[int] = field(default_factory=list)

    def marked(self, quantities: set[str]) -> Markup:
        """The line, escaped, with the policy's quantitative commitments highlighted."""
        return highlight(self.text, quantities, css_class="qty")


def source_lines(text: str, articles: Iterable[tuple[int, str]]) -> list[SourceLine]:
    """Split ``text`` into lines and find where each (number, label) article starts.

    Articles are looked for in document order. An article normally opens a line with its label
    ((一)…, 第一条…); when the source glued it onto the previous line, the first later line
    containing the label counts. An article not found (corrected away, say) gets no anchor.
    """
    lines = [SourceLine(line) for line in text.rstrip("\n").split("\n")]
    cursor = 0
    for number, label in articles:
        if not label:
            continue
        found = next(
            (i for i in range(cursor, len(lines)) if lines[i].text.lstrip().startswith(label)),
            None,
        )
        if found is None:
            found = next((i for i in range(cursor, len(lines)) if label in lines[i].text), None)
        if found is not None:
            lines[found].articles.append(number)
            cursor = found
    return lines
