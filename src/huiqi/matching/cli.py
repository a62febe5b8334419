"""`huiqi rules …` (validate, test, load, sources) and `huiqi match …` (run, explain, stale, who) commands."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err = Console(stderr=True)

rules_app = typer.Typer(
    help="Rules as code: validate rule files, run scenario tests, publish the library.",
    no_args_is_help=True,
)
app = typer.Typer(
    help="Matching: run rules over the registry, explain one result, find stale results.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error without a traceback and return the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _day(on: str | None) -> date | None:
    if on is None:
        return None
    try:
        return date.fromisoformat(on)
    except ValueError:
        raise _fail(f"--on {on!r} is not a date (YYYY-MM-DD)") from None


@rules_app.command("validate")
def validate_cmd(files: list[Path] = typer.Argument(..., help="Rule YAML files.")) -> None:
    """Check rule files against the format, the field catalogue and the parameter library."""
    from huiqi.rules.library import load_base
    from huiqi.rules.source import RuleValidationError

    lib = load_base()
    bad = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            err.print(f"{path}: cannot read: {exc}", markup=False, soft_wrap=True)
            bad += 1
            continue
        try:
            rule = lib.parse_rule(text, str(path))
        except RuleValidationError as exc:
            for e in exc.errors:
                err.print(str(e), markup=False, highlight=False, soft_wrap=True)
            bad += 1
            continue
        console.print(
            f"{path}: ok — {rule.id} ({len(rule.atoms)} conditions, hash {rule.hash})", markup=False
        )
    if bad:
        raise typer.Exit(1)


@rules_app.command("test")
def test_cmd(
    library: Path | None = typer.Option(
        None, "--library", help="Library folder (default: the packaged one)."
    ),
) -> None:
    """Run every rule's scenario tests (single and batch engines) and report failures."""
    from huiqi.rules.library import load_library
    from huiqi.rules.scenarios import run_library_scenarios
    from huiqi.rules.source import RuleValidationError

    try:
        lib = load_library(library)
    except RuleValidationError as exc:
        for e in exc.errors:
            err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    outcomes = run_library_scenarios(lib)
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        err.print(
            f"FAIL {o.file} · {o.name}: " + "; ".join(o.problems), markup=False, highlight=False
        )
    missing = sorted(set(lib.rules) - set(lib.scenarios))
    for rid in missing:
        err.print(f"WARN rule {rid} has no scenarios", markup=False)
    console.print(
        f"{len(outcomes) - len(failed)} passed, {len(failed)} failed, {len(lib.rules)} rules"
    )
    if failed:
        raise typer.Exit(1)


@rules_app.command("load")
def load_cmd() -> None:
    """Publish the library's rules into the database (idempotent; changed rules get a new version)."""
    from huiqi.core.db import session_scope
    from huiqi.matching.versions import load_rules
    from huiqi.rules.source import RuleValidationError

    try:
        with session_scope() as session:
            report = load_rules(session)
    except RuleValidationError as exc:
        for e in exc.errors:
            err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"rules: {len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )


@rules_app.command("sources")
def sources_cmd(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List every parameter period with its kind of source; citations of library documents are checked.

    Exit 1 when a citation of a document held in the policy library does not match its article.
    """
    from huiqi.finance.eligibility import default_params
    from huiqi.matching.sources import MISMATCH, parameter_checks, rule_checks
    from huiqi.rules.library import load_library
    from huiqi.rules.source import RuleValidationError

    try:
        lib = load_library()
        params = default_params().library.params
    except RuleValidationError as exc:
        for e in exc.errors:
            err.print(str(e), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    checks = parameter_checks(params) + rule_checks(lib)
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "subject": c.subject,
                        "from": c.start.isoformat() if c.start else None,
                        "to": c.end.isoformat() if c.end else None,
                        "value": c.value,
                        "kind": c.kind,
                        "citation": c.citation,
                        "status": c.status,
                        "reason": c.reason,
                    }
                    for c in checks
                ],
                ensure_ascii=False,
            )
        )
    else:
        for c in checks:
            span = f"{c.start or ''}–{c.end or ''}"
            console.print(
                f"{c.status:<10} {c.subject} {span} {c.value} [{c.kind}] {c.citation}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        for c in checks:
            if c.status == MISMATCH:
                err.print(f"MISMATCH {c.subject} {c.citation}\n{c.reason}", markup=False)
        counts: dict[str, int] = {}
        for c in checks:
            counts[c.status] = counts.get(c.status, 0) + 1
        console.print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), markup=False)
    if any(c.status == MISMATCH for c in checks):
        raise typer.Exit(1)


@app.command("run")
def run_cmd(
    engine: str = typer.Option(
        "batch", "--engine", help="batch (vectorised) or sql (inside the database)."
    ),
    on: str | None = typer.Option(None, "--on", help="Evaluation date (default today)."),
    rule: list[str] = typer.Option([], "--rule", help="Only these rule ids."),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help="Enterprises per batch, each committing (default: about 600,000 pairs' worth).",
    ),
) -> None:
    """Evaluate the published rules over every enterprise; store changes, grants, notifications.

    Each batch commits: a killed run keeps the batches it finished and, run again, ends in the
    same state. Progress is also recorded for the officers' rules page.
    """
    from huiqi.core.db import session_scope
    from huiqi.matching.run import PHASES, finish_run, match, start_run
    from huiqi.matching.versions import MatchingError

    if engine not in ("batch", "sql"):
        raise _fail(f"--engine must be batch or sql, not {engine!r}")
    day = _day(on)
    columns = (
        TextColumn("{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("enterprises"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as bar, session_scope() as session:
            tasks = {phase: bar.add_task(phase, total=None) for phase in PHASES}
            run = start_run(session)
            session.commit()

            def step(phase: str, done: int, total: int) -> None:
                bar.update(tasks[phase], completed=done, total=total)

            try:
                report = match(
                    session,
                    on=day,
                    engine=engine,
                    rule_ids=rule or None,
                    progress=step,
                    checkpoint=session.commit,
                    batch_size=batch_size,
                    run=run,
                )
            except MatchingError as exc:
                session.rollback()
                finish_run(run, "failed", str(exc))
                session.commit()
                raise
            finish_run(run)
    except MatchingError as exc:
        raise _fail(str(exc)) from None
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
    console.print(
        f"{report.enterprises} enterprises ({report.skipped} unchanged, skipped) × rules = "
        f"{report.evaluated} pairs evaluated; enterprise rows written: {report.inserted} "
        f"inserted, {report.updated} updated; {report.changes} new or changed results "
        + json.dumps(report.by_result, ensure_ascii=False)
    )
    console.print(seconds, highlight=False)


@app.command("explain")
def explain_cmd(
    credit_code: str = typer.Argument(..., help="统一社会信用代码"),
    rule_id: str = typer.Argument(...),
    on: str | None = typer.Option(None, "--on", help="Evaluation date (default today)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: result, reasons, missing, near_miss."
    ),
) -> None:
    """Why one enterprise does or does not fit one rule, and what it would take."""
    from huiqi.core.db import session_scope
    from huiqi.matching.queries import explain
    from huiqi.matching.versions import MatchingError

    try:
        with session_scope() as session:
            exp = explain(session, credit_code.strip().upper(), rule_id, _day(on))
    except MatchingError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(exp.to_json(), ensure_ascii=False, indent=2))
        return
    console.print(f"{rule_id} · {credit_code}: [bold]{exp.result}[/] (evaluated on {exp.on})")
    table = Table("condition", "outcome", "reason")
    for c in exp.conditions:
        table.add_row(c.id, c.outcome, f"{c.reason_zh}\n{c.reason_en}")
    console.print(table)
    if exp.missing:
        console.print("missing: " + ", ".join(exp.missing))
    if exp.amount_fen is not None:
        from huiqi.core.money import format_fen

        console.print(f"amount: {format_fen(exp.amount_fen)}")
    if exp.near_miss:
        console.print("what it would take:")
        for ch in exp.near_miss.changes:
            console.print(f"  · {ch.text_zh} / {ch.text_en}", markup=False)


@app.command("stale")
def stale_cmd(
    on: str | None = typer.Option(None, "--on", help="Date to check against (default today)."),
    refresh: bool = typer.Option(False, "--refresh", help="Re-evaluate the stale results."),
) -> None:
    """List stored results that no longer match their inputs, rule version or date (exit 1 when any)."""
    from huiqi.core.db import session_scope
    from huiqi.matching.staleness import refresh_stale, stale_results

    with session_scope() as session:
        stale = stale_results(session, _day(on))
        for s in stale[:50]:
            console.print(f"{s.credit_code} {s.rule_id}: {s.why}", markup=False)
        if refresh and stale:
            changed = refresh_stale(session, _day(on))
            console.print(f"refreshed; {len(changed)} results changed")
    console.print(f"{len(stale)} stale results")
    if stale and not refresh:
        raise typer.Exit(1)


@app.command("who")
def who_cmd(
    rule_id: str = typer.Argument(...),
    on: str | None = typer.Option(None, "--on", help="Evaluation date (default today)."),
) -> None:
    """Which enterprises fit a rule (and whose fit is unknown), counted inside the database."""
    from huiqi.core.db import session_scope
    from huiqi.matching.queries import reverse_query
    from huiqi.matching.versions import MatchingError

    try:
        with session_scope() as session:
            report = reverse_query(session, rule_id, _day(on))
    except MatchingError as exc:
        raise _fail(str(exc)) from None
    console.print(json.dumps(report.totals, ensure_ascii=False))
    for title, rows in (
        ("region", report.by_region),
        ("industry", report.by_industry),
        ("size", report.by_size),
    ):
        table = Table(title, "result", "count")
        for grp, result, n in rows:
            table.add_row(str(grp), result, str(n))
        console.print(table)
