"""A large CSV read and validated in a separate process gives what reading it in this one gives."""

from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.orm import Session, sessionmaker

from huiqi.enterprise import service
from huiqi.enterprise.importer import ImportRefused, RowContext, map_headers, read_rows, run_import
from huiqi.enterprise.importer.batches import cut_in_process, cut_rows, wants_reader_process
from huiqi.enterprise.population import generate, write_file

TODAY = date(2025, 6, 30)


def _mixed_file(path: Path) -> Path:
    """Generated rows with bad ones among them: a wrong check character, a duplicate of a row
    two batches back, an unknown region, a blank line, a short row without a credit code."""
    write_file(generate(130, seed=5), path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    header, rows = lines[0], lines[1:]
    code = header.index("统一社会信用代码")
    region = header.index("所在地行政区划代码")
    rows[10][code] = rows[10][code][:-1] + ("0" if rows[10][code][-1] != "0" else "1")
    rows[95][code] = rows[3][code]
    rows[50][region] = "629999"
    rows.insert(60, [])
    rows.insert(70, ["not-a-code", "短行"])
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _context(path: Path) -> tuple[RowContext, object]:
    rows = read_rows(path)
    header = next(rows)
    mapping = map_headers(header)
    ctx = RowContext(
        mapping=mapping,
        header_text={key: str(header[i]).strip() for i, key in mapping.items()},
        default_source=None,
        today=TODAY,
    )
    return ctx, rows


def test_the_reading_process_cuts_the_same_batches(tmp_path: Path) -> None:
    src = _mixed_file(tmp_path / "mixed.csv")
    ctx, rows = _context(src)
    here = list(cut_rows(rows, ctx, hires=False, batch_size=40))  # type: ignore[arg-type]
    ctx2, rows2 = _context(src)
    rows2.close()  # type: ignore[attr-defined]
    there = list(cut_in_process(src, ctx2, batch_size=40))
    assert len(here) == len(there) == 4
    for a, b in zip(here, there, strict=True):
        assert a.rows_seen == b.rows_seen
        assert a.rejected == b.rejected
        assert a.items.codes == b.items.codes
        assert a.items.rejected == b.items.rejected
        assert a.items.values.equals(b.items.values)
    assert sum(len(c.rejected) for c in there) == 4  # check character, duplicate, region, short
    assert there[-1].rows_seen == 131  # the blank line is no row


def test_an_import_through_the_reading_process(
    session_maker: sessionmaker[Session], tmp_path: Path
) -> None:
    src = _mixed_file(tmp_path / "mixed.csv")
    errors = tmp_path / "errors.csv"
    report = run_import(
        session_maker, src, errors_path=errors, batch_size=40, today=TODAY, reader_process=True
    )
    assert report.reader is not None and report.reader.cpu_seconds > 0
    assert report.counts() == {"inserted": 127, "updated": 0, "unchanged": 0, "rejected": 4}
    with errors.open(encoding="utf-8-sig") as fh:
        reported = [(int(r["row"]), r["column"]) for r in csv.DictReader(fh)]
    assert [row for row, _ in reported] == [12, 52, 72, 99]
    with session_maker() as s:
        first = service.current_frame(s)
    # read in this process, the same file changes nothing
    again = run_import(session_maker, src, batch_size=40, today=TODAY, reader_process=False)
    assert again.reader is None
    assert again.counts() == {"inserted": 0, "updated": 0, "unchanged": 127, "rejected": 4}
    with session_maker() as s:
        assert service.current_frame(s).equals(first)
    assert first.filter(pl.col("size_class").is_not_null()).height > 100


def test_an_unreadable_file_is_refused_by_the_reading_process(tmp_path: Path) -> None:
    src = tmp_path / "broken.csv"
    write_file(generate(3, seed=1), src)
    with src.open("ab") as fh:
        fh.write(
            b"x" * 70_000 + b"\n\xff\xfe broken\n"
        )  # past the 64 KB the encoding is guessed on
    ctx, rows = _context(src)
    rows.close()  # type: ignore[attr-defined]
    with pytest.raises(ImportRefused, match="CSV"):
        list(cut_in_process(src, ctx, batch_size=40))


def _readers() -> list[int]:
    """Reading processes started by this one that are still running."""
    mine = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if stat[1] == mine and stat[0] != "Z" and b"reader_main" in cmdline:
            found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_stopping_early_stops_the_reading_process(tmp_path: Path) -> None:
    src = _mixed_file(tmp_path / "mixed.csv")
    ctx, rows = _context(src)
    rows.close()  # type: ignore[attr-defined]
    cuts = cut_in_process(src, ctx, batch_size=10)
    next(cuts)
    assert _readers()
    cuts.close()
    assert _readers() == []


def test_only_a_large_enterprise_csv_gets_a_reading_process(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    write_file(generate(3, seed=1), small)
    assert not wants_reader_process(small, hires=False)
    assert wants_reader_process(small, hires=False, asked=True)
    assert not wants_reader_process(small, hires=True, asked=True)
    assert not wants_reader_process(tmp_path / "big.xlsx", hires=False, asked=True)
