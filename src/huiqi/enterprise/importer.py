"""Bulk import of enterprises from CSV or XLSX (Chinese or English headers).

The file is streamed row by row (csv module / openpyxl read-only), every row is validated on its
own, and good rows are upserted by credit code in batches, one transaction per batch. A bad row is
reported (row, column, value, reason) and never half-written. Because an unchanged value is left
alone, importing a file again — or re-running an import that was killed half way — ends in the
state of one clean import. A file whose headers cannot be read is refused whole.
"""

from __future__ import annotations

import csv
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from huiqi.core import clock
from huiqi.core.codes import CodeError, validate_credit_code, validate_industry, validate_region
from huiqi.core.db import utcnow
from huiqi.core.errors import Invalid
from huiqi.core.export import SafeCsvWriter, append_row
from huiqi.core.money import FEN_PER_WAN
from huiqi.enterprise import graduates
from huiqi.enterprise.catalogue import Field, ValueProblem, catalogue
from huiqi.enterprise.models import ImportJob
from huiqi.enterprise.service import Incoming, upsert

# Implausible magnitudes: a money value in a 万元 column above 5万亿元 exceeds the revenue of any
# Chinese enterprise, and revenue above 5亿元 per employee points at 元 typed into a 万元 column.
MAX_WAN = 50_000_000 * FEN_PER_WAN
MAX_REVENUE_PER_EMPLOYEE = 50_000 * FEN_PER_WAN
NON_NEGATIVE_EXCEPT = {"taxable_income"}  # a loss gives a negative taxable income

META_HEADERS = {
    "year": ("年度", "year", ("数据年度", "figures_year", "年份")),
    "source": ("数据来源", "source", ("来源",)),
    "as_of": ("数据日期", "as_of", ("数据截至日期", "截至日期")),
}
SOURCE_ALIASES = {
    "tax": "税务",
    "market": "市场监管",
    "samr": "市场监管",
    "hr": "人社",
    "stats": "统计",
    "statistics": "统计",
    "science": "科技",
    "miit": "工信",
    "self": "self-reported",
    "自报": "self-reported",
    "企业自报": "self-reported",
}


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
class ImportReport:
    """Counts of an import and where its error report went."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rows: int = 0
    first_errors: list[Issue] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The four counts the CLI and API print."""
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
        }


def _norm(header: str) -> str:
    text = str(header).replace("（", "(").replace("）", ")").replace("\ufeff", "")
    return re.sub(r"\s+", "", text).lower()


def _columns() -> list[tuple[str, str, str]]:
    """(key, Chinese header, English header) of every importable column, template order."""
    cat = catalogue()
    cols = [("credit_code", *cat["credit_code"].headers)]
    for f in cat.stored:
        if f.kind == "profile":
            cols.append((f.name, *f.headers))
    cols.append(("year", META_HEADERS["year"][0], META_HEADERS["year"][1]))
    for f in cat.stored:
        if f.kind == "yearly":
            cols.append((f.name, *f.headers))
    for key in ("source", "as_of"):
        cols.append((key, META_HEADERS[key][0], META_HEADERS[key][1]))
    return cols


def _aliases() -> dict[str, str]:
    out: dict[str, str] = {}
    for key, zh, en in _columns():
        out[_norm(zh)] = key
        out[_norm(en)] = key
    for key, (_zh, _en, extra) in META_HEADERS.items():
        for alias in extra:
            out[_norm(alias)] = key
    cat = catalogue()
    for f in cat.stored:
        if f.type != "money":  # a bare money label would leave the unit unclear
            out.setdefault(_norm(f.zh), f.name)
            out.setdefault(_norm(f.name), f.name)
    out[_norm("credit_code")] = "credit_code"
    out[_norm("信用代码")] = "credit_code"
    return out


def is_graduates_header(headers: list[Any]) -> bool:
    """Whether a header row is the graduates template's (it names a hire-only column)."""
    known = {_norm(text): key for text, key in graduates.aliases().items()}
    return any(known.get(_norm(str(h))) in graduates.MARKERS for h in headers if h is not None)


def map_headers(headers: list[Any], *, hires: bool = False) -> dict[int, str]:
    """Column index → field key; raises ImportRefused naming every header it cannot read.

    ``hires`` reads the graduates template, whose required columns must all be present.
    """
    if hires:
        aliases = {_norm(text): key for text, key in graduates.aliases().items()}
        expected = "、".join(c[1] for c in graduates.COLUMNS)
        required: tuple[str, ...] = graduates.REQUIRED
    else:
        aliases = _aliases()
        expected = "、".join(zh for _k, zh, _en in _columns())
        required = ("credit_code",)
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(headers):
        text = "" if raw is None else str(raw).strip()
        if not text:
            continue
        key = aliases.get(_norm(text))
        if key is None:
            unknown.append(text)
            continue
        if key in seen:
            raise ImportRefused(f"列 {text!r} 与 {seen[key]!r} 重复 / duplicate column for {key}")
        seen[key] = text
        mapping[i] = key
    if unknown:
        raise ImportRefused(
            f"无法识别的表头 / unreadable headers: {', '.join(repr(u) for u in unknown[:10])}；"
            f"请使用导入模板的表头 / use the template headers: {expected}"
        )
    if "credit_code" not in mapping.values():
        raise ImportRefused("缺少“统一社会信用代码”列 / no credit_code column")
    missing = [key for key in required if key not in mapping.values()]
    if missing:
        names = "、".join(c[1] for c in graduates.COLUMNS if c[0] in missing)
        raise ImportRefused(f"缺少必填列 {names} / missing columns: {', '.join(missing)}")
    return mapping


# ---------------------------------------------------------------- reading files


def _cell_text(value: Any) -> str:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        # spreadsheets hand numbers over as binary floats: take the shortest exact decimal form
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value).strip()


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head.strip():
        raise ImportRefused("文件为空 / the file is empty")
    cut = head[: head.rfind(b"\n") + 1] or head
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            cut.decode(encoding)
        except UnicodeDecodeError:
            continue
        return path.open(encoding=encoding, newline="")
    raise ImportRefused("无法识别文件编码（应为 UTF-8 或 GBK）/ unreadable text encoding")


XLSX_MAX_UNZIPPED_BYTES = 2 * 1024**3
"""An XLSX whose parts unpack to more than this (2 GiB) is refused before it is read."""
XLSX_MAX_RATIO = 200
"""…and so is one that unpacks to more than 200 times its size beyond 100 MB (a compression bomb)."""


def check_xlsx(path: Path) -> None:
    """Refuse a spreadsheet that would unpack into far more than a registry export ever does.

    A small XLSX can declare hundreds of megabytes of shared strings or sheet rows; openpyxl then
    holds them in memory. The ZIP directory tells the unpacked sizes without unpacking anything.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportRefused("XLSX 文件已损坏 / damaged XLSX container") from None
    size = max(path.stat().st_size, 1)
    if total > XLSX_MAX_UNZIPPED_BYTES or (total > 100 * 1024**2 and total > XLSX_MAX_RATIO * size):
        raise ImportRefused(
            f"XLSX 解压后达 {total:,} 字节（文件仅 {size:,} 字节），疑似压缩炸弹，已拒绝 / "
            "the spreadsheet unpacks to far more than its size (a compression bomb)"
        )


def read_rows(path: Path) -> Iterator[list[Any]]:
    """Stream the rows of a CSV or XLSX file (header first) without loading it whole."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        fh = _open_text(path)
        try:
            yield from csv.reader(fh)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportRefused(f"CSV 无法读取 / unreadable CSV: {exc}") from None
        finally:
            fh.close()
        return
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        check_xlsx(path)
        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged file
            raise ImportRefused(f"XLSX 无法读取 / unreadable XLSX: {exc}") from None
        try:
            for row in book.worksheets[0].iter_rows(values_only=True):
                yield list(row)
        finally:
            book.close()
        return
    raise ImportRefused(
        f"不支持的文件类型 {suffix or '(none)'}，请用 .csv 或 .xlsx / use .csv or .xlsx"
    )


# ---------------------------------------------------------------- validating rows


# Values of these kinds repeat across rows (dates, codes, small counts, enums), so a file's parse and
# check results are remembered per (field, text); the cap keeps memory bounded on any input.
_MEMO_TYPES = frozenset({"date", "enum", "bool", "int"})
_MEMO_FIELDS = frozenset({"region_code", "industry_code"})
MEMO_LIMIT = 200_000


@dataclass
class RowContext:
    """What validation of one file needs to remember between rows."""

    mapping: dict[int, str]
    header_text: dict[str, str]
    default_source: str | None
    today: date
    seen: dict[str, int] = field(default_factory=dict)
    memo: dict[tuple[str, str], tuple[Any, str | None]] = field(default_factory=dict)


def _source(raw: str) -> str:
    text = raw.strip()
    text = SOURCE_ALIASES.get(text.lower(), SOURCE_ALIASES.get(text, text))
    if text not in catalogue().sources:
        raise ValueProblem(f"未知数据来源，应为 {'、'.join(catalogue().sources)} / unknown source")
    return text


def _meta_value(key: str, text: str, today: date) -> tuple[Any, str | None]:
    """Parsed source / as-of date / figures year of a row, or the reason it is rejected."""
    cat = catalogue()
    try:
        if key == "source":
            return _source(text), None
        if key == "as_of":
            day = cat["founded_on"].parse(text)
            return day, ("数据日期晚于今天 / date is in the future" if day > today else None)
        year = cat["employees"].parse(text)
        if year > today.year:
            return year, "年度晚于今年 / year is in the future"
        if year < 1949:
            return year, "年度不合理 / implausible year"
        return year, None
    except ValueProblem as exc:
        return None, str(exc)


def _field_value(ctx: RowContext, f: Field, text: str) -> tuple[Any, str | None]:
    """Parsed and checked value of one cell, or the reason it is rejected (memoised when cheap)."""
    memoise = f.type in _MEMO_TYPES or f.name in _MEMO_FIELDS
    if memoise:
        hit = ctx.memo.get((f.name, text))
        if hit is not None:
            return hit
    try:
        value = f.parse(text)
        result: tuple[Any, str | None] = (value, _check_value(f, value, ctx.today))
    except ValueProblem as exc:
        result = (None, str(exc))
    if memoise and len(ctx.memo) < MEMO_LIMIT:
        ctx.memo[(f.name, text)] = result
    return result


def _meta(ctx: RowContext, key: str, text: str) -> tuple[Any, str | None]:
    hit = ctx.memo.get((key, text))
    if hit is None:
        hit = _meta_value(key, text, ctx.today)
        if len(ctx.memo) < MEMO_LIMIT:
            ctx.memo[(key, text)] = hit
    return hit


_META_KEYS = frozenset({"credit_code", "source", "as_of", "year"})


@cache
def _field_kinds() -> dict[str, tuple[Field, bool]]:
    """Stored field → (field, whether it is yearly)."""
    return {f.name: (f, f.kind == "yearly") for f in catalogue().stored}


def validate_row(
    ctx: RowContext, number: int, cells: list[Any]
) -> tuple[Incoming | None, list[Issue]]:
    """Check one data row; a row with any issue yields no Incoming at all."""
    raw: dict[str, str] = {}
    width = len(cells)
    for i, key in ctx.mapping.items():
        raw[key] = _cell_text(cells[i]) if i < width else ""
    issues: list[Issue] = []

    def bad(key: str, reason: str) -> None:
        issues.append(Issue(number, ctx.header_text[key], raw.get(key, ""), reason))

    code = ""
    try:
        code = validate_credit_code(raw.get("credit_code", ""))
    except CodeError as exc:
        bad("credit_code", str(exc))
    if code:
        first = ctx.seen.get(code)
        if first is not None:
            bad("credit_code", f"与第 {first} 行信用代码重复 / duplicate of row {first}")
            code = ""
        else:
            ctx.seen[code] = number

    source: str | None = ctx.default_source
    as_of = ctx.today
    year = 0
    for key in ("source", "as_of", "year"):
        text = raw.get(key)
        if not text:
            continue
        value, problem = _meta(ctx, key, text)
        if problem:
            bad(key, problem)
        elif key == "source":
            source = value
        elif key == "as_of":
            as_of = value
        else:
            year = value

    kinds = _field_kinds()
    values: dict[str, Any] = {}
    for key, text in raw.items():
        if not text or key in _META_KEYS:
            continue
        value, problem = _field_value(ctx, kinds[key][0], text)
        if problem:
            bad(key, problem)
        else:
            values[key] = value

    employees = values.get("employees")
    revenue = values.get("revenue")
    if employees and revenue and revenue > MAX_REVENUE_PER_EMPLOYEE * employees:
        bad(
            "revenue",
            "营业收入与从业人员不相称（人均超过 5 亿元），疑似以元填入万元列"
            " / implausible revenue per employee: 元 in the 万元 column?",
        )
    for start, end in _validity_pairs():
        if start in values and end in values and values[end] < values[start]:
            bad(end, "有效期止早于起始日期 / validity ends before it starts")
    has_yearly = any(kinds[k][1] for k in values)
    year_header = ctx.header_text.get("year", "年度")
    if has_yearly and not year and year_header not in {i.column for i in issues}:
        issues.append(
            Issue(
                number,
                year_header,
                "",
                "年度数据需要填写年度 / yearly figures need a year",
            )
        )
    if issues or not code:
        return None, issues
    item = Incoming(code)
    yearly_as_of = as_of if raw.get("as_of") or not year else min(as_of, date(year, 12, 31))
    for key, value in values.items():
        f, is_yearly = kinds[key]
        item.values[(key, year if is_yearly else 0)] = (
            value,
            source or f.source,
            yearly_as_of if is_yearly else as_of,
        )
    return item, []


@cache
def _validity_pairs() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f.name, f.name[:-5] + "_to") for f in catalogue().stored if f.name.endswith("_from")
    )


def _check_value(f: Field, value: Any, today: date) -> str | None:
    if f.name == "region_code":
        try:
            validate_region(value)
        except CodeError as exc:
            return str(exc)
    elif f.name == "industry_code":
        try:
            validate_industry(value)
        except CodeError as exc:
            return str(exc)
    elif f.type in ("int", "money") and value < 0 and f.name not in NON_NEGATIVE_EXCEPT:
        return "不能为负数 / must not be negative"
    elif f.type == "money" and abs(value) > MAX_WAN:
        return "金额超过 5 万亿元，疑似以元填入万元列 / implausible amount: 元 in the 万元 column?"
    elif f.type == "date" and not f.name.endswith("_to") and value > today:
        return "日期晚于今天 / date is in the future"
    elif f.name == "contact_email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return "邮箱格式不正确 / not an e-mail address"
    elif f.name == "contact_webhook" and not re.match(r"https?://", value):
        return "Webhook 地址应以 http(s):// 开头 / webhook must be an http(s) URL"
    elif f.name == "contact_phone" and not re.fullmatch(r"\+?[0-9\- ]{7,20}", value):
        return "电话号码格式不正确 / not a phone number"
    return None


# ---------------------------------------------------------------- graduate hire rows


def validate_hire(
    ctx: RowContext, number: int, cells: list[Any]
) -> tuple[graduates.Hire | None, list[Issue]]:
    """Check one row of the graduates template; a row with any issue yields no Hire."""
    width = len(cells)
    raw = {key: _cell_text(cells[i]) if i < width else "" for i, key in ctx.mapping.items()}
    issues: list[Issue] = []

    def bad(key: str, reason: str) -> None:
        issues.append(Issue(number, ctx.header_text[key], raw.get(key, ""), reason))

    code = ""
    try:
        code = validate_credit_code(raw.get("credit_code", ""))
    except CodeError as exc:
        bad("credit_code", str(exc))
    values, problems = graduates.parse_fields(raw, ctx.today)
    for key, reason in problems:
        bad(key, reason)
    source = ctx.default_source or graduates.DEFAULT_SOURCE
    if raw.get("source"):
        value, problem = _meta(ctx, "source", raw["source"])
        if problem:
            bad("source", problem)
        else:
            source = value
    if code and "person_ref" in values and "hired_on" in values:
        record = f"{code}|{values['person_ref']}|{values['hired_on']}"
        first = ctx.seen.get(record)
        if first is not None:
            bad("person_ref", f"与第 {first} 行为同一条录用记录 / duplicate of row {first}")
        elif not issues:
            ctx.seen[record] = number
    if issues or not code:
        return None, issues
    return (
        graduates.Hire(
            row=number,
            credit_code=code,
            person_ref=values["person_ref"],
            graduated_on=values["graduated_on"],
            hired_on=values["hired_on"],
            contract_months=values["contract_months"],
            social_insurance=values["social_insurance"],
            source=source,
            as_of=values.get("as_of", ctx.today),
            insured_months=values.get("insured_months"),
            pension_fen=values.get("pension_fen"),
            medical_fen=values.get("medical_fen"),
            unemployment_fen=values.get("unemployment_fen"),
        ),
        [],
    )


# ---------------------------------------------------------------- running an import

# A web job records a heartbeat at least this often while it reads, so a job whose heartbeat is
# much older (ImportJob.STALE_AFTER) belongs to a process that no longer runs.
HEARTBEAT_SECONDS = 10.0


@dataclass
class _Batch:
    """Good rows to write in one transaction, with the file's counts when it was cut."""

    items: list[Any]
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
    batch_size: int = 2000,
    source: str | None = None,
    recorded_by: str | None = None,
    job_id: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    today: date | None = None,
) -> ImportReport:
    """Import a file: each batch of good rows in its own transaction; returns the counts.

    The header row chooses the template: enterprise values, or graduate hire records (the
    ``graduates`` template). Raises ImportRefused before writing anything when the file or its
    headers cannot be read.
    """
    if source is not None and source not in catalogue().sources:
        raise ImportRefused(f"未知数据来源 {source!r} / unknown source")
    rows = read_rows(path)
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
        for key, zh, _en in _columns():
            ctx.header_text.setdefault(key, zh)
    validate: Callable[[RowContext, int, list[Any]], tuple[Any, list[Issue]]] = (
        validate_hire if hires else validate_row
    )
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
            if hires:
                outcome, refused = graduates.write(session, batch.items, recorded_by=recorded_by)
                by_row = {h.row: h for h in batch.items}
                for row, key, reason in refused:
                    issue = Issue(row, ctx.header_text[key], by_row[row].credit_code, reason)
                    reject([issue])
            else:
                outcome = upsert(session, batch.items, recorded_by=recorded_by)  # type: ignore[assignment]
            with lock:
                for result in outcome.values():
                    setattr(report, result, getattr(report, result) + 1)
                if job_id is not None:
                    _save_progress(session, job_id, report, batch.rows_seen)
            session.commit()
        if on_progress:
            on_progress(batch.rows_seen)

    with factory() as probe:
        # PostgreSQL works in its own process, so the next batch is validated meanwhile; SQLite
        # works in this one and takes the interpreter lock back for every row, so it writes inline
        threaded = probe.get_bind().dialect.name != "sqlite"
    pipeline = _Writer(write, threaded=threaded)
    batch: list[Any] = []
    beat = time.monotonic()
    try:
        for number, cells in enumerate(rows, start=2):
            if not any(_cell_text(c) for c in cells):
                continue  # blank lines are not rows
            report.rows += 1
            item, issues = validate(ctx, number, cells)
            if issues:
                reject(issues)
            elif item is not None:
                batch.append(item)
            if len(batch) >= batch_size or (
                job_id is not None and time.monotonic() - beat > HEARTBEAT_SECONDS
            ):
                pipeline.submit(_Batch(batch, report.rows))
                batch, beat = [], time.monotonic()
        pipeline.submit(_Batch(batch, report.rows))
        pipeline.finish()
    except BaseException:
        pipeline.cancel()
        raise
    finally:
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


# ---------------------------------------------------------------- the template


@dataclass(frozen=True)
class TemplateColumn:
    """One column of the documented import template."""

    key: str
    header_zh: str
    header_en: str
    description: str
    example: str


_EXAMPLE = {
    "credit_code": "91620102MA72H8K3X0",
    "name": "兰州示例机械制造有限公司",
    "region_code": "620102",
    "industry_code": "3311",
    "founded_on": "2015-03-18",
    "registered_capital": "500",
    "ownership_type": "私营",
    "tax_credit_rating": "A",
    "year": "2024",
    "employees": "120",
    "revenue": "5000",
    "total_assets": "3200.5",
    "rd_expense": "260",
    "taxable_income": "180",
    "export_revenue": "0",
    "graduate_hires": "6",
    "cert_high_tech_from": "2023-11-20",
    "cert_high_tech_to": "2026-11-19",
    "contact_email": "finance@example.cn",
    "consent_email": "是",
    "source": "统计",
    "as_of": "2025-03-31",
}


def template_columns() -> list[TemplateColumn]:
    """The template's columns with what each expects (shown on the import page and in the XLSX)."""
    cat = catalogue()
    out = []
    for key, zh, en in _columns():
        if key == "year":
            desc = "年度数据所属年份，填写任何年度数据时必填 / figures year, required with yearly figures"
        elif key == "source":
            desc = (
                f"可选，默认为各字段在属性目录中的来源；取值 {'、'.join(cat.sources)}"
                " / optional; defaults to each field's catalogue source"
            )
        elif key == "as_of":
            desc = "可选，数据截至日期 YYYY-MM-DD，不得晚于今天 / optional as-of date"
        else:
            f = cat[key]
            kind = {
                "money": "金额，单位万元，可带小数",
                "int": "整数，不得为负",
                "date": "日期 YYYY-MM-DD",
                "bool": "是/否",
                "str": "文本",
            }.get(f.type, "")
            if f.type == "enum":
                kind = "取值：" + "、".join(f"{k}（{v}）" for k, v in f.values.items())
            if key == "credit_code":
                kind = "18 位，含校验码（必填）"
            elif key == "region_code":
                kind = "GB/T 2260 六位代码，甘肃省须到区县"
            elif key == "industry_code":
                kind = "GB/T 4754-2017 四位小类代码"
            desc = f"{f.zh}：{kind} / {f.en}"
        out.append(TemplateColumn(key, zh, en, desc, _EXAMPLE.get(key, "")))
    return out


def write_template(path: Path, *, english: bool = False, hires: bool = False) -> None:
    """Write a template (.csv: headers and an example row; .xlsx: plus a sheet describing columns).

    ``hires`` writes the graduates template (recent-graduate hire records) instead of the
    enterprise one.
    """
    if hires:
        cols = [TemplateColumn(k, zh, en, desc, ex) for k, zh, en, desc, ex in graduates.COLUMNS]
        sheet_name = "高校毕业生"
    else:
        cols = template_columns()
        sheet_name = "企业信息"
    headers = [c.header_en if english else c.header_zh for c in cols]
    example = [c.example for c in cols]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = SafeCsvWriter(fh)
            writer.writerow(headers)
            writer.writerow(example)
        return
    if suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = sheet_name
        append_row(sheet, headers)
        append_row(sheet, example)
        notes = book.create_sheet("填写说明")
        append_row(notes, ["列名", "column", "说明 / description"])
        for c in cols:
            append_row(notes, [c.header_zh, c.header_en, c.description])
        book.save(path)
        return
    raise ValueError(f"{path}: template must be .csv or .xlsx")


def template_bytes(kind: str = "csv", english: bool = False, hires: bool = False) -> bytes:
    """A template as bytes, for the downloads on the import page."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"template.{kind}"
        write_template(target, english=english, hires=hires)
        return target.read_bytes()
