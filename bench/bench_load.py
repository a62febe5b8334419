"""Load benchmark: huiqi under wrk on SQLite (1 worker) and PostgreSQL (2 workers), beside a bare app.

    .venv/bin/python -m bench load                      # 10 s per cell, 32 and 256 connections
    .venv/bin/python -m bench load --duration 60        # the full target
    .venv/bin/python -m bench load --backends sqlite --targets healthz,policy --connections 32

One command: it prepares a database per backend with the demo data (kept under bench/out/load
and reused; --fresh rebuilds), starts `huiqi serve` on it, logs in as every demo role, and drives
/healthz, a policy page, the policy search API (融资担保, 专精特新, 高校毕业生 in turn),
/matching/mine and /notify/inbox (logged in as the enterprise) with wrk (Debian package `wrk`),
2 s client timeout. The baseline is a bare FastAPI app with one sync route on the same uvicorn with
the same number of workers, measured in the same run. Printed per cell: req/s, p50 and p99
latency, errors (connect, read, write, HTTP status ≥ 400), timeouts, the ratio to the baseline,
and the server's CPU time per request (all its processes, read from /proc) with its ratio to the
baseline's: on a shared machine the CPU columns are the comparable ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "load"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# BENCH_LOAD_PG_DB names another database, e.g. for two checkouts on one server
PG_NAME = os.environ.get("BENCH_LOAD_PG_DB", "huiqi_bench_load")
SEARCHES = ("融资担保", "专精特新", "高校毕业生")
TARGETS = ("healthz", "policy", "search", "mine", "inbox")
# connections that ask for each path before a cell: with 2 workers, all 8 reach the same one
# in under 1 % of runs
PRIME_CONNECTIONS = 8
DEMO_LOGINS = {
    "admin": "huiqi-admin-2020",
    "officer": "huiqi-officer-2020",
    "enterprise": "huiqi-enterprise-2020",
    "bank": "huiqi-bank-2020",
}


@dataclass
class Cell:
    """One wrk run's outcome."""

    backend: str
    target: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    timeouts: int
    cpu_us: float | None  # the server's CPU time (all its processes) per request
    busiest: float | None = None  # the busiest worker's share of the workers' CPU time


def _wrk() -> str | None:
    """The wrk binary; installed from Debian when missing and possible."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed; trying `apt-get install -y wrk` (Debian package)", flush=True)
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            check=False,
            capture_output=True,
        )
    found = shutil.which("wrk")
    if not found:
        print("wrk is not available: install it with `apt-get install wrk`", file=sys.stderr)
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its live descendants (Linux /proc), else None."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    todo = [pid]
    try:
        while todo:
            current = todo.pop()
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    except (OSError, IndexError, ValueError):
        return None
    return total / ticks


def _children(pid: int) -> list[int]:
    """The direct child processes of `pid` (the workers of a supervisor), else []."""
    try:
        return [
            int(c)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
    except (OSError, ValueError):
        return []


def _worker_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each worker process of the server `pid` (empty with one process)."""
    found: dict[int, float] = {}
    for child in _children(pid):
        seconds = _cpu_seconds(child)
        if seconds is not None:
            found[child] = seconds
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _huiqi(*args: str, env: dict[str, str], quiet: bool = True) -> None:
    """Run the huiqi command line with the benchmark's environment."""
    cmd = [sys.executable, "-c", "from huiqi.cli.main import main; main()", *args]
    out = subprocess.run(cmd, env=env, capture_output=quiet, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"huiqi {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")


def _database(backend: str, size: int, fresh: bool) -> dict[str, str]:
    """Environment for a backend's demo database, built (migrate + demo load) when needed."""
    env = {**os.environ, "HUIQI_COOKIE_SECURE": "false", "HUIQI_ENV": "development"}
    env.pop("HUIQI_CONFIG_FILE", None)
    if backend == "sqlite":
        folder = OUT / "sqlite"
        marker = folder / f".demo-{size}"
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        env["HUIQI_DATA_DIR"] = str(folder)
        env.pop("HUIQI_DATABASE_URL", None)
    else:
        from sqlalchemy import text

        from huiqi.core.db import make_engine

        OUT.mkdir(parents=True, exist_ok=True)
        marker = OUT / f".pg-demo-{size}"
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_NAME}
            )
            if fresh or not exists or not marker.exists():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
                marker.unlink(missing_ok=True)
        admin.dispose()
        env["HUIQI_DATABASE_URL"] = PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_NAME}"
        env["HUIQI_DATA_DIR"] = str(OUT / "pg-data")
    _huiqi("db", "upgrade", env=env)  # a kept database may predate newer migrations
    if not marker.exists():
        print(f"· {backend}: loading the demo data ({size} enterprises)", flush=True)
        started = time.perf_counter()
        _huiqi("demo", "load", "--size", str(size), env=env)
        marker.touch()
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return env


class Server:
    """A server process on a free port, stopped on exit."""

    def __init__(self, cmd: list[str], env: dict[str, str], name: str) -> None:
        self.port = _free_port()
        self.name = name
        self.log = (OUT / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 90) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log.name}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"{self.name} did not become healthy; see {self.log.name}")

    def stop(self) -> float:
        """SIGTERM and wait; returns the seconds the graceful shutdown took."""
        started = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return time.monotonic() - started


def _login(base: str, role: str) -> str:
    """Log in as a demo role; returns the Cookie header of the session."""
    import re

    import httpx

    with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
        page = client.get("/login")
        found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        if found is None:
            raise SystemExit("no CSRF token on /login")
        answer = client.post(
            "/login",
            data={"username": role, "password": DEMO_LOGINS[role], "csrf_token": found.group(1)},
        )
        if answer.status_code != 303 or "huiqi_session" not in client.cookies:
            raise SystemExit(f"log-in as {role} failed: HTTP {answer.status_code}")
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def _policy_id(base: str) -> int:
    import httpx

    items = httpx.get(base + "/api/v1/policy/policies?limit=1", timeout=10).json()["items"]
    if not items:
        raise SystemExit("no published policy in the demo data")
    return int(items[0]["id"])


def _run_wrk(
    wrk: str, server: Server, paths: list[str], cookie: str, connections: int, duration: int
) -> dict[str, float]:
    """One wrk run; the Lua script prints a JSON summary line (the server's CPU time added)."""
    import httpx

    base = server.base
    time.sleep(2)  # let the previous cell's queued requests drain
    # Every path must answer 200 before it is measured, in every worker: each request opens a
    # connection of its own, which the kernel hands to a worker by a hash of its port, so a
    # worker's first view of a page (made once while the others wait) is not part of the cell.
    for path in paths:
        for _ in range(PRIME_CONNECTIONS):
            status = httpx.get(base + path, headers={"Cookie": cookie}, timeout=30).status_code
            if status != 200:
                raise SystemExit(f"{path} answered HTTP {status} before the run")
    env = {**os.environ, "BENCH_PATHS": "\n".join(paths), "BENCH_COOKIE": cookie}
    cpu_before = _cpu_seconds(server.proc.pid)
    workers_before = _worker_cpu(server.proc.pid)
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "2s",
            "-s",
            str(HERE / "load" / "wrk.lua"),
            base,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON "))
    data: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
    cpu_after = _cpu_seconds(server.proc.pid)
    if cpu_before is not None and cpu_after is not None:
        data["server_cpu_s"] = cpu_after - cpu_before
    workers_after = _worker_cpu(server.proc.pid)
    spent = [workers_after[p] - workers_before[p] for p in workers_after if p in workers_before]
    if len(spent) > 1 and sum(spent) > 0:
        # how the workers shared the work: the busiest one's part of their CPU time
        data["busiest_worker_share"] = max(spent) / sum(spent)
    return data


def _cell(backend: str, target: str, conns: int, data: dict[str, float]) -> Cell:
    seconds = data["duration_us"] / 1e6
    return Cell(
        backend=backend,
        target=target,
        connections=conns,
        rps=data["requests"] / seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["connect"] + data["read"] + data["write"] + data["status"]),
        timeouts=int(data["timeout"]),
        cpu_us=data["server_cpu_s"] * 1e6 / data["requests"]
        if "server_cpu_s" in data and data["requests"]
        else None,
        busiest=data.get("busiest_worker_share"),
    )


def _print(cell: Cell, baseline: Cell | None) -> None:
    ratio = f"{cell.rps / baseline.rps:5.2f}" if baseline and baseline.rps else "    —"
    cpu = f"{cell.cpu_us:>7.0f}" if cell.cpu_us is not None else "      —"
    cpu_ratio = (
        f"{cell.cpu_us / baseline.cpu_us:5.2f}"
        if baseline and baseline.cpu_us and cell.cpu_us is not None
        else "    —"
    )
    busiest = f"{cell.busiest:8.2f}" if cell.busiest is not None else "       —"
    print(
        f"{cell.backend:<12} {cell.target:<9} {cell.connections:>5} {cell.rps:>9,.0f} "
        f"{cell.p50_ms:>8.1f} {cell.p99_ms:>8.1f} {cell.errors:>7} {cell.timeouts:>8}  {ratio}"
        f"  {cpu}  {cpu_ratio}  {busiest}",
        flush=True,
    )


def _baselines(
    wrk: str, env: dict[str, str], workers: int, conns: list[int], duration: int, backend: str
) -> dict[int, Cell]:
    """The bare app's /healthz cells, by connection count (printed as they finish)."""
    baselines: dict[int, Cell] = {}
    bare = Server(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.load.bare_app:app",
            "--no-access-log",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        {**env, "PYTHONPATH": str(HERE.parent)},
        f"bare-{backend}",
    )
    try:
        bare.wait_ready()
        for c in conns:
            cell = _cell(
                f"bare ×{workers}",
                "healthz",
                c,
                _run_wrk(wrk, bare, ["/healthz"], "", c, duration),
            )
            baselines[c] = cell
            _print(cell, None)
    finally:
        bare.stop()
    return baselines


def main(argv: list[str] | None = None) -> int:
    """Run the load benchmark and print one line per (backend, target, connections)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell (target: 60)")
    parser.add_argument("--connections", default="32,256", help="comma-separated, e.g. 32,256")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres")
    parser.add_argument("--targets", default=",".join(TARGETS), help=",".join(TARGETS))
    parser.add_argument("--pg-workers", type=int, default=2, help="worker processes on PostgreSQL")
    parser.add_argument("--size", type=int, default=3000, help="demo enterprises")
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo databases")
    parser.add_argument(
        "--no-bare",
        action="store_true",
        help="skip the bare app's baseline cells (shorter runs; no ratio columns)",
    )
    args = parser.parse_args(argv)
    wrk = _wrk()
    if wrk is None:
        return 2
    conns = [int(c) for c in args.connections.split(",") if c]
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'server':<12} {'target':<9} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'timeouts':>8}  ratio  µs cpu  ratio  busiest"
    for backend in [b for b in args.backends.split(",") if b]:
        workers = 1 if backend == "sqlite" else args.pg_workers
        env = _database(backend, args.size, args.fresh)
        print(
            f"\n{backend}, {workers} worker{'s' if workers > 1 else ''}, {args.duration} s per cell"
        )
        print(header)
        baselines: dict[int, Cell] = {}
        if not args.no_bare:
            baselines = _baselines(wrk, env, workers, conns, args.duration, backend)
        server = Server(
            [
                sys.executable,
                "-c",
                "from huiqi.cli.main import main; main()",
                "serve",
                "--workers",
                str(workers),
            ],
            env,
            f"huiqi-{backend}",
        )
        try:
            server.wait_ready()
            cookies = {role: _login(server.base, role) for role in DEMO_LOGINS}
            pid = _policy_id(server.base)
            plan = {
                "healthz": (["/healthz"], ""),
                "policy": ([f"/policy/{pid}"], ""),
                "search": ([f"/api/v1/policy/search?q={quote(q)}" for q in SEARCHES], ""),
                "mine": (["/matching/mine"], cookies["enterprise"]),
                "inbox": (["/notify/inbox"], cookies["enterprise"]),
            }
            for target in targets:
                paths, cookie = plan[target]
                for c in conns:
                    data = _run_wrk(wrk, server, paths, cookie, c, args.duration)
                    _print(
                        _cell(f"huiqi ×{workers}", target, c, data),
                        baselines.get(c),
                    )
        finally:
            took = server.stop()
            print(f"graceful shutdown took {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
