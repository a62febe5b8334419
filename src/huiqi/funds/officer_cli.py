"""`huiqi funds award CALL --dry-run`: the ranked list within budget of a call, as the award
page shows it; without --dry-run, an officer (--as) puts it on 公示."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def award(
    call_id: int = typer.Argument(..., help="The call's number (申报通知编号)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the ranked list within budget; change nothing."
    ),
    as_user: str | None = typer.Option(
        None, "--as", help="Without --dry-run: the provincial officer who puts the list on 公示."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The ranked list within budget (ties: score, then submission time); who is cut and why."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from huiqi.accounts.models import User
    from huiqi.core.config import ConfigError, get_settings
    from huiqi.core.db import session_scope
    from huiqi.core.errors import DomainError
    from huiqi.core.money import format_fen
    from huiqi.funds import awarding
    from huiqi.funds.award import OUTCOME_LABELS
    from huiqi.funds.models import FundCall

    try:
        get_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not dry_run and not as_user:
        raise _fail("give --dry-run to print the list, or --as OFFICER to put it on 公示")
    try:
        with session_scope() as session:
            call = session.get(FundCall, call_id)
            if call is None:
                raise _fail(f"申报通知 #{call_id} 不存在 / no call #{call_id}", 1)
            if dry_run:
                result = awarding.plan(session, call)
                session.rollback()  # a dry run writes nothing, not even computed subsidies
            else:
                officer = session.scalar(select(User).where(User.username == as_user))
                if officer is None:
                    raise _fail(f"no user {as_user!r}", 1)
                result = awarding.start_publicity(session, officer, call_id)
            rows: list[dict[str, Any]] = [
                {
                    "rank": line.rank,
                    "application_id": line.candidate.application_id,
                    "enterprise_name": line.candidate.label,
                    "score": str(line.candidate.score),
                    "requested_fen": line.candidate.requested_fen,
                    "award_fen": line.award_fen,
                    "outcome": str(line.outcome),
                    "reason": line.reason_zh,
                }
                for line in result.ranked.lines
            ]
            title = call.title
            summary: dict[str, Any] = {
                "call_id": call_id,
                "title": title,
                "budget_left_fen": result.budget_left_fen,
                "total_fen": result.ranked.total_fen,
                "cut_rank": result.ranked.cut_rank,
                "dry_run": dry_run,
                "lines": rows,
            }
    except DomainError as exc:
        raise _fail(str(exc), 1) from None
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise _fail(f"database: {reason} (is it migrated? run `huiqi db upgrade`)") from None
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    table = Table("名次", "申报", "企业", "得分", "应支持", "拟支持", "结果", "理由", title=title)
    for row in rows:
        table.add_row(
            str(row["rank"]),
            f"#{row['application_id']}",
            str(row["enterprise_name"]),
            str(row["score"]),
            format_fen(int(row["requested_fen"])),
            format_fen(int(row["award_fen"])) if row["award_fen"] else "—",
            OUTCOME_LABELS[str(row["outcome"])][0],
            str(row["reason"]),
        )
    console.print(table)
    console.print(
        f"可用预算 {format_fen(result.budget_left_fen)},拟支持合计 "
        f"{format_fen(result.ranked.total_fen)}"
        + (f",分数线在第 {result.ranked.cut_rank} 名" if result.ranked.cut_rank else "")
        + ("(试算,未作任何改动)" if dry_run else ",已发布公示"),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the officer commands to the `huiqi funds` command group."""
    app.command("award")(award)
