"""Province benchmark: wrk against pages and API while the dispatcher drains an outbox and an
import runs; both are killed with SIGKILL mid-way, restarted, and every row is counted.

    .venv/bin/python -m bench province                              # both backends, defaults
    .venv/bin/python -m bench province --backend sqlite --outbox 20000 --rows 20000 --duration 5
    .venv/bin/python -m bench province --channel webhook             # the webhook sink, not SMS

Per backend (SQLite with 1 worker, PostgreSQL with 2): a demo database (built once as a template
under bench/out/province, copied for every run) gets an outbox of `--outbox` messages (one
enterprise, notification and outbox row each, set-based as `bench dispatch` queues them) and an
import file of `--rows` generated enterprises is written; the same file is imported into another
copy of the template first, the reference. A bare FastAPI app is measured at each connection count (the
baseline of `bench load`); then `huiqi serve` is started, and beside it `huiqi notify run` (rate
limits lifted, 10 s lease) and `huiqi enterprise import FILE` as processes of their own, while wrk
drives every target at 32 and then 256 connections (2 s client timeout). When a third of the
outbox has reached the sink the dispatcher gets SIGKILL, when a third of the file is in the
registry the import does; each is started again at once. When both have finished the bench counts:
every outbox row sent, none lost, a key received twice only if its row was in flight at the kill
(or failed and was retried); for the imported enterprises the registry (enterprises, recorded and
current values) and what the import's handlers wrote (subscriptions, consent events, match
results, notifications, outbox rows) equal the reference's, compared as row counts and digests.
One verdict line per check; the exit status is 1 when one fails.

Sinks: SMS goes to the log gateway, whose log lines (one per SMS, with the idempotency key) are
the dispatcher's output; webhooks go to bench/dispatch/webhook_sink.py, which writes each
request's idempotency key to a file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import bench_dispatch, bench_load

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "province"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS = ("healthz", "policy", "search", "mine", "inbox")
IMPORT_SEED = 2021  # the demo registry is seed 2020: the imported enterprises are new ones
KILL_AT = 1 / 3  # share of the outbox (of the file) done when the dispatcher (the import) is killed
LEASE_SECONDS = 10
SMS_KEY = re.compile(r"SMS to \S+ \[([^\]\s]+)\]")
HUIQI = [sys.executable, "-c", "from huiqi.cli.main import main; main()"]


# -- counting (pure) -------------------------------------------------------------------------


def received_keys(lines: Iterable[str], channel: str) -> Counter[str]:
    """Idempotency keys a sink received, with how often: SMS log lines or the webhook key file.

    A line cut short by SIGKILL (no newline yet) is not counted: the send it logs was not done.
    """
    keys: Counter[str] = Counter()
    for line in lines:
        if not line.endswith("\n"):
            continue
        if channel == "sms":
            found = SMS_KEY.search(line)
            if found:
                keys[found.group(1)] += 1
        elif line.strip():
            keys[line.strip()] += 1
    return keys


@dataclass
class Delivery:
    """What the sink received of the outbox rows the bench queued."""

    rows: int
    not_sent: int
    lost: int  # rows whose key never reached the sink
    duplicated: int  # keys received more than once
    outside: int  # duplicated keys that were neither in flight at the kill nor retried
    most: int  # the most times one key was received
    unknown: int  # keys received that no queued row has

    @property
    def ok(self) -> bool:
        """Nothing lost or unsent, duplicates only within the in-flight batch, each at most twice."""
        return (
            self.not_sent == self.lost == self.outside == self.unknown == 0
            and self.most <= 2
            and self.rows > 0
        )


def count_delivery(
    expected: set[str],
    statuses: dict[str, str],
    received: Counter[str],
    in_flight: set[str],
    retried: set[str],
) -> Delivery:
    """Compare the queued keys (and their final statuses) with what the sink received.

    ``received`` may hold keys of rows the bench did not queue (the import's own notifications
    go through the same sink): only ``expected`` keys are judged, ``unknown`` counts received
    keys that have no row at all (``statuses`` covers every row of the channel).
    """
    mine = {k: n for k, n in received.items() if k in expected}
    duplicated = {k for k, n in mine.items() if n > 1}
    return Delivery(
        rows=len(expected),
        not_sent=sum(1 for k in expected if statuses.get(k) != "sent"),
        lost=len(expected - mine.keys()),
        duplicated=len(duplicated),
        outside=len(duplicated - in_flight - retried),
        most=max(mine.values(), default=0),
        unknown=sum(1 for k in received if k not in statuses),
    )


def digest(rows: Iterable[Iterable[Any]]) -> tuple[int, str]:
    """How many rows, and an order-independent SHA-256 of them (each rendered as text)."""
    lines = sorted("\x1f".join("" if v is None else str(v) for v in row) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def state_differences(
    reference: dict[str, tuple[int, str]], got: dict[str, tuple[int, str]]
) -> list[str]:
    """What differs between a clean import's state and this one (empty: the same)."""
    return [
        f"{name}: {got.get(name, (0, ''))[0]:,} rows"
        + (" (other content)" if got.get(name, (0, ""))[0] == count else "")
        + f" where a clean import has {count:,}"
        for name, (count, sha) in reference.items()
        if got.get(name) != (count, sha)
    ]


# -- databases -------------------------------------------------------------------------------


def _admin(sql: str) -> None:
    from sqlalchemy import text

    from huiqi.core.db import make_engine

    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def _pg_exists(name: str) -> bool:
    from sqlalchemy import text

    from huiqi.core.db import make_engine

    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    admin.dispose()
    return found is not None


def _pg_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _base_env() -> dict[str, str]:
    env = {**os.environ, "HUIQI_COOKIE_SECURE": "false", "HUIQI_ENV": "development"}
    for name in ("HUIQI_CONFIG_FILE", "HUIQI_DATABASE_URL"):
        env.pop(name, None)
    return env


def _template(backend: str, size: int, pg_name: str, fresh: bool) -> Path:
    """The demo database built once (migrate + demo load) and kept as the runs' template."""
    folder = OUT / f"template-{backend}"
    marker = folder / f".demo-{size}"
    if backend == "postgres" and not _pg_exists(f"{pg_name}_template"):
        marker.unlink(missing_ok=True)  # the folder outlived its database
    if marker.exists() and not fresh:
        env = _base_env() | {"HUIQI_DATA_DIR": str(folder)}
        if backend == "postgres":
            env["HUIQI_DATABASE_URL"] = _pg_url(f"{pg_name}_template")
        bench_load._huiqi("db", "upgrade", env=env)  # a kept template may predate migrations
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = _base_env() | {"HUIQI_DATA_DIR": str(folder)}
    if backend == "postgres":
        _admin(f'DROP DATABASE IF EXISTS "{pg_name}_template" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{pg_name}_template"')
        env["HUIQI_DATABASE_URL"] = _pg_url(f"{pg_name}_template")
    print(f"· {backend}: building the demo template ({size} enterprises)", flush=True)
    bench_load._huiqi("db", "upgrade", env=env)
    bench_load._huiqi("demo", "load", "--size", str(size), env=env)
    marker.touch()
    return folder


def _run_database(backend: str, template: Path, pg_name: str) -> tuple[dict[str, str], str]:
    """A copy of the template for this run: its environment and database URL."""
    folder = OUT / f"run-{backend}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template, folder)
    env = _base_env() | {"HUIQI_DATA_DIR": str(folder)}
    if backend == "postgres":
        _admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{pg_name}" TEMPLATE "{pg_name}_template"')
        env["HUIQI_DATABASE_URL"] = _pg_url(pg_name)
        return env, env["HUIQI_DATABASE_URL"]
    return env, f"sqlite:///{folder / 'huiqi.db'}"


def _import_file(url: str, rows: int) -> tuple[Path, list[str]]:
    """The import file: generated enterprises, none of them already in the registry."""
    from sqlalchemy import select

    from huiqi.core.db import make_engine
    from huiqi.enterprise.models import Enterprise
    from huiqi.enterprise.population import generate, write_file

    engine = make_engine(url)
    with engine.connect() as conn:
        known = set(conn.scalars(select(Enterprise.credit_code)))
    engine.dispose()
    population = [r for r in generate(rows, seed=IMPORT_SEED) if r["credit_code"] not in known]
    path = OUT / f"import-{rows}.csv"
    write_file(population, path)
    return path, sorted(r["credit_code"] for r in population)


def import_state(url: str, codes: list[str]) -> dict[str, tuple[int, str]]:
    """What the import left for these enterprises, free of ids, timestamps and send statuses.

    The registry (enterprises, every recorded value whether in rows or packs, the current values,
    the current frame) and what its handlers wrote: push subscriptions and consent events from
    the file's contacts, match results, and the notifications and outbox rows matching queued.
    """
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from huiqi.core.db import make_engine
    from huiqi.enterprise import repository as repo
    from huiqi.enterprise import service
    from huiqi.enterprise.models import Enterprise, EnterpriseValue, EnterpriseValuePack
    from huiqi.matching.models import MatchState
    from huiqi.notify.models import ConsentEvent, Notification, OutboxMessage, Subscription

    engine = make_engine(url)
    state: dict[str, tuple[int, str]] = {}
    with sessionmaker(bind=engine)() as session:
        conn = session.connection()

        def mine(column: Any) -> Any:
            return repo.codes_in(conn, column, codes)

        e, v, p = Enterprise, EnterpriseValue, EnterpriseValuePack
        state["enterprises"] = digest(
            conn.execute(select(e.credit_code).where(mine(e.credit_code)))
        )
        value_rows = conn.execute(
            select(e.credit_code, v.field, v.year, v.value, v.source, v.as_of)
            .join(e, e.id == v.enterprise_id)
            .where(mine(e.credit_code))
        ).all()
        packed = [
            (code, *entry[:3], entry[3] if len(entry) > 3 else source, as_of)
            for code, source, as_of, entries in conn.execute(
                select(e.credit_code, p.source, p.as_of, p.entries)
                .join(e, e.id == p.enterprise_id)
                .where(mine(e.credit_code))
            )
            for entry in json.loads(entries)
        ]
        state["recorded values"] = digest([*value_rows, *packed])
        state["current values"] = digest(repo.live_values(session, codes))
        state["current frame"] = digest(service.current_frame(session, credit_codes=codes).rows())
        sub = Subscription
        state["subscriptions"] = digest(
            conn.execute(
                select(
                    sub.credit_code, sub.email, sub.phone, sub.webhook_url,
                    sub.email_consent_at.is_not(None), sub.sms_consent_at.is_not(None),
                    sub.webhook_consent_at.is_not(None), sub.daily_cap,
                ).where(mine(sub.credit_code))
            )
        )  # fmt: skip
        ce = ConsentEvent
        state["consent events"] = digest(
            conn.execute(
                select(ce.credit_code, ce.channel, ce.granted, ce.via, ce.address).where(
                    mine(ce.credit_code)
                )
            )
        )
        ms = MatchState
        state["match results"] = digest(
            (code, h, r.hex(), c.hex(), json.dumps(a, sort_keys=True), el, un)
            for code, h, r, c, a, el, un in conn.execute(
                select(
                    ms.credit_code, ms.input_hash, ms.results, ms.conditions, ms.amounts,
                    ms.eligible, ms.unknown,
                ).where(mine(ms.credit_code))
            )
        )  # fmt: skip
        n, o = Notification, OutboxMessage
        state["notifications"] = digest(
            conn.execute(
                select(n.credit_code, n.topic, n.dedupe_key, n.subject, n.rule_id).where(
                    mine(n.credit_code)
                )
            )
        )
        state["outbox rows"] = digest(
            conn.execute(
                select(o.credit_code, o.channel, o.kind, o.recipient, n.dedupe_key)
                .join(n, n.id == o.notification_id)
                .where(mine(o.credit_code))
            )
        )
    engine.dispose()
    return state


def _reference(
    backend: str, template: Path, csv_path: Path, codes: list[str], pg_name: str
) -> dict[str, tuple[int, str]]:
    """One clean import of the file (the command line, handlers and all) into a copy of the
    template, the state it leaves."""
    folder = OUT / f"reference-{backend}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(template, folder)
    env = _base_env() | {"HUIQI_DATA_DIR": str(folder)}
    url = f"sqlite:///{folder / 'huiqi.db'}"
    if backend == "postgres":
        _admin(f'DROP DATABASE IF EXISTS "{pg_name}_reference" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{pg_name}_reference" TEMPLATE "{pg_name}_template"')
        url = env["HUIQI_DATABASE_URL"] = _pg_url(f"{pg_name}_reference")
    bench_load._huiqi("enterprise", "import", str(csv_path), "--json", env=env)
    state = import_state(url, codes)
    if backend == "postgres":
        _admin(f'DROP DATABASE IF EXISTS "{pg_name}_reference" WITH (FORCE)')
    return state


def _queue(url: str, messages: int, channel: str, hook_url: str) -> tuple[set[str], range]:
    """The outbox rows of `bench dispatch`, queued set-based: their keys and ids."""
    from sqlalchemy import func, select

    from huiqi.core.db import make_engine
    from huiqi.notify.models import OutboxMessage

    engine = make_engine(url)
    with engine.connect() as conn:
        before = conn.scalar(select(func.max(OutboxMessage.id))) or 0
    bench_dispatch._fill(url, messages, [channel], hook_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(OutboxMessage.id, OutboxMessage.idempotency_key).where(OutboxMessage.id > before)
        ).all()
    engine.dispose()
    return {key for _, key in rows}, range(before + 1, max(i for i, _ in rows) + 1)


# -- the processes ---------------------------------------------------------------------------


@dataclass
class Chaos:
    """The dispatcher and import processes, their kills and restarts, and what was seen then."""

    env: dict[str, str]
    url: str
    channel: str
    expected: set[str]
    csv_path: Path
    codes: list[str]
    sink_file: Path  # SMS: the dispatcher's log (one per start); webhook: the sink's key file
    started: float = field(default_factory=time.monotonic)
    dispatchers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    imports: list[subprocess.Popen[bytes]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    sent_at_kill: int = 0
    imported_at_kill: int | None = None
    dispatcher_killed: bool = False
    import_killed: bool = False
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def note(self, what: str) -> None:
        """Record an event with the seconds since the processes started."""
        self.events.append(f"{time.monotonic() - self.started:6.1f} s  {what}")

    def start_dispatcher(self) -> None:
        """`huiqi notify run`, its output (the SMS log) to a file of its own."""
        n = len(self.dispatchers)
        out = (OUT / f"dispatcher-{n}.log").open("wb")
        self.dispatchers.append(
            subprocess.Popen([*HUIQI, "notify", "run"], env=self.env, stdout=out, stderr=out)
        )
        out.close()
        self.note(f"dispatcher {n + 1} started")

    def start_import(self) -> None:
        """`huiqi enterprise import FILE --json`, its counts to a file of its own."""
        n = len(self.imports)
        out = (OUT / f"import-{n}.out").open("wb")
        cmd = [*HUIQI, "enterprise", "import", str(self.csv_path), "--json"]
        self.imports.append(subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out))
        out.close()
        self.note(f"import {n + 1} started")

    def sink_lines(self) -> list[str]:
        """Every line the sink has written so far (all dispatcher logs for SMS)."""
        files = (
            [OUT / f"dispatcher-{n}.log" for n in range(len(self.dispatchers))]
            if self.channel == "sms"
            else [self.sink_file]
        )
        lines: list[str] = []
        for path in files:
            if path.exists():
                with path.open(encoding="utf-8", errors="replace") as fh:
                    lines.extend(fh)
        return lines

    def run(self) -> None:
        """Kill each process with SIGKILL once a third of its work is done, then restart it."""
        from sqlalchemy import func, select

        from huiqi.core.db import make_engine
        from huiqi.enterprise.models import Enterprise

        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                before = conn.scalar(select(func.count()).select_from(Enterprise)) or 0
            seen, offset = 0, 0
            log = OUT / "dispatcher-0.log" if self.channel == "sms" else self.sink_file
            while not (self.dispatcher_killed and self.import_killed) and not self.stop.wait(0.25):
                if not self.dispatcher_killed:
                    if log.exists():
                        with log.open("rb") as fh:
                            fh.seek(offset)
                            chunk = fh.read()
                        whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
                        offset += len(whole)
                        lines = whole.decode("utf-8", "replace").splitlines(keepends=True)
                        keys = received_keys(lines, self.channel)
                        seen += sum(n for k, n in keys.items() if k in self.expected)
                    if seen >= len(self.expected) * KILL_AT:
                        self._kill_dispatcher(engine)
                    elif self.dispatchers[0].poll() is not None:
                        self.note("dispatcher exited before the kill")
                        self.dispatcher_killed = True
                if not self.import_killed:
                    with engine.connect() as conn:
                        count = conn.scalar(select(func.count()).select_from(Enterprise)) or 0
                    if count - before >= len(self.codes) * KILL_AT:
                        self.imports[0].send_signal(signal.SIGKILL)
                        self.imports[0].wait()
                        self.import_killed = True
                        with engine.connect() as conn:
                            after = conn.scalar(select(func.count()).select_from(Enterprise))
                        self.imported_at_kill = int(after or 0) - before
                        self.note(f"import killed: {self.imported_at_kill:,} enterprises in")
                        self.start_import()
                    elif self.imports[0].poll() is not None:
                        self.note("import finished before the kill")
                        self.import_killed = True
        except Exception as exc:  # reported by the main thread, which stops every process
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            engine.dispose()

    def _kill_dispatcher(self, engine: Any) -> None:
        from sqlalchemy import select

        from huiqi.notify.models import OutboxMessage

        self.dispatchers[0].send_signal(signal.SIGKILL)
        self.dispatchers[0].wait()
        self.dispatcher_killed = True
        with engine.connect() as conn:
            rows = conn.execute(
                select(OutboxMessage.idempotency_key, OutboxMessage.status).where(
                    OutboxMessage.channel == self.channel
                )
            ).all()
        self.in_flight = {k for k, s in rows if s == "sending" and k in self.expected}
        self.sent_at_kill = sum(1 for k, s in rows if s == "sent" and k in self.expected)
        self.note(
            f"dispatcher killed: {self.sent_at_kill:,} recorded sent, "
            f"{len(self.in_flight):,} in flight"
        )
        self.start_dispatcher()

    def stop_all(self) -> None:
        """SIGTERM (then SIGKILL) every process this bench started that is still running."""
        for proc in [*self.dispatchers, *self.imports]:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _outbox(url: str, channel: str) -> tuple[dict[str, str], set[str], Counter[str]]:
    """Every row of the channel: status by key, keys of rows with a failed attempt, statuses."""
    from sqlalchemy import select

    from huiqi.core.db import make_engine
    from huiqi.notify.models import OutboxMessage

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                OutboxMessage.idempotency_key, OutboxMessage.status, OutboxMessage.history
            ).where(OutboxMessage.channel == channel)
        ).all()
    engine.dispose()
    statuses = {k: s for k, s, _ in rows}
    failed = {k for k, _, h in rows if any(not step.get("ok") for step in h or [])}
    return statuses, failed, Counter(statuses.values())


def _wait_sent(url: str, ids: range, timeout: float) -> bool:
    """Poll until the rows with these ids (the bench's, queued together) are sent; False on timeout."""
    from sqlalchemy import func, select

    from huiqi.core.db import make_engine
    from huiqi.notify.models import OutboxMessage

    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                sent = conn.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.id.between(ids.start, ids.stop - 1),
                        OutboxMessage.status == "sent",
                    )
                )
            if sent == len(ids):
                return True
            time.sleep(2)
        return False
    finally:
        engine.dispose()


# -- one backend -----------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, wrk: str) -> bool:
    """Prepare, load, kill, restart and count on one backend; True when every check passes."""
    workers = 1 if backend == "sqlite" else args.pg_workers
    print(f"\n{backend}, {workers} worker{'s' if workers > 1 else ''}", flush=True)
    started = time.perf_counter()
    template = _template(backend, args.size, args.pg_name, args.fresh)
    env, url = _run_database(backend, template, args.pg_name)
    csv_path, codes = _import_file(url, args.rows)
    reference = _reference(backend, template, csv_path, codes, args.pg_name)
    hook_port = bench_dispatch._port()
    sink_file = OUT / "webhook-keys.txt"
    sink_file.unlink(missing_ok=True)
    expected, ids = _queue(url, args.outbox, args.channel, f"http://127.0.0.1:{hook_port}")
    print(
        f"· prepared in {time.perf_counter() - started:.0f} s: {len(expected):,} {args.channel} "
        f"messages queued, {len(codes):,} enterprises to import (reference import done); "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    header = (
        f"{'server':<12} {'target':<9} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7} {'timeouts':>8}  ratio  µs cpu  ratio"
    )
    print(header)
    baselines: dict[int, bench_load.Cell] = {}
    bare = bench_load.Server(
        [sys.executable, "-m", "uvicorn", "bench.load.bare_app:app", "--no-access-log",
         "--workers", str(workers), "--log-level", "warning"],
        {**env, "PYTHONPATH": str(HERE.parent)},
        f"province-bare-{backend}",
    )  # fmt: skip
    try:
        bare.wait_ready()
        for c in args.conns:
            data = bench_load._run_wrk(wrk, bare, ["/healthz"], "", c, args.duration)
            baselines[c] = bench_load._cell(f"bare ×{workers}", "healthz", c, data)
            bench_load._print(baselines[c], None)
    finally:
        bare.stop()

    push_env = env | {
        "HUIQI_NOTIFY_CHANNEL_RATES": json.dumps(dict.fromkeys(("sms", "email", "webhook"), 10**7)),
        "HUIQI_NOTIFY_BATCH_SIZE": str(args.batch),
        "HUIQI_NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
        "HUIQI_NOTIFY_POLL_SECONDS": "0.5",
        "HUIQI_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    smtp_sink = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    sinks: list[subprocess.Popen[bytes]] = []
    server = bench_load.Server(
        [*HUIQI, "serve", "--workers", str(workers)], env, f"province-{backend}"
    )
    chaos = Chaos(push_env, url, args.channel, expected, csv_path, codes, sink_file)
    cells: list[bench_load.Cell] = []
    try:
        server.wait_ready()
        if args.channel == "webhook":
            hook = subprocess.Popen(
                [sys.executable, str(HERE / "dispatch" / "webhook_sink.py"), str(hook_port),
                 str(sink_file)],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            sinks.append(hook)
            assert hook.stdout is not None
            hook.stdout.readline()
        if smtp_sink:  # the e-mails the import's matching queues go somewhere, not to retries
            smtp_port = bench_dispatch._port()
            sinks.append(
                subprocess.Popen(
                    [smtp_sink, "-u", "postfix", f"127.0.0.1:{smtp_port}", "1024"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            chaos.env |= {"HUIQI_SMTP_HOST": "127.0.0.1", "HUIQI_SMTP_PORT": str(smtp_port)}
        cookie = bench_load._login(server.base, "enterprise")
        pid = bench_load._policy_id(server.base)
        plan = {
            "healthz": (["/healthz"], ""),
            "policy": ([f"/policy/{pid}"], ""),
            "search": ([f"/api/v1/policy/search?q={quote(q)}" for q in bench_load.SEARCHES], ""),
            "mine": (["/matching/mine"], cookie),
            "inbox": (["/notify/inbox"], cookie),
        }
        chaos.started = time.monotonic()
        chaos.start_dispatcher()
        chaos.start_import()
        monitor = threading.Thread(target=chaos.run, name="chaos", daemon=True)
        monitor.start()
        for c in args.conns:
            for target in args.targets:
                paths, cookie_header = plan[target]
                data = bench_load._run_wrk(wrk, server, paths, cookie_header, c, args.duration)
                cells.append(bench_load._cell(f"huiqi ×{workers}", target, c, data))
                bench_load._print(cells[-1], baselines.get(c))
        chaos.note("load done")
        monitor.join(args.timeout)
        chaos.stop.set()
        if chaos.error:
            raise SystemExit(f"the kill monitor failed: {chaos.error}")
        rerun = chaos.imports[-1]
        rerun.wait(args.timeout)
        chaos.note(f"import {len(chaos.imports)} exited with status {rerun.returncode}")
        drained = _wait_sent(url, ids, args.timeout)
        chaos.note("every queued message sent" if drained else "timed out waiting for the outbox")
    finally:
        chaos.stop_all()
        for sink in sinks:
            sink.terminate()
            sink.wait(10)
        took = server.stop()
    print(f"graceful shutdown took {took:.1f} s; load average {os.getloadavg()[0]:.1f}")
    for line in chaos.events:
        print(f"  {line}")
    return _verdicts(backend, url, codes, reference, chaos, cells)


def _verdicts(
    backend: str,
    url: str,
    codes: list[str],
    reference: dict[str, tuple[int, str]],
    chaos: Chaos,
    cells: list[bench_load.Cell],
) -> bool:
    """Count and print one verdict line per check; True when all pass."""
    ok = True

    def verdict(check: str, passed: bool, text: str) -> None:
        nonlocal ok
        ok &= passed
        print(f"verdict {backend:<8} {check:<9} {'PASS' if passed else 'FAIL'}  {text}")

    errors = sum(c.errors for c in cells)
    timeouts = sum(c.timeouts for c in cells)
    worst = ", ".join(
        f"{c.target}@{c.connections}: {c.errors} errors, {c.timeouts} timeouts"
        for c in cells
        if c.errors or c.timeouts
    )
    verdict(
        "load",
        errors == 0 and timeouts == 0,
        f"{errors} errors, {timeouts} timeouts over {len(cells)} cells"
        + (f" ({worst})" if worst else ""),
    )

    statuses, failed, tally = _outbox(url, chaos.channel)
    got = count_delivery(
        chaos.expected,
        statuses,
        received_keys(chaos.sink_lines(), chaos.channel),
        chaos.in_flight,
        failed,
    )
    killed = bool(chaos.in_flight) or chaos.sent_at_kill > 0
    verdict(
        "dispatch",
        got.ok and killed,
        f"{got.rows:,} queued: {got.not_sent} not sent, {got.lost} lost, {got.duplicated} "
        f"received twice ({got.outside} of them outside the {len(chaos.in_flight)} in flight at "
        f"the kill), at most {got.most}× a key, {got.unknown} unknown keys"
        + ("" if killed else "; the kill came too late to test anything"),
    )
    print(
        f"  every {chaos.channel} row of the outbox afterwards, by status: {dict(tally)} "
        "(the demo's and the import's own notifications are not waited for)"
    )

    state = import_state(url, codes)
    differences = state_differences(reference, state)
    output = (OUT / f"import-{len(chaos.imports) - 1}.out").read_text().strip().splitlines()
    killed_import = chaos.imported_at_kill is not None
    verdict(
        "import",
        not differences and killed_import and chaos.imports[-1].returncode == 0,
        (
            f"killed with {chaos.imported_at_kill:,} of {len(codes):,} in; "
            if killed_import
            else "not killed (it finished first); "
        )
        + f"rerun: {output[-1] if output else 'no output'}; "
        + (
            "; ".join(differences)
            if differences
            else "equal to a clean import: "
            + ", ".join(f"{count:,} {name}" for name, (count, _) in state.items())
        ),
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the province scenario on each backend and print the load table and the verdicts."""
    parser = argparse.ArgumentParser(
        prog="python -m bench province", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    parser.add_argument("--outbox", type=int, default=100_000, help="messages queued")
    parser.add_argument("--rows", type=int, default=100_000, help="enterprises in the import file")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk cell")
    parser.add_argument("--connections", default="32,256", help="comma-separated, e.g. 32,256")
    parser.add_argument("--targets", default="healthz,policy,search,mine", help=",".join(TARGETS))
    parser.add_argument("--channel", choices=("sms", "webhook"), default="sms")
    parser.add_argument("--batch", type=int, default=500, help="HUIQI_NOTIFY_BATCH_SIZE")
    parser.add_argument("--pg-workers", type=int, default=2, help="worker processes on PostgreSQL")
    parser.add_argument("--size", type=int, default=3000, help="demo enterprises")
    parser.add_argument("--pg-name", default="huiqi_bench_province", help="scratch database")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each end")
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo template")
    args = parser.parse_args(argv)
    args.conns = [int(c) for c in args.connections.split(",") if c]
    args.targets = [t for t in args.targets.split(",") if t]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    if min(args.outbox, args.rows) < 3:
        parser.error("--outbox and --rows must be at least 3 (a third of each is done at the kill)")
    wrk = bench_load._wrk()
    if wrk is None:
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    bench_load.OUT.mkdir(parents=True, exist_ok=True)  # the servers' logs
    print(
        f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"{args.outbox:,} {args.channel} messages, {args.rows:,} enterprises to import, "
        f"{args.duration} s per cell"
    )
    ok = True
    for backend in args.backend or ["sqlite", "postgres"]:
        ok &= run_backend(backend, args, wrk)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
