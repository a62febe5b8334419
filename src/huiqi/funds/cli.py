"""`huiqi funds calls`: the calls for applications, as a table or JSON."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


def calls(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    status: str | None = typer.Option(
        None,
        help="Only calls of this status: draft, open, closed, in_review, publicity, awarded, paid.",
    ),
) -> None:
    """List calls for applications with their window, budget, quota and applications."""
    from sqlalchemy.exc import SQLAlchemyError

    from huiqi.core.config import ConfigError, get_settings
    from huiqi.core.db import session_scope
    from huiqi.core.money import format_fen
    from huiqi.funds import service
    from huiqi.funds.models import FundCall
    from huiqi.funds.schemas import CALL_STATUS_LABELS, CallStatus
    from huiqi.funds.timeline import beijing_text

    if status is not None and status not in tuple(CallStatus):
        err.print(
            f"[bold red]error:[/] unknown status {status!r}; use one of {', '.join(CallStatus)}"
        )
        raise typer.Exit(2)
    try:
        get_settings()
        with session_scope() as session:
            from sqlalchemy import select

            rows = session.scalars(select(FundCall).order_by(FundCall.closes_at.desc())).all()
            items: list[dict[str, Any]] = [
                {
                    "id": c.id,
                    "title": c.title,
                    "fund": c.fund.name,
                    "department": c.fund.department,
                    "status": service.shown_status(c),
                    "opens_beijing": beijing_text(c.opens_at),
                    "closes_beijing": beijing_text(c.closes_at),
                    "budget_fen": c.budget_fen,
                    "quota": c.quota,
                    "applications": service.submitted_count(session, c.id),
                    "rule_id": c.rule_id,
                }
                for c in rows
            ]
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        err.print(
            f"[bold red]error:[/] database: {reason} (is it migrated? run `huiqi db upgrade`)"
        )
        raise typer.Exit(2) from None
    if status is not None:
        items = [i for i in items if i["status"] == status]
    if as_json:
        typer.echo(json.dumps({"calls": items}, ensure_ascii=False, indent=2))
        return
    table = Table(title="申报通知 / calls for applications")
    for head in (
        "#",
        "通知 call",
        "状态 status",
        "截止 closes (Beijing)",
        "资金 budget",
        "申报 applied",
    ):
        table.add_column(head)
    for i in items:
        quota = f"{i['applications']}/{i['quota']}" if i["quota"] else str(i["applications"])
        table.add_row(
            str(i["id"]),
            f"{i['title']}\n{i['fund']}",
            CALL_STATUS_LABELS[str(i["status"])][0],
            str(i["closes_beijing"]),
            format_fen(i["budget_fen"]),
            quota,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the enterprise-side commands to the `huiqi funds` group."""
    app.command("calls")(calls)
