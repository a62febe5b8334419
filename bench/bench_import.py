"""Bulk-import benchmark: rows per second and peak memory, SQLite and PostgreSQL, 100k and 1M rows.

    .venv/bin/python -m bench import                           # 100k and 1M rows, both backends
    .venv/bin/python -m bench import --rows 100000 --backend sqlite

Each measurement runs in its own process (so peak RSS is that import's own). The baseline is a
plain DB-API executemany of the same rows as text into a bare table, measured in the same run on
the same database; the report prints huiqi's rate as a ratio of it. The same file is then imported
a second time (every row unchanged) and that rate is printed too. The import does more per row
(validation, size classification, value history, the current frame), so the ratio says what that
costs. PostgreSQL: a scratch database (default huiqi_bench on 127.0.0.1) is dropped and rebuilt.

The domain event handlers are installed as the command line installs them, so each batch also
seeds push subscriptions from the registry's consented contacts, as a real import does. On
PostgreSQL the server's CPU for the import (its backends' own, read from /proc) is printed too;
a large CSV is read and validated by a separate process, whose CPU and peak memory are printed
beside the import process's own (rows per CPU second count both, and the sum of the two peaks is
printed as the import's memory).
``--no-handlers`` measures the import alone; ``--compare-handlers`` measures both, one after
the other on the same file, and prints the rate with the handlers as a ratio of the rate without.
``--lock FILE`` holds an flock on FILE during each measurement only, not while the file is
generated (a shared machine's benchmark lock).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.lock import held
from huiqi.core.memory import peak_rss_mb

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[1]


def _fresh_database(backend: str, workdir: Path, pg_name: str) -> str:
    from sqlalchemy import text

    from huiqi.core import migrate
    from huiqi.core.db import make_engine

    if backend == "sqlite":
        path = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    migrate.upgrade(url)
    return url


def _baseline(url: str, csv_path: Path) -> float:
    """Rows/s of a plain executemany of the file's rows (as text) into a bare table."""
    from huiqi.core.db import make_engine

    engine = make_engine(url)
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        cols = ", ".join(f"c{i} TEXT" for i in range(len(header)))
        marks = ", ".join(["?" if url.startswith("sqlite") else "%s"] * len(header))
        raw = engine.raw_connection()
        cur = raw.cursor()
        cur.execute(f"CREATE TABLE baseline ({cols})")
        start = time.perf_counter()
        rows = 0
        batch: list[list[str]] = []
        for row in reader:
            batch.append(row + [""] * (len(header) - len(row)))
            if len(batch) == 1000:
                cur.executemany(f"INSERT INTO baseline VALUES ({marks})", batch)  # noqa: S608
                raw.commit()
                rows += len(batch)
                batch.clear()
        if batch:
            cur.executemany(f"INSERT INTO baseline VALUES ({marks})", batch)  # noqa: S608
            raw.commit()
            rows += len(batch)
        elapsed = time.perf_counter() - start
        raw.close()
    engine.dispose()
    return rows / elapsed


def _server_cpu(engine: Any) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (0 elsewhere).

    The server runs on this machine; each backend's utime and stime are read from /proc. The
    pool keeps its connections, so the backends that did the import are still there to read.
    """
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return 0.0
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        ticks = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists():
                fields = stat.read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def child(args: argparse.Namespace) -> None:
    """One measurement: fresh database, baseline, then the huiqi import; prints JSON."""
    from sqlalchemy.orm import sessionmaker

    from huiqi.core.db import make_engine
    from huiqi.enterprise.importer import run_import
    from huiqi.wiring import install

    if not args.no_handlers:
        install()  # as the command line does: a batch's changes reach their handlers
    # --backend collects a list (the parent's choices); a child is given exactly one
    (backend,) = args.backend
    workdir = Path(args.workdir)
    url = _fresh_database(backend, workdir, args.pg_name)
    baseline = _baseline(url, Path(args.csv))
    engine = make_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    start, cpu = time.perf_counter(), time.process_time()
    report = run_import(factory, Path(args.csv), errors_path=workdir / "errors.csv")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    server_cpu = _server_cpu(engine)
    again, again_elapsed, again_cpu = report, 0.0, 0.0
    if not args.no_reimport:
        start, again_cpu = time.perf_counter(), time.process_time()
        again = run_import(factory, Path(args.csv))
        again_elapsed, again_cpu = time.perf_counter() - start, time.process_time() - again_cpu
    engine.dispose()
    print(
        json.dumps(
            {
                "backend": backend,
                "rows": report.rows,
                "seconds": elapsed,
                "rows_per_s": report.rows / elapsed,
                "cpu_s": cpu,
                "reader_cpu_s": report.reader.cpu_seconds if report.reader else 0.0,
                "reader_peak_rss_mb": report.reader.peak_mb if report.reader else 0.0,
                "server_cpu_s": server_cpu,
                "baseline_rows_per_s": baseline,
                "peak_rss_mb": peak_rss_mb(),
                "counts": report.counts(),
                "reimport_rows_per_s": again.rows / again_elapsed if again_elapsed else None,
                "reimport_cpu_s": again_cpu,
                "reimport_counts": again.counts(),
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    """Generate the files, run every (size, backend) pair in a child process, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, action="append", help="row counts (default 100000 and 1000000)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--pg-name", default="huiqi_bench")
    parser.add_argument(
        "--no-reimport", action="store_true", help="skip the second import of the same file"
    )
    parser.add_argument(
        "--no-handlers",
        action="store_true",
        help="the import alone, without the event handlers (push subscriptions, matching)",
    )
    parser.add_argument(
        "--compare-handlers",
        action="store_true",
        help="measure with and without the event handlers, and print the ratio of the rates",
    )
    parser.add_argument("--lock", default=None, help="flock this file during each measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    from huiqi.enterprise.population import generate, write_file

    sizes = args.rows or [100_000, 1_000_000]
    backends = args.backend or ["sqlite", "postgres"]
    variants = [True, False] if args.compare_handlers else [not args.no_handlers]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            csv_path = Path(tmp) / f"pop-{size}.csv"
            write_file(generate(size, seed=2020), csv_path)
            mb = csv_path.stat().st_size / 1e6
            for backend in backends:
                rates: dict[bool, float] = {}
                for handlers in variants:
                    result = _measure(args, csv_path, tmp, backend, handlers)
                    rates[handlers] = result["rows_per_s"]
                    _print(result, backend, size, mb, handlers if args.compare_handlers else None)
                if len(rates) == 2:
                    print(
                        f"{backend:9s} {size:>9,} rows: with the handlers "
                        f"{rates[True] / rates[False]:.3f} × the rate without",
                        flush=True,
                    )


def _measure(
    args: argparse.Namespace, csv_path: Path, workdir: str, backend: str, handlers: bool
) -> dict[str, Any]:
    """One (file, backend, handlers) measurement in its own process, under the lock if given."""
    with held(args.lock):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_import", "--child", "--backend", backend,
             "--csv", str(csv_path),
             "--workdir", workdir, "--pg-name", args.pg_name,
             *(["--no-reimport"] if args.no_reimport else []),
             *([] if handlers else ["--no-handlers"])],
            check=True, capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        result["load_average"] = os.getloadavg()[0]
    return result


def _print(
    result: dict[str, Any], backend: str, size: int, mb: float, handlers: bool | None
) -> None:
    """One measurement's line (`handlers` says which variant when both are measured)."""
    server = f"; server CPU {result['server_cpu_s']:.1f} s" if result["server_cpu_s"] else ""
    again = (
        f"re-import (all unchanged) {result['reimport_rows_per_s']:>9,.0f} rows/s "
        f"(CPU {result['reimport_cpu_s']:.1f} s) {result['reimport_counts']}"
        if result["reimport_rows_per_s"]
        else "re-import skipped"
    )
    variant = "" if handlers is None else ("handlers    " if handlers else "no handlers ")
    reader_cpu = result.get("reader_cpu_s", 0.0)
    reader = (
        f" + reading process {reader_cpu:.1f} s (peak RSS {result['reader_peak_rss_mb']:.0f} MB)"
        if reader_cpu
        else ""
    )
    # the two processes run side by side: the import's memory is the sum of their peaks
    combined = (
        f" (with the reading process's: {result['peak_rss_mb'] + result['reader_peak_rss_mb']:.0f} MB)"
        if result["reader_peak_rss_mb"]
        else ""
    )
    print(
        f"{backend:9s} {variant}{size:>9,} rows ({mb:6.1f} MB): {result['rows_per_s']:>9,.0f} rows/s "
        f"in {result['seconds']:7.1f} s (import process CPU {result['cpu_s']:.1f} s{reader}, "
        f"{size / (result['cpu_s'] + reader_cpu):,.0f} rows per CPU second{server}); "
        f"load average {result['load_average']:.1f}; baseline executemany {result['baseline_rows_per_s']:>9,.0f} rows/s; "
        f"ratio {result['rows_per_s'] / result['baseline_rows_per_s']:.3f}; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB{combined}; {result['counts']}; {again}",
        flush=True,
    )


if __name__ == "__main__":
    main()
