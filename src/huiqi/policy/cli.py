"""`huiqi policy …` commands: parse, import, tasks, search."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

app = typer.Typer(
    help="Policy library: parse, import, search, task breakdown.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


# what `parse` needs no database for; every other policy command reads or writes one
_UNWIRED = {"parse"}


@app.callback()
def _wire(ctx: typer.Context) -> None:
    # the domain event handlers (huiqi.wiring), as the root command installs them for the others
    if ctx.invoked_subcommand not in _UNWIRED:
        from huiqi.wiring import install

        install()


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.command("parse")
def parse_cmd(
    file: Path = typer.Argument(..., help="Policy file: .txt (UTF-8/GBK), .html, .docx or .pdf."),
    as_json: bool = typer.Option(False, "--json", help="Print the structure as JSON."),
    task_level: str | None = typer.Option(
        None,
        "--task-level",
        help='Numbering level carrying the tasks: "一、", "(一)", "1.", "(1)", "第X条" or "leaves" '
        "(default: the level carrying the responsibility notes).",
    ),
) -> None:
    """Parse a policy file and print its structure (no database needed)."""
    # imported here, not at the top: `huiqi --help` must not load the parser
    from huiqi.policy.ingest import IngestError, ingest_file
    from huiqi.policy.parser import parse_source

    try:
        source = ingest_file(file)
    except IngestError as exc:
        raise _fail(str(exc)) from None
    document = parse_source(source, task_level=task_level)
    if as_json:
        sys.stdout.write(json.dumps(document.model_dump(mode="json"), ensure_ascii=False, indent=2))
        sys.stdout.write("\n")
        return
    console.print(
        f"[bold]{document.title or '(untitled)'}[/]  {document.doc_number or ''}", highlight=False
    )
    console.print(
        f"style: {document.style}   issued: {document.issued_on or '-'}   "
        f"published: {document.published_on or '-'}   source: {document.source or '-'}",
        highlight=False,
    )
    table = Table("article", "title", "departments", "implementers", "quantities")
    for section in document.sections:
        if section.number:
            table.add_row(f"[bold]{section.label}[/]", f"[bold]{section.title}[/]", "", "", "")
        for article in section.articles:
            table.add_row(
                article.label,
                article.title,
                "、".join(article.departments),
                "、".join(article.implementers),
                "; ".join(q.text for q in article.quantities),
            )
    console.print(table)
    for warning in document.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _settings_or_exit() -> None:
    from huiqi.core.config import ConfigError, get_settings

    try:
        get_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command("import")
def import_cmd(
    files: list[Path] = typer.Argument(..., help="One or more policy files."),
    publish: bool = typer.Option(False, "--publish", help="Publish the imported policies at once."),
) -> None:
    """Parse and store policy files; the same text twice changes nothing, a changed one is a new version."""
    from sqlalchemy.exc import SQLAlchemyError

    from huiqi.core.db import session_scope
    from huiqi.policy import service
    from huiqi.policy.ingest import IngestError, ingest_file

    _settings_or_exit()
    failures = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
    ) as progress:
        task = progress.add_task("importing", total=len(files))
        for file in files:
            progress.update(task, description=f"importing {file.name}")
            try:
                source = ingest_file(file)
                with session_scope() as session:
                    result = service.import_source(session, source, publish=publish)
                    console.print(
                        f"{file.name}: {result.outcome} — policy {result.policy.id} "
                        f"{result.policy.title} (version {result.version.number}, "
                        f"{len(result.warnings)} warnings)",
                        highlight=False,
                    )
            except (IngestError, service.PolicyError) as exc:
                failures += 1
                err.print(f"[bold red]error:[/] {exc}", highlight=False)
            except SQLAlchemyError as exc:
                failures += 1
                err.print(
                    f"[bold red]error:[/] {file.name}: database error, nothing stored ({exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc})",
                    highlight=False,
                )
            progress.advance(task)
    if failures:
        raise typer.Exit(1)


@app.command("tasks")
def tasks_cmd(
    doc: str = typer.Argument(..., help="Policy id or document number (文号)."),
    xlsx: Path | None = typer.Option(None, "--xlsx", help="Write the task table as XLSX."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Write the task table as CSV."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the task table as JSON."),
) -> None:
    """Export a policy's task breakdown (任务分工表)."""
    from huiqi.core.db import session_scope
    from huiqi.policy import export, service

    _settings_or_exit()
    with session_scope() as session:
        policy = service.find_policy(session, doc)
        if policy is None:
            raise _fail(f"no policy with id or document number {doc!r}")
        rows = service.task_rows(session, policy)
        title = policy.title
    if xlsx:
        xlsx.write_bytes(export.to_xlsx(rows, title=title))
        console.print(f"wrote {len(rows)} tasks to {xlsx}")
    if csv_out:
        csv_out.write_bytes(export.to_csv(rows))
        console.print(f"wrote {len(rows)} tasks to {csv_out}")
    if json_out:
        json_out.write_bytes(export.to_json(rows))
        console.print(f"wrote {len(rows)} tasks to {json_out}")
    if not (xlsx or csv_out or json_out):
        table = Table(*export.HEADERS)
        for row in rows:
            table.add_row(*[str(v) for v in export.row_values(row)])
        console.print(table)


@app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="Words to look for (Chinese is segmented with jieba)."),
    department: str | None = typer.Option(
        None, help="Only articles this department is responsible for."
    ),
    topic: str | None = typer.Option(None, help="Only articles with this topic code."),
    status: str | None = typer.Option("published", help="draft, published, repealed or 'any'."),
    limit: int = typer.Option(20, help="Most hits to show."),
) -> None:
    """Search titles and article text."""
    from huiqi.core.db import session_scope
    from huiqi.policy import search

    _settings_or_exit()
    with session_scope() as session:
        hits = search.search(
            session,
            query,
            department=department,
            topic=topic,
            status=None if status == "any" else status,
            limit=limit,
        )
        if not hits:
            console.print("no matches")
            return
        for hit in hits:
            console.print(
                f"[bold]{hit.policy_title}[/] {hit.doc_number or ''} {hit.article_label} {hit.article_title}",
                highlight=False,
            )
            console.print("  " + search.highlight_console(hit.snippet, hit.terms), highlight=False)
