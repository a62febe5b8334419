"""What an import tells: the refusal of a whole file, one problem in one cell, and the counts."""

from __future__ import annotations

from dataclasses import dataclass, field

from huiqi.core.errors import Invalid


class ImportRefused(Invalid):
    """The whole file is refused (unreadable, wrong type, headers not understood)."""


@dataclass
class Issue:
    """One problem in one cell of the file."""

    row: int
    column: str
    value: str
    reason: str


@dataclass
class ReaderUsage:
    """What a separate reading process used: its CPU seconds and peak resident memory (MB)."""

    cpu_seconds: float = 0.0
    peak_mb: float = 0.0


@dataclass
class ImportReport:
    """Counts of an import and where its error report went."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rows: int = 0
    first_errors: list[Issue] = field(default_factory=list)
    # set when a separate process read and validated the file (``batches.cut_in_process``)
    reader: ReaderUsage | None = None

    def counts(self) -> dict[str, int]:
        """The four counts the CLI and API print."""
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }
