"""Running an import: read, validate, and write good rows in batches, one transaction each.

The header row chooses the template (enterprise values or graduate hire records). Writing one
batch overlaps validating the next: on PostgreSQL in a writer thread, and for a large CSV in a
separate reading process (``batches``); a web import is recorded as an ImportJob with a heartbeat
and progress.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from huiqi.core import clock, db
from huiqi.core.db import utcnow
from huiqi.core.export import SafeCsvWriter
from huiqi.enterprise import graduates
from huiqi.enterprise.catalogue import catalogue
from huiqi.enterprise.importer.batches import Cut, cut_in_process, cut_rows, wants_reader_process
from huiqi.enterprise.importer.headers import columns, is_graduates_header, map_headers
from huiqi.enterprise.importer.reading import SheetLimits, read_rows
from huiqi.enterprise.importer.report import ImportRefused, ImportReport, Issue, ReaderUsage
from huiqi.enterprise.importer.staging import stage
from huiqi.enterprise.importer.validation import RowContext
from huiqi.enterprise.models import ImportJob

# A web job records a heartbeat at least this often while it reads, so a job whose heartbeat is
# much older (ImportJob.STALE_AFTER) belongs to a process that no longer runs.
HEARTBEAT_SECONDS = 10.0


@dataclass
class _Batch:
    """Good rows to write in one transaction, with the file's counts when it was cut."""

    items: Any  # hire records, or the enterprise rows checked column-wise (BatchResult)
    rows_seen: int


class _Writer:
    """Writes batches on a background thread, one transaction each, in file order.

    Reading and validating the next batch overlaps the database work of the previous one (the
    drivers release the interpreter lock while the database works). At most one batch waits, so
    memory stays bounded. The first error stops the writer and is raised in the reading thread.
    """

    def __init__(self, write: Callable[[_Batch], None], *, threaded: bool) -> None:
        self._write = write
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(
                target=self._run, name="huiqi-import-writer", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._cancelled.is_set():
                continue
            try:
                self._write(batch)
            except BaseException as exc:  # handed to the reading thread, which re-raises it
                self._error = exc
                self._cancelled.set()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, batch: _Batch | None) -> None:
        """Queue a batch (None ends the stream); raises the writer's error if it failed."""
        if self._thread is None:
            if batch is not None:
                self._write(batch)
            return
        while True:
            self._check()
            try:
                self._queue.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait for every queued batch to be written; raises the writer's error if any."""
        self.submit(None)
        if self._thread is not None:
            self._thread.join()
        self._check()

    def cancel(self) -> None:
        """Drop queued batches, let the one being written commit, and stop."""
        if self._thread is not None:
            self._cancelled.set()
            self._queue.put(None)
            self._thread.join()


def run_import(
    factory: sessionmaker[Session],
    path: Path,
    *,
    errors_path: Path | None = None,
    batch_size: int = 5000,
    source: str | None = None,
    recorded_by: str | None = None,
    job_id: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    today: date | None = None,
    sheet_limits: SheetLimits | None = None,
    reader_process: bool | None = None,
) -> ImportReport:
    """Import a file: each batch of good rows in its own transaction; returns the counts.

    The header row chooses the template: enterprise values, or graduate hire records (the
    ``graduates`` template). Raises ImportRefused before writing anything when the file or its
    headers cannot be read. ``reader_process`` says whether an enterprise CSV is read and
    validated in a separate process (None: when it has at least
    ``batches.READER_PROCESS_BYTES``).
    """
    if source is not None and source not in catalogue().sources:
        raise ImportRefused(f"未知数据来源 {source!r} / unknown source")
    rows = read_rows(path, sheet_limits)
    header = next(rows, None)
    if header is None:
        raise ImportRefused("文件为空 / the file is empty")
    hires = is_graduates_header(header)
    mapping = map_headers(header, hires=hires)
    ctx = RowContext(
        mapping=mapping,
        header_text={key: str(header[i]).strip() for i, key in mapping.items()},
        default_source=source,
        today=today or clock.today(),
    )
    if hires:
        for key, zh, *_rest in graduates.COLUMNS:
            ctx.header_text.setdefault(key, zh)
    else:
        for key, zh, _en in columns():
            ctx.header_text.setdefault(key, zh)
    report = ImportReport()
    lock = threading.Lock()  # the writer thread reports rejected rows too
    err_fh: IO[str] | None = None
    writer: Any = None
    if errors_path is not None:
        errors_path.parent.mkdir(parents=True, exist_ok=True)
        err_fh = errors_path.open("w", encoding="utf-8-sig", newline="")
        writer = SafeCsvWriter(err_fh)
        writer.writerow(["row", "column", "value", "reason"])

    def reject(issues: list[Issue]) -> None:
        with lock:
            report.rejected += 1
            for issue in issues:
                if len(report.first_errors) < 20:
                    report.first_errors.append(issue)
                if writer is not None:
                    writer.writerow([issue.row, issue.column, issue.value, issue.reason])

    def write(batch: _Batch) -> None:
        with factory() as session:
            results: Iterable[str]
            if hires:
                outcome, refused = graduates.write(session, batch.items, recorded_by=recorded_by)
                by_row = {h.row: h for h in batch.items}
                for row, key, reason in refused:
                    issue = Issue(row, ctx.header_text[key], by_row[row].credit_code, reason)
                    reject([issue])
                results = outcome.values()
            else:
                results = stage(
                    session, batch.items.codes, batch.items.values, recorded_by=recorded_by
                ).values()
            with lock:
                for result in results:
                    setattr(report, result, getattr(report, result) + 1)
                if job_id is not None:
                    _save_progress(session, job_id, report, batch.rows_seen)
            session.commit()
            if db.refresh_statistics(session):
                session.commit()
        if on_progress:
            on_progress(batch.rows_seen)

    with factory() as probe:
        # PostgreSQL works in its own process, so the next batch is validated meanwhile; SQLite
        # works in this one and takes the interpreter lock back for every row, so it writes inline
        threaded = probe.get_bind().dialect.name != "sqlite"
    heartbeat = HEARTBEAT_SECONDS if job_id is not None else None
    cuts: Generator[Cut, None, None]
    if wants_reader_process(path, hires, reader_process):
        # a large CSV: read and validated in a process of its own, written in this one
        rows.close()
        report.reader = ReaderUsage()
        cuts = cut_in_process(
            path, ctx, batch_size=batch_size, heartbeat=heartbeat, usage=report.reader
        )
    else:
        cuts = cut_rows(rows, ctx, hires=hires, batch_size=batch_size, heartbeat=heartbeat)
    pipeline = _Writer(write, threaded=threaded)
    try:
        for piece in cuts:
            for issues in piece.rejected:
                reject(issues)
            report.rows = piece.rows_seen
            pipeline.submit(_Batch(piece.items, piece.rows_seen))
        pipeline.finish()
    except BaseException:
        pipeline.cancel()
        raise
    finally:
        cuts.close()  # a reading process still running is stopped
        rows.close()
        if err_fh is not None:
            err_fh.close()
    return report


def _save_progress(session: Session, job_id: int, report: ImportReport, rows_seen: int) -> None:
    job = session.get(ImportJob, job_id)
    if job is not None:
        job.rows_seen = rows_seen
        job.inserted, job.updated = report.inserted, report.updated
        job.unchanged, job.rejected = report.unchanged, report.rejected
        job.heartbeat_at = utcnow()


def run_job(
    factory: sessionmaker[Session],
    job_id: int,
    path: Path,
    errors_path: Path,
    *,
    source: str | None,
    recorded_by: str | None,
    sheet_limits: SheetLimits | None = None,
) -> None:
    """Run an import recorded as an ImportJob (the web page's background task)."""
    try:
        report = run_import(
            factory,
            path,
            errors_path=errors_path,
            source=source,
            recorded_by=recorded_by,
            job_id=job_id,
            sheet_limits=sheet_limits,
        )
        status, message = "done", None
    except ImportRefused as exc:
        report, status, message = ImportReport(), "refused", str(exc)
    except Exception as exc:  # the job page must say it failed rather than spin for ever
        report, status, message = ImportReport(), "failed", f"{type(exc).__name__}: {exc}"
    with factory() as session:
        job = session.get(ImportJob, job_id)
        if job is not None:
            if status == "done":
                _save_progress(session, job_id, report, report.rows)
            job.status = status
            job.message = message
            job.finished_at = utcnow()
            job.heartbeat_at = job.finished_at
            job.error_report = str(errors_path) if report.rejected else None
            session.commit()
