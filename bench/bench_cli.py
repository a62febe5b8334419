"""Command-line start-up: `huiqi --help` and `huiqi policy parse FILE --json` against bare Python.

    .venv/bin/python -m bench cli [--runs 10]

Each command runs `--runs` times in a fresh process (after one warm-up run); the report prints the
median wall time and the ratio to `python -c pass` measured in the same run, so a busy machine
shows up in the baseline too. Target: `huiqi --help` ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "src/huiqi/policy/data/samples/gansu-gongxinfa-2020-351.txt"
)
HUIQI = [sys.executable, "-c", "from huiqi.cli.main import main; main()"]


def _median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Time the commands and print median seconds and ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench cli")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    base = _median_seconds([sys.executable, "-c", "pass"], args.runs)
    print(f"python -c pass                          {base:6.3f} s")
    for label, cmd in (
        ("huiqi --help", [*HUIQI, "--help"]),
        ("huiqi policy parse SEED --json", [*HUIQI, "policy", "parse", str(SAMPLE), "--json"]),
    ):
        took = _median_seconds(cmd, args.runs)
        print(f"{label:<39} {took:6.3f} s  ({took / base:4.1f}× bare Python)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
