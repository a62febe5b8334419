"""`huiqi enterprise …` commands (classify, template, import) and `huiqi demo population`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from huiqi.core.codes import CodeError
from huiqi.core.money import MoneyError, to_fen

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    help="Enterprise registry: size classes, bulk import, import template.", no_args_is_help=True
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error (no traceback) and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _wan(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return to_fen(value, "wan")
    except MoneyError as exc:
        raise _fail(f"{option} {value!r}: {exc} (amounts are in 万元)") from None


@app.command("classify")
def classify_cmd(
    industry: str | None = typer.Option(
        None, "--industry", help="GB/T 4754-2017 class, e.g. 3311."
    ),
    employees: int | None = typer.Option(None, "--employees", help="从业人员 (persons)."),
    revenue: str | None = typer.Option(
        None, "--revenue", help="营业收入 in 万元 (decimals allowed)."
    ),
    assets: str | None = typer.Option(None, "--assets", help="资产总额 in 万元."),
    on: str | None = typer.Option(None, "--on", help="Date whose standard applies (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Size class (large/medium/small/micro/unknown) under 工信部联企业〔2011〕300号, with the reasons."""
    from huiqi.enterprise.sizing import classify

    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        raise _fail(f"--on {on!r} is not a date (YYYY-MM-DD)") from None
    try:
        result = classify(
            industry, employees, _wan(revenue, "--revenue"), _wan(assets, "--assets"), day
        )
    except (CodeError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    label = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型", "unknown": "未知"}
    console.print(
        f"[bold]{label[result.size]} / {result.size}[/]"
        + (f"  ({result.group_zh} / {result.group})" if result.group else ""),
        highlight=False,
    )
    for line in result.reasons:
        console.print(f"  - {line}", highlight=False, markup=False)
    if result.missing:
        console.print(f"  missing: {', '.join(result.missing)}", highlight=False)
    if result.above_scale is not None:
        console.print(
            f"  规模以上工业企业 / above scale: {'是 yes' if result.above_scale else '否 no'}",
            highlight=False,
        )


@app.command("template")
def template_cmd(
    out: Path = typer.Option(..., "--out", help="Where to write the template (.csv or .xlsx)."),
    english: bool = typer.Option(False, "--english", help="English column headers."),
    graduates: bool = typer.Option(
        False, "--graduates", help="The graduate hire records template instead."
    ),
) -> None:
    """Write a bulk-import template with its headers and one example row."""
    from huiqi.enterprise.importer import write_template

    try:
        write_template(out, english=english, hires=graduates)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"template written to {out}")


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="CSV or XLSX file following the template."),
    errors: Path | None = typer.Option(None, "--errors", help="Write rejected rows to this CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, help="Rows per transaction."),
    source: str | None = typer.Option(
        None, "--source", help="Source for every value (default: each field's catalogue source)."
    ),
) -> None:
    """Validate and upsert enterprises (or graduate hire records) by credit code; bad rows go to the error report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from huiqi.core.config import get_settings
    from huiqi.core.db import session_factory
    from huiqi.enterprise.importer import ImportRefused, run_import, sheet_limits_from_settings

    if not file.exists():
        raise _fail(f"{file}: no such file")
    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    )
    try:
        with progress:
            task = progress.add_task("import", total=None)
            report = run_import(
                session_factory(),
                file,
                errors_path=errors,
                batch_size=batch_size,
                sheet_limits=sheet_limits_from_settings(get_settings()),
                source=source,
                on_progress=lambda n: progress.update(task, completed=n),
            )
    except ImportRefused as exc:
        raise _fail(f"{file}: {exc}") from None
    counts = report.counts()
    if as_json:
        typer.echo(json.dumps(counts, ensure_ascii=False))
        return
    console.print(
        f"inserted {counts['inserted']}, updated {counts['updated']}, "
        f"unchanged {counts['unchanged']}, rejected {counts['rejected']}",
        highlight=False,
    )
    if counts["rejected"] and errors:
        console.print(f"error report: {errors}")
    for issue in report.first_errors:
        console.print(
            f"  row {issue.row}, {issue.column}: {issue.value!r} — {issue.reason}",
            highlight=False,
            markup=False,
        )


def population(
    size: int = typer.Option(3000, "--size", min=1, help="Number of enterprises."),
    seed: int = typer.Option(2020, "--seed", help="Random seed (same seed, same population)."),
    out: Path | None = typer.Option(
        None, "--out", help="Write a CSV/XLSX import file instead of loading the database."
    ),
) -> None:
    """Generate realistic Gansu enterprises (valid codes, every size class, some gaps)."""
    from huiqi.enterprise.population import generate, write_file

    rows = generate(size, seed)
    if out is not None:
        try:
            write_file(rows, out)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        console.print(f"{len(rows)} enterprises written to {out}")
        return
    from huiqi.core.db import session_scope
    from huiqi.enterprise.population import load_rows

    with session_scope() as session:
        report = load_rows(session, rows)
    counts = report.counts()
    console.print(
        f"{size} enterprises: inserted {counts['inserted']}, updated {counts['updated']}, "
        f"unchanged {counts['unchanged']}, rejected {counts['rejected']}",
        highlight=False,
    )
