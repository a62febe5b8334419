"""`huiqi notify`: run the outbox dispatcher, show delivery status, retry dead letters."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Notifications: outbox dispatcher and delivery status.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _settings():  # type: ignore[no-untyped-def]
    """Settings, or a one-line error naming the bad setting."""
    from huiqi.core.config import ConfigError, get_settings

    try:
        return get_settings()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="Send what is due now, then exit."),
) -> None:
    """Send due outbox rows (e-mail, webhook, SMS); without --once keep running until stopped."""
    from huiqi.notify.dispatcher import Dispatcher

    settings = _settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dispatcher = Dispatcher(settings)
    if once:
        try:
            stats = dispatcher.run_once()
        except Exception as exc:  # e.g. the database is unreachable or not migrated
            err.print(f"[bold red]error:[/] dispatcher failed: {exc}", highlight=False)
            raise typer.Exit(1) from None
        console.print(
            f"sent {sum(stats.sent.values())}, retry later {sum(stats.retried.values())}, "
            f"dead-lettered {sum(stats.dead.values())}, cancelled {sum(stats.cancelled.values())}, "
            f"digests {stats.digests}"
        )
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"dispatcher {dispatcher.worker} running; Ctrl-C to stop")
    dispatcher.run_forever(stop)


@app.command("status")
def status() -> None:
    """Outbox rows per channel and status."""
    from huiqi.core.db import session_scope
    from huiqi.notify import service

    _settings()
    with session_scope() as session:
        counts = service.status_counts(session)
    table = Table("channel", "status", "rows", title="outbox 发送队列")
    for (channel, state), n in sorted(counts.items()):
        table.add_row(channel, state, str(n))
    console.print(table)


@app.command("retry")
def retry(outbox_id: int = typer.Argument(..., help="Id of a dead-lettered outbox row.")) -> None:
    """Give a dead-lettered message a fresh round of attempts (same idempotency key)."""
    from huiqi.core.db import session_scope
    from huiqi.notify import service

    _settings()
    try:
        with session_scope() as session:
            service.requeue_dead(session, outbox_id)
    except service.NotifyError as exc:
        err.print(f"[bold red]error:[/] outbox {outbox_id}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"outbox {outbox_id} queued again")
