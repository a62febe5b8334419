"""Cutting a file's rows into validated batches: in this process, or in a reading process.

Reading and validating a large CSV costs as much CPU as writing it, and both hold the
interpreter lock, so in one process they take turns. A CSV of at least ``READER_PROCESS_BYTES``
is therefore read and validated by a separate process (a fresh interpreter, so nothing of this one
— threads, database connections, its main module — is copied into it) that sends each validated batch through a pipe while
this process writes the one before. The pipe holds at most one batch: memory stays bounded, and
if this process dies the reader's next send fails and it stops.
"""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from huiqi.core.memory import peak_rss_mb
from huiqi.enterprise.importer.columnar import validate_batch
from huiqi.enterprise.importer.reading import read_rows
from huiqi.enterprise.importer.report import ImportRefused, Issue, ReaderUsage
from huiqi.enterprise.importer.validation import RowContext, validate_hire

READER_PROCESS_BYTES = 10_000_000
"""CSV files of at least this size (about 50,000 rows) are read by a separate process; below it
starting that process (about 1.5 s of imports) costs more than it saves."""


@dataclass
class Cut:
    """One batch of good rows with the rows rejected since the previous batch.

    ``items`` holds hire records, or the enterprise rows checked column-wise (a BatchResult);
    ``rows_seen`` counts the file's rows (blank lines aside) read so far.
    """

    items: Any
    rows_seen: int
    rejected: list[list[Issue]]


def cut_rows(
    rows: Iterator[list[Any]],
    ctx: RowContext,
    *,
    hires: bool,
    batch_size: int,
    heartbeat: float | None = None,
) -> Generator[Cut, None, None]:
    """Validated batches of the rows after the header, the last one possibly empty.

    ``heartbeat`` also cuts a batch after that many seconds, so a slow file still reports
    progress.
    """
    batch: list[Any] = []
    rejected: list[list[Issue]] = []
    seen = 0
    beat = time.monotonic()

    def cut() -> Cut:
        if hires:
            return Cut(batch, seen, rejected)
        result = validate_batch(ctx, batch)
        return Cut(result, seen, rejected + result.rejected)

    for number, cells in enumerate(rows, start=2):
        if not "".join(cells).strip():
            continue  # blank lines are not rows
        seen += 1
        if hires:
            item, issues = validate_hire(ctx, number, cells)
            if issues:
                rejected.append(issues)
            elif item is not None:
                batch.append(item)
        else:
            batch.append((number, cells))
        if len(batch) >= batch_size or (
            heartbeat is not None and time.monotonic() - beat > heartbeat
        ):
            yield cut()
            batch, rejected, beat = [], [], time.monotonic()
    yield cut()


def wants_reader_process(path: Path, hires: bool, asked: bool | None = None) -> bool:
    """Whether to read and validate this file in a separate process: an enterprise CSV, when
    ``asked`` or (None) when it is large."""
    if hires or asked is False or path.suffix.lower() not in (".csv", ".txt"):
        return False
    return bool(asked) or path.stat().st_size >= READER_PROCESS_BYTES


def _reader(
    conn: Connection, path: str, ctx: RowContext, batch_size: int, heartbeat: float | None
) -> None:
    """Reading process body: send ("cut", Cut) per batch, then ("end", ReaderUsage).

    A file that turns out unreadable sends ("refused", reason); anything else that goes wrong
    sends ("failed", traceback text). The importing process gone, the next send fails: stop.
    """
    try:
        rows = read_rows(Path(path))
        next(rows, None)  # the header: the importing process has mapped it already
        for piece in cut_rows(rows, ctx, hires=False, batch_size=batch_size, heartbeat=heartbeat):
            conn.send(("cut", piece))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(("end", ReaderUsage(usage.ru_utime + usage.ru_stime, peak_rss_mb())))
    except (BrokenPipeError, ConnectionResetError):
        return
    except ImportRefused as exc:
        conn.send(("refused", str(exc)))
    except BaseException:  # reported to the importing process, which raises it there
        conn.send(("failed", traceback.format_exc()))
    finally:
        conn.close()


def reader_main() -> None:
    """Entry point of the reading process: its arguments come pickled on stdin, and it sends
    to the file descriptor named on its command line."""
    conn = Connection(int(sys.argv[1]), readable=False)
    path, ctx, batch_size, heartbeat = pickle.load(sys.stdin.buffer)
    _reader(conn, path, ctx, batch_size, heartbeat)


def cut_in_process(
    path: Path,
    ctx: RowContext,
    *,
    batch_size: int,
    heartbeat: float | None = None,
    usage: ReaderUsage | None = None,
) -> Generator[Cut, None, None]:
    """``cut_rows`` of an enterprise CSV, run in a separate process; see the module docstring.

    Raises ImportRefused as reading in this process would; ``usage`` receives the reader's CPU
    and peak memory once it has finished. Closing the generator early stops the reader.
    """
    read_end, send_end = os.pipe()
    try:
        # a fresh interpreter that imports only the reader: never this process's __main__
        reader = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-c", _ENTRY, str(send_end)],
            stdin=subprocess.PIPE,
            pass_fds=(send_end,),
            # the importing process works on the other core: one Polars thread here keeps the
            # allocator's per-thread arenas, and so this process's memory, few
            env={**os.environ, "POLARS_MAX_THREADS": "1"},
        )
    finally:
        os.close(send_end)  # the reader holds the only sending end: its exit ends our reads
    receive = Connection(read_end, writable=False)
    try:
        assert reader.stdin is not None
        with reader.stdin:
            pickle.dump((str(path), ctx, batch_size, heartbeat), reader.stdin)
        while True:
            try:
                kind, payload = receive.recv()
            except EOFError:
                raise RuntimeError(
                    f"the import's reading process stopped (exit code {reader.wait()})"
                ) from None
            if kind == "cut":
                yield payload
            elif kind == "end":
                if usage is not None:
                    usage.cpu_seconds, usage.peak_mb = payload.cpu_seconds, payload.peak_mb
                return
            elif kind == "refused":
                raise ImportRefused(payload)
            else:
                raise RuntimeError(f"reading the import file failed:\n{payload}")
    finally:
        receive.close()  # a reader still sending gets a broken pipe and stops
        try:
            reader.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()


_ENTRY = "from huiqi.enterprise.importer.batches import reader_main; reader_main()"
