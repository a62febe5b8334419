"""`huiqi grants`: build grants from matching results, check inputs, verify the ledger, disburse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="No-application benefits (免申即享): grants, review, disbursement.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings() -> None:
    from huiqi.core.config import ConfigError, get_settings

    try:
        get_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@contextmanager
def _database() -> Iterator[None]:
    """Turn a database failure (unreachable, or not migrated) into one line, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise _fail(f"database: {reason} (is it migrated? run `huiqi db upgrade`)") from None


@app.command("sync")
def sync() -> None:
    """Create or update grants for every current eligible result of an auto_grant rule."""
    from sqlalchemy import select

    from huiqi.core.db import session_scope
    from huiqi.events import ResultChange
    from huiqi.grants import service
    from huiqi.matching.models import RuleVersion
    from huiqi.matching.service import codes_with_result

    _settings()
    with _database(), session_scope() as session:
        auto = {
            v.rule_id: v
            for v in session.scalars(
                select(RuleVersion).where(
                    RuleVersion.status == "published", RuleVersion.mode == "auto_grant"
                )
            )
        }
        results = [
            ResultChange(
                credit_code=code,
                rule_id=rule_id,
                rule_version=str(version.version),
                result="eligible",
                mode="auto_grant",
            )
            for rule_id, version in auto.items()
            for code in codes_with_result(session, rule_id)
        ]
        touched = service.grants_from_results(session, results)
        console.print(
            f"{len(results)} eligible results of {len(auto)} auto_grant rule(s); {len(touched)} grant(s) created or updated"
        )


@app.command("check")
def check() -> None:
    """Flag approved or disbursed grants whose registry inputs changed since the decision, and
    verify the ledger; exit 1 when the ledger does not prove the grants."""
    from huiqi.core.db import session_scope
    from huiqi.grants import service
    from huiqi.grants.schemas import GrantError

    _settings()
    try:
        with _database(), session_scope() as session:
            flagged = service.check_inputs(session)
            for g in flagged:
                console.print(f"flagged grant {g.id}: {g.enterprise_name} {g.rule_id} {g.period}")
            problems = service.verify_ledger(session)
    except GrantError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{len(flagged)} grant(s) newly flagged")
    _report_ledger(problems)


def _report_ledger(problems: list[str]) -> None:
    for p in problems:
        err.print(p, highlight=False, markup=False)
    if problems:
        err.print(f"[bold red]ledger: {len(problems)} problem(s)[/]")
        raise typer.Exit(1)
    console.print("ledger intact")


@app.command("verify-ledger")
def verify_ledger() -> None:
    """Re-walk the keyed hash chains and their sealed heads and compare every grant with its
    ledger; exit 1 on any altered, deleted or rewritten entry or mismatching amount."""
    from huiqi.core.db import session_scope
    from huiqi.grants import service
    from huiqi.grants.schemas import GrantError

    _settings()
    try:
        with _database(), session_scope() as session:
            problems = service.verify_ledger(session)
    except GrantError as exc:
        raise _fail(str(exc)) from None
    _report_ledger(problems)


@app.command("rekey")
def rekey() -> None:
    """Seal ledgers written before the ledger key: each unkeyed chain that verifies gets a keyed
    head; later entries are keyed. Exit 1 when a chain was refused."""
    from huiqi.core.db import session_scope
    from huiqi.grants.ledger import seal_legacy
    from huiqi.grants.schemas import GrantError

    _settings()
    try:
        with _database(), session_scope() as session:
            report = seal_legacy(session)
    except GrantError as exc:
        raise _fail(str(exc)) from None
    for gid, why in report.refused:
        err.print(f"grant #{gid}: not sealed: {why}", highlight=False, markup=False)
    console.print(f"{len(report.sealed)} ledger chain(s) sealed under the ledger key")
    if report.refused:
        raise typer.Exit(1)


@app.command("disburse")
def disburse(
    out: Path = typer.Option(Path("."), "--out", help="Folder for the CSV and XLSX files."),
    actor: str = typer.Option(..., "--by", help="Who creates the batch (recorded in the ledger)."),
) -> None:
    """Put every approved, unheld grant into a new batch and write its disbursement files."""
    from huiqi.core.db import session_scope
    from huiqi.core.money import format_fen
    from huiqi.grants import service
    from huiqi.grants.schemas import GrantError

    _settings()
    if not out.is_dir():
        raise _fail(f"--out {out}: not a folder")
    try:
        with _database(), session_scope() as session:
            batch = service.create_disbursement(session, actor=actor)
            left = service.split_four_eyes(session, service.disbursable(session), actor)[1]
            rows = service.disbursement_rows(session, batch.id)
            (out / f"disbursement-{batch.id}.csv").write_bytes(service.disbursement_csv(rows))
            (out / f"disbursement-{batch.id}.xlsx").write_bytes(service.disbursement_xlsx(rows))
            table = Table("batch", "grants", "total", title="disbursement 拨付批次")
            table.add_row(str(batch.id), str(batch.count), format_fen(batch.total_fen))
    except GrantError as exc:
        raise _fail(str(exc)) from None
    console.print(table)
    if left:
        console.print(
            f"{len(left)} grant(s) approved by {actor} were left for another officer (four-eyes)"
        )
