"""Matching pipeline benchmark: from a registry import to queued notifications, as an operator runs it.

    .venv/bin/python -m bench pipeline --enterprises 100000 --rules 300 --backend sqlite
    .venv/bin/python -m bench pipeline --enterprises 400000 --rules 300 --backend postgres

One process, one fresh database (SQLite file, or a scratch PostgreSQL database `huiqi_bench_pipeline`
dropped and rebuilt). Steps, each timed:

1. generate the province (`huiqi demo population`'s generator) and import it as a template CSV;
2. publish R rules in the documented YAML format: the 11 library rules and variants of its push
   and apply rules whose numeric thresholds are scaled (×0.5 … ×2, as another department's
   measure would set them); the library's auto_grant rule is not multiplied (a province funds
   few no-application measures);
3. first full run (`matching.service.match`, committing per batch as `huiqi match run` does):
   evaluate, store changed results, grants, notifications with their outbox rows;
4. a second run with nothing changed;
5. a nightly feed: 5 % of the enterprises get new figures, imported as a file (the registry change
   re-matches only them, through the EnterpriseChanged event);
6. one rule's threshold changes: the new version is published and only that rule re-evaluated.

Printed per step: seconds per phase, rows written, notifications and outbox rows queued; then peak
memory (VmHWM) and the ratio of the first run's whole time to the engine's pure evaluation time
(`run_batch` over the same frame and rules, measured in the same run).

`--lock FILE` holds an flock on FILE during each timed matching step only (so generating and
importing a large province never hold a shared machine's benchmark lock). `--probe` starts
`huiqi serve` on the same database and drives `/healthz` and `/policy/{id}` with wrk (Debian
package) during the first full run, then prints their p99 latency.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bench.lock import held
from huiqi.core.memory import peak_rss_mb

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
ON = date(2025, 6, 30)
FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0, 0.6, 0.8, 1.2, 1.75)
NUMBER = re.compile(r"^(\d+(?:\.\d+)?)(.*)$")


def _reset_peak() -> bool:
    """Start a new peak-memory reading at the current RSS (Linux clear_refs 5); False if unable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _fresh_database(backend: str, workdir: Path, pg_name: str) -> str:
    from sqlalchemy import text

    from huiqi.core import migrate
    from huiqi.core.db import make_engine

    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'pipeline.db'}"
    else:
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{pg_name}"
    migrate.upgrade(url)
    return url


def _scaled(value: Any, factor: float) -> Any:
    """A threshold scaled by a factor, keeping its unit (500万元 → 750万元)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return type(value)(round(value * factor))
    if isinstance(value, str) and (m := NUMBER.match(value)):
        number = float(m.group(1)) * factor
        text = str(int(round(number))) if number >= 10 else f"{number:.2f}".rstrip("0").rstrip(".")
        return f"{text}{m.group(2)}"
    return value


def _vary(node: Any, factor: float) -> Any:
    """The condition tree with every numeric comparison threshold scaled."""
    if isinstance(node, dict):
        if "field" in node and "value" in node and node.get("op") in ("<", "<=", ">", ">="):
            return {**node, "value": _scaled(node["value"], factor)}
        return {k: _vary(v, factor) for k, v in node.items()}
    if isinstance(node, list):
        return [_vary(v, factor) for v in node]
    return node


def rule_texts(count: int) -> list[str]:
    """`count` rule files in the documented format: the library rules, then threshold variants."""
    from huiqi.rules.library import load_library

    lib = load_library()
    base = [lib.rules[rid].source for rid in sorted(lib.rules)]
    texts = list(base[:count])
    # Variants are of the push and apply measures: a 免申即享 (auto_grant) measure pays out of a
    # budget line, so a province has a handful, which the library rules already stand for.
    base = [
        lib.rules[rid].source
        for rid in sorted(lib.rules)
        if lib.rules[rid].doc.mode != "auto_grant"
    ]
    k = 0
    while len(texts) < count:
        source = base[k % len(base)]
        doc = yaml.safe_load(source)
        variant = k // len(base) + 1
        factor = FACTORS[(k + variant) % len(FACTORS)]
        doc["id"] = f"{doc['id']}-v{variant:02d}"
        doc["title"] = {
            "zh": f"{doc['title']['zh']}(变体{variant})",
            "en": f"{doc['title']['en']} (variant {variant})",
        }
        doc["conditions"] = _vary(doc["conditions"], factor)
        texts.append(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        k += 1
    return texts


def _feed(row: dict[str, str]) -> None:
    """The nightly feed's new figures of one enterprise: 7 more employees where the count is
    known, else 1 % more total assets. (Seven persons reported where the count was unknown
    would give an enterprise with billions of revenue over 5 亿元 a head, which the import
    rejects, rightly, as 元 entered in the 万元 column.)"""
    if row.get("employees"):
        row["employees"] = str(int(row["employees"]) + 7)
    elif row.get("total_assets"):
        row["total_assets"] = f"{float(row['total_assets']) * 1.01:.2f}"


class _Probe:
    """`huiqi serve` on the bench database with wrk on /healthz and a policy page meanwhile."""

    def __init__(self, url: str, workdir: Path, policy_id: int) -> None:
        from bench.bench_load import HERE, OUT, Server, _wrk

        OUT.mkdir(parents=True, exist_ok=True)

        env = {**os.environ, "HUIQI_DATABASE_URL": url, "HUIQI_DATA_DIR": str(workdir / "data")}
        env.update(HUIQI_COOKIE_SECURE="false", HUIQI_ENV="development")
        env.pop("HUIQI_CONFIG_FILE", None)
        cli = [sys.executable, "-c", "from huiqi.cli.main import main; main()", "serve"]
        self.server = Server(cli, env, "pipeline-probe")
        self.server.wait_ready()
        wrk = _wrk()
        if wrk is None:
            raise SystemExit("--probe needs wrk (apt-get install wrk)")
        self.paths = ["/healthz", f"/policy/{policy_id}"]
        self.procs = [
            subprocess.Popen(
                [
                    wrk,
                    "-t1",
                    "-c4",
                    "-d600s",
                    "--timeout",
                    "5s",
                    "-s",
                    str(HERE / "load" / "wrk.lua"),
                    self.server.base,
                ],
                env={**os.environ, "BENCH_PATHS": path},
                stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for path in self.paths
        ]

    def stop(self) -> list[str]:
        """Stop wrk and the server; one line per path with requests and p50/p99 latency."""
        import json
        import signal

        out = []
        for path, proc in zip(self.paths, self.procs, strict=True):
            proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
            stdout, _ = proc.communicate(timeout=60)
            line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), "")
            data = json.loads(line.removeprefix("BENCH_JSON ")) if line else {}
            errors = sum(int(data.get(k, 0)) for k in ("connect", "read", "write", "status"))
            out.append(
                f"{path:<20s} {int(data.get('requests', 0)):7d} requests  "
                f"p50 {data.get('p50_us', 0) / 1000:7.1f} ms  p99 {data.get('p99_us', 0) / 1000:7.1f} ms"
                f"  errors {errors}  timeouts {int(data.get('timeout', 0))}"
            )
        self.server.stop()
        return out


def _counts(session: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from huiqi.grants.models import Grant
    from huiqi.matching.models import MatchState
    from huiqi.notify.models import Notification, OutboxMessage

    def n(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "results": n(MatchState),
        "notifications": n(Notification),
        "outbox": n(OutboxMessage),
        "grants": n(Grant),
    }


def _line(
    name: str, seconds: float, report: Any, before: dict[str, int], after: dict[str, int]
) -> None:
    phases = ""
    if report is not None:
        phases = " · ".join(f"{k} {v:6.1f}s" for k, v in report.seconds.items())
        phases = (
            f"  [{phases}]  pairs {report.evaluated:,}; skipped {report.skipped:,} enterprises; "
            f"rows written {report.inserted:,} ins {report.updated:,} upd "
            f"({report.moved:,} kept, their layout moved); "
            f"changes {report.changes:,}"
        )
    queued = ", ".join(f"+{after[k] - before[k]:,} {k}" for k in after)
    print(f"{name:<24s} {seconds:8.1f} s{phases}\n{'':<24s} {queued}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline steps on a fresh database and print the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=300)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-name", default="huiqi_bench_pipeline")
    parser.add_argument("--batch-size", type=int, default=None, help="enterprises per batch")
    parser.add_argument("--lock", default=None, help="flock this file during each timed step")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="wrk on /healthz and a policy page during the first run",
    )
    args = parser.parse_args(argv)

    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from huiqi.core.db import make_engine
    from huiqi.enterprise.importer import run_import
    from huiqi.enterprise.population import generate, write_file
    from huiqi.enterprise.service import current_frame
    from huiqi.matching import run as matching_run
    from huiqi.matching import service as matching
    from huiqi.matching.models import MatchState
    from huiqi.policy.models import Policy
    from huiqi.policy.service import load_demo as load_policy
    from huiqi.rules.batch import run_batch
    from huiqi.rules.plan import compile_plan
    from huiqi.wiring import install

    install()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = _fresh_database(args.backend, workdir, args.pg_name)
        engine = make_engine(url)
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        print(
            f"pipeline: {args.enterprises:,} enterprises × {args.rules} rules on {args.backend}",
            flush=True,
        )

        clock = time.perf_counter()
        rows = generate(args.enterprises, seed=2020)
        pop = workdir / "population.csv"
        write_file(rows, pop)
        # only the nightly feed's 5 % is needed later: the generator's province (about 3 kB a
        # row of Python strings) would otherwise count in the peak memory of the matching steps
        changed = rows[::20]
        del rows
        gc.collect()
        generated = time.perf_counter() - clock
        clock = time.perf_counter()
        imported = run_import(factory, pop, batch_size=5000, today=ON)
        print(
            f"{'generate':<24s} {generated:8.1f} s\n{'import':<24s} "
            f"{time.perf_counter() - clock:8.1f} s  {imported.counts()}",
            flush=True,
        )

        clock = time.perf_counter()
        with factory() as session:
            lib = matching.base_library()
            for i, text in enumerate(rule_texts(args.rules)):
                matching.publish_rule(session, lib.parse_rule(text, f"rule-{i}.yaml"), "bench")
            load_policy(session)  # the policy page the probe reads
            session.commit()
            policy_id = int(session.scalar(select(func.min(Policy.id))) or 1)
            before = _counts(session)
        print(f"{'publish rules':<24s} {time.perf_counter() - clock:8.1f} s", flush=True)

        with factory() as session:
            pairs = matching.published_rules(session)
            frame = current_frame(session)
            plan = compile_plan([r for _, r in pairs], ON)
            clock = time.perf_counter()
            run_batch(plan, frame)
            engine_seconds = time.perf_counter() - clock
            del frame
        print(f"{'engine only':<24s} {engine_seconds:8.2f} s  (run_batch, all pairs)", flush=True)
        gc.collect()
        setup_peak = peak_rss_mb()
        matching_peak = _reset_peak()

        def full_run(name: str, probe: bool = False) -> float:
            nonlocal before
            with held(args.lock), factory() as session:
                load = os.getloadavg()[0]
                watch = _Probe(url, workdir, policy_id) if probe else None
                clock = time.perf_counter()
                report = matching.match(
                    session, on=ON, checkpoint=session.commit, batch_size=args.batch_size
                )
                session.commit()
                took = time.perf_counter() - clock
                probed = watch.stop() if watch is not None else []
                after = _counts(session)
            _line(f"{name}", took, report, before, after)
            print(f"{'':<24s} load average {load:.1f} at the start", flush=True)
            for line in probed:
                print(f"{'':<24s} probe {line}", flush=True)
            before = after
            return took

        first = full_run("first full run", probe=args.probe)
        full_run("nothing changed")

        for row in changed:
            _feed(row)
        feed = workdir / "feed.csv"
        write_file(changed, feed)
        captured: list[Any] = []
        real = matching_run.match  # the EnterpriseChanged handler calls run.match

        def spy(*a: Any, **kw: Any) -> Any:
            report = real(*a, **kw)
            captured.append(report)
            return report

        matching_run.match = spy  # type: ignore[assignment]
        with held(args.lock):
            load = os.getloadavg()[0]
            clock = time.perf_counter()
            fed = run_import(factory, feed, batch_size=5000, today=ON)
            took = time.perf_counter() - clock
        matching_run.match = real  # type: ignore[assignment]
        with factory() as session:
            after = _counts(session)
        total = matching.RunReport()
        for r in captured:
            total.add(r)
        _line(f"5% changed ({len(changed):,})", took, total, before, after)
        print(f"{'':<24s} import counts {fed.counts()}; load average {load:.1f}", flush=True)
        before = after

        with held(args.lock), factory() as session:
            load = os.getloadavg()[0]
            rule_id = "gs351-10-procurement-small-micro"
            source = matching.latest_version(session, rule_id).source  # type: ignore[union-attr]
            edited = source.replace("value: [small, micro]", "value: [medium, small, micro]")
            clock = time.perf_counter()
            matching.publish_rule(session, lib.parse_rule(edited, "edited.yaml"), "bench")
            report = matching.match(
                session, on=ON, rule_ids=[rule_id], checkpoint=session.commit,
                batch_size=args.batch_size,
            )  # fmt: skip
            session.commit()
            took = time.perf_counter() - clock
            after = _counts(session)
        _line("one rule changed", took, report, before, after)
        print(f"{'':<24s} load average {load:.1f} at the start", flush=True)

        with factory() as session:
            final = _counts(session)
            packed = session.scalar(
                select(
                    func.sum(func.length(MatchState.results) + func.length(MatchState.conditions))
                )
            )
        print(
            f"stored state rows {final['results']:,} (one per enterprise) for "
            f"{args.enterprises * args.rules:,} pairs; packed codes {int(packed or 0) / 1e6:.1f} MB",
            flush=True,
        )
        if matching_peak:
            print(
                f"peak memory, matching    {peak_rss_mb():8.0f} MB  (VmHWM from the first run on)"
            )
            print(f"peak memory, setup       {setup_peak:8.0f} MB  (generate, import, engine only)")
        else:
            print(f"peak memory (VmHWM)      {peak_rss_mb():8.0f} MB  (whole process)")
        print(f"first run / engine only  {first / engine_seconds:8.0f} ×")
        engine.dispose()
        if args.backend == "sqlite":
            size = sum(p.stat().st_size for p in workdir.glob("pipeline.db*"))
            print(f"database size            {size / 1e6:8.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
