"""`huiqi` command line: serve the platform, migrate, manage users, load demo data."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from huiqi.enterprise import cli as enterprise_cli
from huiqi.finance import cli as finance_cli
from huiqi.funds import cli as funds_cli
from huiqi.funds import officer_cli as funds_officer_cli
from huiqi.grants import cli as grants_cli
from huiqi.matching import cli as matching_cli
from huiqi.notify import cli as notify_cli
from huiqi.policy import cli as policy_cli

if TYPE_CHECKING:
    import uvicorn
    from rich.progress import TaskID

    from huiqi.core.config import Settings

console = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="huiqi",
    help="惠企 huiqi — SME policy platform: policy library, enterprise registry, matching, push.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
user_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data for trying the platform.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(demo_app, name="demo")


@app.callback()
def _wire(ctx: typer.Context) -> None:
    """Subscribe the domain event handlers before any command runs (huiqi.wiring).

    The policy group wires its own commands: `policy parse` opens no database, and the handlers'
    imports (every domain, SQLAlchemy, Polars) were most of its start-up.
    """
    if ctx.invoked_subcommand != "policy":
        from huiqi.wiring import install

        install()


# Domain command groups.
app.add_typer(policy_cli.app, name="policy")
app.add_typer(enterprise_cli.app, name="enterprise")
app.add_typer(matching_cli.rules_app, name="rules")
app.add_typer(matching_cli.app, name="match")
app.add_typer(notify_cli.app, name="notify")
app.add_typer(grants_cli.app, name="grants")
app.add_typer(finance_cli.app, name="finance")
funds_app = typer.Typer(
    help="Special funds (专项资金, 快申快享): calls, review, award.", no_args_is_help=True
)
funds_cli.register(funds_app)
funds_officer_cli.register(funds_app)
app.add_typer(funds_app, name="funds")
demo_app.command("population")(enterprise_cli.population)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error without a traceback and return the exit to raise."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings_or_exit() -> Settings:
    """Settings, or a clear message naming the bad setting."""
    # imported on use: pydantic-settings is a large share of `huiqi --help`'s start-up
    from huiqi.core.config import ConfigError, get_settings

    try:
        return get_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("heads", help="Target revision; 'heads' applies everything."),
) -> None:
    """Apply the schema migrations to the configured database (HUIQI_DATABASE_URL)."""
    from huiqi.core import migrate

    settings = _settings_or_exit()
    url = settings.effective_database_url
    before = migrate.pending_revisions(url)
    try:
        migrate.upgrade(url, revision)
    except Exception as exc:  # report any database failure as one line
        raise fail(f"migration failed on {_safe_url(url)}: {exc}") from None
    applied = len(before - migrate.pending_revisions(url))
    where = _safe_url(url)
    if applied:
        console.print(
            f"数据库结构已更新({applied} 项变更)/ database {where}: {applied} schema change(s) applied"
        )
    else:
        console.print(f"数据库结构已是最新 / database {where} is up to date")
    console.print(
        f"[dim]revisions: {', '.join(sorted(migrate.current_heads(url)))}[/dim]", highlight=False
    )
    if revision == "heads":
        _seal_grant_ledgers()


def _seal_grant_ledgers() -> None:
    """Seal grant ledgers written before the ledger key (as `huiqi grants rekey`)."""
    from huiqi.core.db import session_scope
    from huiqi.grants.ledger import seal_legacy
    from huiqi.grants.schemas import GrantError

    try:
        with session_scope() as session:
            report = seal_legacy(session)
    except GrantError as exc:
        raise fail(str(exc)) from None
    if report.sealed:
        console.print(f"{len(report.sealed)} grant ledger chain(s) sealed under the ledger key")
    for gid, why in report.refused:
        err.print(f"grant #{gid}: ledger not sealed: {why}", highlight=False, markup=False)


@db_app.command("revision")
def db_revision(
    message: str = typer.Option(..., "--message", "-m", help="What the migration changes."),
) -> None:
    """Generate a migration from the models and the attribute catalogue (review it before use).

    The configured database must be up to date (`huiqi db upgrade`); the new file is written
    beside the shipped migrations.
    """
    from huiqi.core import migrate

    url = _settings_or_exit().effective_database_url
    if migrate.pending_revisions(url):
        raise fail("the database is behind the code: run `huiqi db upgrade` first")
    written = migrate.autogenerate(url, message)
    for path in written:
        console.print(f"wrote {path} — review it before committing")
    if not written:
        console.print("no changes: the database already matches the models and the catalogue")


@db_app.command("current")
def db_current() -> None:
    """Show which migrations the configured database has."""
    from huiqi.core import migrate

    url = _settings_or_exit().effective_database_url
    have = migrate.current_heads(url)
    pending = migrate.pending_revisions(url)
    console.print(f"database: {', '.join(sorted(have)) or '(empty)'}")
    if pending:
        raise fail(f"not applied: {', '.join(sorted(pending))} — run `huiqi db upgrade`", 1)
    console.print("up to date")


def _safe_url(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@user_app.command("create")
def user_create(
    username: str = typer.Argument(..., help="Log-in name (3–64 letters, digits, . _ -)."),
    role: str = typer.Option(..., "--role", "-r", help="admin, officer, enterprise or bank."),
    password: str | None = typer.Option(
        None,
        "--password",
        help="Initial password (asked for when omitted; 10+ characters, not containing the "
        "username, not one of the 10,000 most common passwords).",
    ),
    display_name: str = typer.Option("", "--name", help="Display name."),
    email: str | None = typer.Option(None, "--email", help="E-mail address."),
    department: str | None = typer.Option(None, "--department", help="Officer's department."),
    credit_code: str | None = typer.Option(
        None, "--credit-code", help="Enterprise user's 统一社会信用代码."
    ),
    institution: str | None = typer.Option(None, "--institution", help="Bank user's institution."),
) -> None:
    """Create a user with a role bound to a department, enterprise or institution."""
    from huiqi.accounts import service
    from huiqi.core.db import session_scope

    _settings_or_exit()
    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("password: ")
    try:
        with session_scope() as session:
            user = service.create_user(
                session,
                username=username,
                password=password,
                role=role,
                display_name=display_name,
                email=email,
                department=department,
                credit_code=credit_code,
                institution=institution,
            )
            console.print(
                f"created {user.username} ({user.role}{', ' + user.binding if user.binding else ''})"
            )
    except service.AccountError as exc:
        raise fail(str(exc)) from None


@user_app.command("set-password")
def user_set_password(
    username: str = typer.Argument(..., help="Log-in name."),
) -> None:
    """Set a user's password (read from standard input or asked for); the policy applies."""
    from sqlalchemy import select

    from huiqi.accounts import service
    from huiqi.accounts.models import User
    from huiqi.core.db import session_scope

    _settings_or_exit()
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("new password: ")
    try:
        with session_scope() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise service.AccountError(
                    f"没有名为 {username!r} 的用户 / no user named {username!r}"
                )
            service.change_password(session, user, password)
            console.print(f"password of {username} changed; its browser sessions ended")
    except service.AccountError as exc:
        raise fail(str(exc)) from None


@user_app.command("list")
def user_list() -> None:
    """List users and their roles."""
    from sqlalchemy import select

    from huiqi.accounts.models import User
    from huiqi.core.db import session_scope

    _settings_or_exit()
    table = Table("id", "username", "role", "acts for", "active")
    with session_scope() as session:
        for user in session.scalars(select(User).order_by(User.id)):
            table.add_row(
                str(user.id), user.username, user.role, user.binding or "", str(user.is_active)
            )
    console.print(table)


@user_app.command("scope")
def user_scope(
    username: str = typer.Argument(..., help="The user to change."),
    region_prefix: str | None = typer.Option(
        None, "--region-prefix", help="Limit an officer to regions whose code starts with this."
    ),
    province: bool = typer.Option(
        False, "--province", help="Remove the region limit (the whole province)."
    ),
    assign: list[str] = typer.Option([], "--assign", help="Assign an item, KIND:REF (repeatable)."),
    unassign: list[str] = typer.Option([], "--unassign", help="Remove an item, KIND:REF."),
) -> None:
    """Set a user's scope: region prefix and assigned items (audited); prints the scope."""
    from sqlalchemy import select

    from huiqi.accounts import scopes
    from huiqi.accounts.models import User
    from huiqi.core.db import session_scope
    from huiqi.core.errors import DomainError

    _settings_or_exit()
    try:
        with session_scope() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise fail(f"no user named {username!r}")
            if province or region_prefix is not None:
                scopes.set_region_prefix(session, user, None if province else region_prefix)
            for text in assign:
                scopes.assign(session, user, scopes.parse_assignment(text))
            for text in unassign:
                scopes.unassign(session, user, scopes.parse_assignment(text))
            scope = scopes.load_scope(session, user)
    except DomainError as exc:
        raise fail(str(exc)) from None
    items = ", ".join(sorted(f"{a.kind}:{a.ref}" for a in scope.assignments)) or "none"
    console.print(
        f"{username}: {scope.role.value}, region {scope.region_prefix or 'whole province'}, "
        f"assigned {items}"
    )


@user_app.command("set-role")
def user_set_role(
    username: str = typer.Argument(..., help="The user to change."),
    role: str = typer.Option(..., "--role", "-r", help="admin, officer, enterprise or bank."),
    binding: str | None = typer.Option(
        None, "--for", help="Department, credit code or institution the role acts for."
    ),
) -> None:
    """Change a user's role (audited)."""
    from sqlalchemy import select

    from huiqi.accounts import service
    from huiqi.accounts.models import Role, User
    from huiqi.core.db import session_scope

    _settings_or_exit()
    try:
        with session_scope() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                raise service.AccountError(f"no user named {username!r}")
            service.set_role(
                session,
                user,
                role,
                department=binding if role == Role.officer else None,
                credit_code=binding if role == Role.enterprise else None,
                institution=binding if role == Role.bank else None,
            )
    except (service.AccountError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(f"{username} is now {role}")


@demo_app.command("load")
def demo_load(
    size: int = typer.Option(3000, "--size", min=0, help="How many demo enterprises to generate."),
    seed: int = typer.Option(2020, "--seed", help="Random seed of the demo population."),
) -> None:
    """Load the demo data (accounts, seed policy, enterprises, products, rules, matching); safe to run again."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from huiqi import demo
    from huiqi.core.db import session_scope
    from huiqi.core.errors import DomainError

    _settings_or_exit()
    steps: list[str] = []

    def step(description: str, budget: float | None = None) -> None:
        steps.append(description)
        show(description, budget)

    try:
        with _step_progress() as show, session_scope() as session:
            accounts = demo.load_all(session, population=size, seed=seed, progress=step)
    except DomainError as exc:
        # the step's transaction was rolled back: nothing of this run was kept
        where = steps[-1] if steps else "准备 / preparing"
        raise fail(
            f"演示数据未加载(未写入任何数据),步骤「{where}」出错:{exc.message_zh}"
            f" / demo data not loaded (nothing written), step failed: {exc.message_en}",
            1,
        ) from None
    except (OperationalError, ProgrammingError) as exc:
        raise fail(
            "演示数据未加载:数据库表缺失或不可用,请先运行 `huiqi db upgrade`"
            " / demo data not loaded: the database is missing tables or unreachable; run"
            f" `huiqi db upgrade` first ({type(exc.orig).__name__})",
            1,
        ) from None
    table = Table("role", "username", "password", title="demo log-ins 演示账户")
    for acct in accounts:
        table.add_row(acct.role, acct.username, acct.password)
    console.print(table)


@contextmanager
def _step_progress(
    clock: Callable[[], float] | None = None,
) -> Iterator[Callable[[str, float | None], None]]:
    """One progress line per step: a running bar while it works, then its time taken.

    A step given a time budget says so when it took longer (``clock`` measures, in seconds).
    """
    import time

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    tick = clock or time.monotonic
    with Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        current: list[tuple[TaskID, str, float | None, float]] = []

        def finish() -> None:
            if not current:
                return
            task, description, budget, started = current[-1]
            took = tick() - started
            if budget is not None and took > budget:
                description += (
                    f" [yellow]超出时间预算 {budget:g} 秒(用时 {took:.0f} 秒)"
                    f" / over its {budget:g} s budget[/yellow]"
                )
            progress.update(task, total=1, completed=1, description=description)
            progress.stop_task(task)

        def step(description: str, budget: float | None = None) -> None:
            finish()
            task = progress.add_task(description, total=None)
            current.append((task, description, budget, tick()))

        yield step
        finish()


SQLITE_ONE_WORKER = (
    "--workers {n}: the embedded SQLite database has one write lock for all processes, so more "
    "worker processes would only queue on it (and each would keep its own caches); one worker "
    "serves reads concurrently already. Set HUIQI_DATABASE_URL to a PostgreSQL database to run "
    "several workers."
)
# open files (connections among them) a server process asks for when its limit is lower
OPEN_FILES_WANTED = 65536


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Address to bind (default HUIQI_HOST, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port (default HUIQI_PORT, 8000)."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Worker processes (default HUIQI_WORKERS, 1); more than one needs PostgreSQL.",
    ),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
    access_log: bool = typer.Option(
        False, "--access-log", help="Log every request (costs throughput under load)."
    ),
    with_dispatcher: bool = typer.Option(
        False,
        "--with-dispatcher",
        help="Also send queued notifications from a background thread (as `huiqi notify run`).",
    ),
) -> None:
    """Start the web server (pages, JSON API under /api/v1, /healthz).

    On SIGTERM or Ctrl-C it stops accepting connections and lets running requests finish
    for at most HUIQI_SHUTDOWN_TIMEOUT_SECONDS (default 10).
    """
    import uvicorn
    from sqlalchemy.engine import make_url

    from huiqi.core.config import ConfigError

    settings = _settings_or_exit()
    try:
        settings.check_safe()
    except ConfigError as exc:
        raise fail(str(exc)) from None

    from huiqi.core import migrate

    url = settings.effective_database_url
    count = workers or settings.workers
    if count > 1 and make_url(url).get_backend_name() == "sqlite":
        raise fail(SQLITE_ONE_WORKER.format(n=count))
    if count > 1 and reload:
        raise fail("--workers and --reload cannot be combined")
    if migrate.pending_revisions(url):
        raise fail(f"database at {_safe_url(url)} is not migrated: run `huiqi db upgrade`")
    bind_host = host or settings.host
    bind_port = port or settings.port
    _allow_many_connections()
    console.print(
        f"huiqi serving on http://{bind_host}:{bind_port}  (database {_safe_url(url)}, "
        f"{count} worker{'s' if count > 1 else ''})"
    )
    if with_dispatcher:
        from huiqi.notify.dispatcher import start_background

        start_background(settings)
        console.print("notification dispatcher running in the background")
    options: dict[str, Any] = {
        "factory": True,
        "host": bind_host,
        "port": bind_port,
        # X-Forwarded-For is believed only from HUIQI_TRUSTED_PROXIES (the app applies it),
        # never from whoever connects over loopback as uvicorn's own default would.
        "proxy_headers": False,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
        # keep-alive connections of load balancers and browsers are reused between requests
        "timeout_keep_alive": 15,
        "backlog": 4096,
        # uvloop accepting every waiting connection per turn, not one (see huiqi.web.accept)
        "loop": "huiqi.web.accept:new_event_loop",
        "access_log": access_log,
    }
    if count > 1:
        _serve_workers(uvicorn.Config(APP_FACTORY, workers=count, **options))
        return
    uvicorn.run(
        APP_FACTORY,
        reload=reload,
        # templates are read once per process, so a changed template reloads the server too
        reload_includes=["*.py", "*.html"] if reload else None,
        **options,
    )


APP_FACTORY = "huiqi.web.app:create_app"


def _serve_workers(config: uvicorn.Config) -> None:
    """uvicorn's supervisor over `config.workers` processes, each with a listening socket of its own.

    The port is bound here with SO_REUSEPORT and each worker listens on its own socket on it,
    so the kernel spreads connections over the workers evenly (see huiqi.web.accept); on one
    shared listening socket, whichever worker woke first took everyone waiting.
    """
    from uvicorn.supervisors.multiprocess import Multiprocess

    from huiqi.web.accept import bind_shared

    try:
        sockets = bind_shared(config.host, config.port)
    except OSError as exc:
        raise fail(f"cannot listen on {config.host}:{config.port}: {exc}") from None
    for sock in sockets:
        sock.set_inheritable(True)
    try:
        Multiprocess(config, sockets=sockets).run()
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()


def _allow_many_connections() -> None:
    """Raise the open-files limit to what the system allows (the workers inherit it).

    Every connection is a file descriptor. Under a soft limit of 1,024 (a common default), a
    client that opens a thousand connections and keeps them open would leave the server
    unable to accept anyone else.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> None:
    """Console entry point."""
    app()
