"""Matching benchmark: 1,000,000 synthetic enterprises × 300 rules of five threshold conditions each.

    .venv/bin/python bench/bench_match.py                 # full run (1M × 300), SQL on 20k rows
    .venv/bin/python bench/bench_match.py --rows 200000 --sql-rows 20000 --no-openfisca

Measures, in one process and one run:
  1. the three-valued eligibility pass of the batch engine (every rule × every enterprise);
  2. per-condition outcomes of every pair, materialised two bits per condition (uint16 per pair);
  3. peak resident memory of the process;
  4. one enterprise re-matched over all 300 rules with reasons rendered (single evaluator);
and prints ratios against the SQL engine (SQLite, same rules, a row subset scaled per pair) and
against openfisca-core evaluating the same rules on the same data. openfisca-core is AGPL, so it
lives only in bench/.venv-openfisca (created here on first use, never a dependency of huiqi); when
it cannot be installed the comparison is skipped with a message.

Rule thresholds come from a grid of round figures per field (as real policies use: 10 persons,
500万元 …), so rules share conditions the way a real library does; --distinct draws every
threshold at random instead (the worst case: no condition shared).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
OF_VENV = HERE / ".venv-openfisca"
ON = date(2024, 6, 30)
WAN = 1_000_000  # fen per 万元

# field → (unit, threshold grid in stored units, sampler of values)
FIELDS: dict[str, tuple[str, list[int]]] = {
    "employees": ("persons", [10, 20, 50, 100, 200, 300, 500, 1000]),
    "revenue": ("money", [w * WAN for w in (100, 300, 500, 1000, 2000, 5000, 10000, 40000)]),
    "total_assets": ("money", [w * WAN for w in (100, 300, 1000, 2000, 5000, 8000, 20000)]),
    "rd_expense": ("money", [w * WAN for w in (10, 50, 100, 200, 500)]),
    "taxable_income": ("money", [w * WAN for w in (0, 50, 100, 300, 1000)]),
    "export_revenue": ("money", [w * WAN for w in (0, 10, 100, 500)]),
    "graduate_hires": ("persons", [1, 2, 3, 5, 10]),
    "registered_capital": ("money", [w * WAN for w in (10, 50, 100, 500, 1000, 5000)]),
}
OPS = [">=", "<=", ">", "<"]


def population(n: int, seed: int = 7, null_share: float = 0.05) -> pl.DataFrame:
    """Synthetic enterprises: log-normal money figures, a share of every column unknown."""
    rng = np.random.default_rng(seed)
    codes = pl.int_range(0, n, eager=True).cast(pl.Utf8).str.zfill(10)
    cols: dict[str, Any] = {"credit_code": ("91620100" + codes).alias("credit_code")}
    scale = {"employees": (3.0, 1.2), "graduate_hires": (0.3, 1.0)}
    for name in FIELDS:
        mu, sigma = scale.get(name, (15.5, 2.0))
        values = np.floor(rng.lognormal(mu, sigma, n)).astype(np.int64)
        mask = rng.random(n) < null_share
        cols[name] = pl.Series(name, values, dtype=pl.Int64).scatter(np.flatnonzero(mask), None)
    return pl.DataFrame(cols)


def rule_specs(
    count: int, per_rule: int, distinct: bool, seed: int = 11
) -> list[list[tuple[str, str, int]]]:
    """Rules as lists of (field, op, threshold in stored units), five different fields each."""
    rng = np.random.default_rng(seed)
    names = list(FIELDS)
    specs = []
    for _ in range(count):
        fields = rng.choice(names, size=per_rule, replace=False)
        conds = []
        for f in fields:
            unit, grid = FIELDS[str(f)]
            if distinct:
                t = int(rng.integers(grid[0], grid[-1] + 1))
            else:
                t = int(grid[int(rng.integers(0, len(grid)))])
            conds.append((str(f), OPS[int(rng.integers(0, 4))], t))
        specs.append(conds)
    return specs


def rule_yaml(i: int, conds: list[tuple[str, str, int]]) -> str:
    """One synthetic rule in the documented YAML format."""
    lines = []
    for f, op, t in conds:
        value = f"{t}分" if FIELDS[f][0] == "money" else str(t)
        lines.append(f'    - {{field: {f}, op: "{op}", value: {value}}}')
    return (
        f"id: bench-{i}\ntitle: {{zh: 基准规则{i}, en: bench rule {i}}}\n"
        "legal_basis: [{doc_number: 甘工信发〔2020〕351号, article: (二十二)}]\n"
        "department: 省工信厅\nmode: push\nvalid_from: 2021-01-01\n"
        "conditions:\n  all:\n" + "\n".join(lines) + "\n"
    )


def peak_mb() -> float:
    """Peak resident set size of this process in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of `repeat` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def sql_seconds_per_pair(rules: list[Any], frame: pl.DataFrame, rows: int) -> float:
    """The SQL engine on SQLite over `rows` enterprises: seconds per (enterprise, rule) pair."""
    from sqlalchemy import MetaData, create_engine, insert

    from huiqi.rules.plan import compile_plan
    from huiqi.rules.sql import enterprise_table, results_query

    engine = create_engine("sqlite://")
    md = MetaData()
    table = enterprise_table(md)
    md.create_all(engine)
    sub = frame.head(rows).with_row_index("id", offset=1)
    with engine.begin() as conn:
        conn.execute(insert(table), sub.to_dicts())
    plan = compile_plan(rules, ON)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        for r in range(len(plan.rules)):
            conn.execute(results_query(plan, r, table)).all()
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed / (rows * len(plan.rules))


OPENFISCA_SCRIPT = r"""
import json, sys, time
import numpy as np
from openfisca_core.entities import build_entity
from openfisca_core.taxbenefitsystems import TaxBenefitSystem
from openfisca_core.variables import Variable
from openfisca_core.simulation_builder import SimulationBuilder
try:
    from openfisca_core.periods import DateUnit
    YEAR = DateUnit.YEAR
except ImportError:
    from openfisca_core.periods import YEAR

work = sys.argv[1]
spec = json.load(open(f"{work}/rules.json"))
Firm = build_entity(key="firm", plural="firms", label="firm", is_person=True)
tbs = TaxBenefitSystem([Firm])
for name in spec["fields"]:
    tbs.add_variable(type(name, (Variable,), {"value_type": float, "entity": Firm, "definition_period": YEAR, "label": name}))
OPS = {">=": np.greater_equal, "<=": np.less_equal, ">": np.greater, "<": np.less}
def make(conds):
    def formula(firm, period):
        out = None
        for f, op, t in conds:
            part = OPS[op](firm(f, period), t)
            out = part if out is None else out * part
        return out
    return formula
for i, conds in enumerate(spec["rules"]):
    tbs.add_variable(type(f"rule_{i}", (Variable,), {"value_type": bool, "entity": Firm, "definition_period": YEAR, "label": f"rule {i}", "formula": make(conds)}))
n = spec["n"]
sim = SimulationBuilder().build_default_simulation(tbs, count=n)
for name in spec["fields"]:
    # OpenFisca has no missing values: unknown figures become 0 (one of the weaknesses measured here).
    sim.set_input(name, "2024", np.load(f"{work}/{name}.npy"))
t0 = time.perf_counter()
for i in range(len(spec["rules"])):
    sim.calculate(f"rule_{i}", "2024")
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def openfisca_seconds(frame: pl.DataFrame, specs: list[list[tuple[str, str, int]]]) -> float | str:
    """openfisca-core on the same data and rules, in its own virtualenv; a message when unavailable."""
    python = OF_VENV / "bin" / "python"
    if not python.exists():
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(OF_VENV)], check=True, capture_output=True
            )
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "openfisca-core"],
                check=True,
                capture_output=True,
                timeout=900,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            return f"openfisca-core could not be installed in {OF_VENV} ({exc}); comparison skipped"
    with tempfile.TemporaryDirectory() as work:
        for name in FIELDS:
            np.save(
                f"{work}/{name}.npy",
                frame.get_column(name).fill_null(0).to_numpy().astype(np.float64),
            )
        Path(work, "rules.json").write_text(
            json.dumps({"fields": list(FIELDS), "rules": specs, "n": frame.height})
        )
        script = Path(work, "of_bench.py")
        script.write_text(OPENFISCA_SCRIPT)
        proc = subprocess.run([str(python), str(script), work], capture_output=True, text=True)
        if proc.returncode != 0:
            return f"openfisca-core run failed, comparison skipped: {proc.stderr.strip().splitlines()[-1:]}"
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=300)
    ap.add_argument("--conditions", type=int, default=5)
    ap.add_argument(
        "--sql-rows", type=int, default=20_000, help="rows the SQL engine runs on (scaled per pair)"
    )
    ap.add_argument(
        "--distinct", action="store_true", help="every threshold random: no shared conditions"
    )
    ap.add_argument("--no-openfisca", action="store_true")
    args = ap.parse_args(argv)

    from huiqi.rules.batch import run_batch
    from huiqi.rules.evaluate import Evaluator
    from huiqi.rules.library import load_base
    from huiqi.rules.plan import compile_plan

    t_gen, frame = timed(lambda: population(args.rows))
    specs = rule_specs(args.rules, args.conditions, args.distinct)
    lib = load_base()
    rules = [lib.parse_rule(rule_yaml(i, c), f"bench-{i}.yaml") for i, c in enumerate(specs)]
    plan = compile_plan(rules, ON)
    pairs = args.rows * args.rules
    print(
        f"population {args.rows:,} enterprises generated in {t_gen:.1f} s; {args.rules} rules × "
        f"{args.conditions} conditions; {len(plan.prims)} distinct conditions after sharing"
    )

    t_pass, result = timed(lambda: run_batch(plan, frame), repeat=3)
    eligible = sum(result.counts(r)["eligible"] for r in range(len(plan.rules)))
    unknown = sum(result.counts(r)["unknown"] for r in range(len(plan.rules)))
    print(
        f"1. three-valued eligibility pass   {t_pass:7.3f} s   (target ≤ 0.35 s)  "
        f"{eligible:,} eligible, {unknown:,} unknown pairs"
    )

    t_codes, codes = timed(result.condition_code_matrix)
    print(
        f"2. per-condition outcomes, all pairs {t_codes:5.3f} s   (target ≤ 2 s)     "
        f"{codes.nbytes / 2**20:,.0f} MiB at 2 bits × {args.conditions} per pair"
    )
    del codes

    row = {k: (None if v is None else v) for k, v in frame.row(123, named=True).items()}
    row.pop("credit_code")
    evaluator = Evaluator(plan)

    def one(near: bool) -> tuple[float, list[Any]]:
        times, explained = [], []
        for _ in range(21):
            t0 = time.perf_counter()
            explained = evaluator.explain_all(row, near_miss=near)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), explained

    t_one, explained = one(False)
    t_near, explained_near = one(True)
    print(
        f"4. one enterprise × {args.rules} rules, reasons {t_one * 1000:6.2f} ms  (target ≤ 20 ms)  "
        f"{sum(len(e.conditions) for e in explained)} reasons rendered; with near misses "
        f"{t_near * 1000:.2f} ms ({sum(1 for e in explained_near if e.near_miss)} near-miss sets)"
    )

    per_pair_batch = t_pass / pairs
    sql_rows = min(args.sql_rows, args.rows)
    per_pair_sql = sql_seconds_per_pair(rules, frame, sql_rows)
    print(
        f"   SQL engine (SQLite, {sql_rows:,} rows): {per_pair_sql * pairs:8.1f} s scaled to all pairs → "
        f"batch is {per_pair_sql / per_pair_batch:,.0f}× faster"
    )
    if args.no_openfisca:
        print("   openfisca-core comparison skipped (--no-openfisca)")
    else:
        of = openfisca_seconds(frame, specs)
        if isinstance(of, str):
            print(f"   {of}")
        else:
            print(
                f"   openfisca-core (same rules, same data, nulls as 0): {of:7.3f} s → "
                f"batch eligibility pass is {of / t_pass:,.1f}× faster"
            )
    print(f"3. peak memory                       {peak_mb():7.0f} MB  (target ≤ 1024 MB)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent / "src"))
    raise SystemExit(main(sys.argv[1:]))
