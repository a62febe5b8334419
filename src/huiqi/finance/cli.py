"""`huiqi finance …`: deadline reminders, LPR look-up, statistics, demo products."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.table import Table

from huiqi.core import clock

app = typer.Typer(help="Financing matchmaking (政银企对接).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _date(raw: str | None, option: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _fail(f"{option}: not a date {raw!r} (write YYYY-MM-DD)") from None


@app.command("remind")
def remind_cmd(
    on: str | None = typer.Option(
        None, "--on", help="Day to check (YYYY-MM-DD; default today, Beijing)."
    ),
) -> None:
    """Notify about applications past their working-day deadline (once per deadline)."""
    from huiqi.core.db import session_scope
    from huiqi.finance import service

    day = _date(on, "--on") or clock.today()
    try:
        with session_scope() as session:
            apps = service.remind(session, on=day)
            rows = [(a.id, a.institution, a.status, str(a.due_on)) for a in apps]
    except Exception as exc:  # a database failure is reported as one line
        raise _fail(f"reminders failed: {exc}") from None
    table = Table("application", "lender", "status", "was due", title=f"overdue on {day}")
    for row in rows:
        table.add_row(str(row[0]), row[1], row[2], row[3])
    console.print(table)
    console.print(f"{len(rows)} reminder(s) sent")


@app.command("lpr")
def lpr_cmd(
    on: str | None = typer.Option(None, "--on", help="Day (YYYY-MM-DD; default today)."),
) -> None:
    """Show the LPR in force on a day and the announcement it comes from."""
    from huiqi.finance import eligibility, service

    day = _date(on, "--on") or clock.today()
    params = eligibility.default_params()
    table = Table("parameter", "value", "source")
    for name in eligibility.RATE_BASES:
        param = params.param(name)
        bp = params.bp_on(name, day)
        src = param.source_on(day) if param else None
        table.add_row(
            name, service.pct(bp) if bp is not None else "no value", src.label() if src else "—"
        )
    console.print(table)
    if all(params.bp_on(n, day) is None for n in eligibility.RATE_BASES):
        raise _fail(f"no LPR value on {day} (the LPR series starts 2019-08-20)", 1)


@app.command("stats")
def stats_cmd() -> None:
    """Print the financing statistics."""
    from huiqi.core.db import session_scope
    from huiqi.finance import service
    from huiqi.finance.stats import finance_stats

    with session_scope() as session:
        st = finance_stats(session)
        table = Table("measure", "value", title=f"financing on {st.on}")
        table.add_row("applications", str(st.applications))
        table.add_row(
            "approval rate", "—" if st.approval_rate is None else f"{st.approval_rate * 100:.1f}%"
        )
        table.add_row(
            "average approved rate",
            "—" if st.average_rate_bp is None else f"{st.average_rate_bp / 100}%",
        )
        table.add_row("working days to decision", str(st.average_days_to_decision or "—"))
        table.add_row("disbursed", f"{st.disbursed} ({service.wan(st.disbursed_amount_fen)})")
        table.add_row(
            "first-loan share",
            "—" if st.first_loan_share is None else f"{st.first_loan_share * 100:.1f}%",
        )
        table.add_row(
            "guarantee fees within (十八)",
            {None: "—", True: "yes", False: "no"}[st.fees.compliant],
        )
    console.print(table)


@app.command("demo")
def demo_cmd() -> None:
    """Load the demo products (safe to run again)."""
    from huiqi.core.db import session_scope
    from huiqi.finance.demo import load_demo

    with session_scope() as session:
        products = load_demo(session)
        names = [p.name for p in products]
    console.print(f"{len(names)} demo product(s): {', '.join(names)}")
