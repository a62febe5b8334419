"""The credit codes a file's rows have taken so far, each with the row that took it, kept compact.

A million codes in a dict of str to int cost about 150 MB; here each costs 26 bytes. The codes
of settled batches are fixed-width bytes in a few sorted numpy runs (with their row numbers),
searched by bisection; each run is merged into the one before it once it grows to half that one's
size, so there are at most about log2(rows / batch) runs. The codes taken since the last
``settle`` are in a small dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

WIDTH = 18
"""A normalised credit code's length (ASCII)."""

_KEY = np.dtype(f"S{WIDTH}")


class SeenCodes:
    """Normalised credit code → the number of the row that first gave it."""

    def __init__(self) -> None:
        self._runs: list[tuple[npt.NDArray[np.bytes_], npt.NDArray[np.int64]]] = []
        self._batch: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(codes) for codes, _ in self._runs) + len(self._batch)

    def get(self, code: str) -> int | None:
        """The row that took this code, or None."""
        row = self._batch.get(code)
        if row is not None:
            return row
        if len(code) != WIDTH or not code.isascii():
            return None
        found = int(self.settled([code])[0])
        return found or None

    def __setitem__(self, code: str, row: int) -> None:
        if len(code) != WIDTH or not code.isascii():
            raise ValueError(f"not a normalised credit code: {code!r}")
        self._batch[code] = row

    def claim(self, code: str, row: int) -> bool:
        """Take an unsettled code for this row unless a row since the last ``settle`` took it.

        The caller has looked the code up among the settled ones (``settled``).
        """
        if code in self._batch:
            return False
        self[code] = row
        return True

    def settled(self, codes: Sequence[str]) -> npt.NDArray[np.int64]:
        """The row that took each of these normalised codes before the last ``settle``; 0: none."""
        found = np.zeros(len(codes), dtype=np.int64)
        if not self._runs or not len(codes):
            return found
        keys = np.array(codes, dtype=_KEY)
        for run, rows in self._runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            hit = run[at] == keys
            found[hit] = rows[at[hit]]
        return found

    def settle(self) -> None:
        """Move the codes taken since the last call into the sorted runs."""
        if not self._batch:
            return
        codes = np.array(list(self._batch), dtype=_KEY)
        rows = np.fromiter(self._batch.values(), dtype=np.int64, count=len(self._batch))
        self._batch = {}
        order = np.argsort(codes, kind="stable")
        self._runs.append((codes[order], rows[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (a, a_rows), (b, b_rows) = self._runs[-2], self._runs[-1]
            # b's codes go in before the first of a's that sorts after them: one pass, one copy
            at = np.searchsorted(a, b)
            self._runs[-2:] = [(np.insert(a, at, b), np.insert(a_rows, at, b_rows))]
