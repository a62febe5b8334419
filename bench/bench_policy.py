"""Time parsing the seed policy against reading and decoding the same file (baseline, same run).

Run: ``make bench`` or ``.venv/bin/python -m bench policy``. Prints ratios, not absolute thresholds.
"""

from __future__ import annotations

import time
from pathlib import Path

from huiqi.policy.ingest import ingest_file
from huiqi.policy.parser import parse_source

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "src" / "huiqi" / "policy" / "data" / "samples" / "gansu-gongxinfa-2020-351.txt"
FIXTURES = REPO / "tests" / "fixtures" / "policy"


def best_of(fn, runs: int = 7) -> float:  # type: ignore[no-untyped-def]
    """Fastest wall time of several runs, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Print ingest and parse times of the seed and its renditions."""
    baseline = best_of(lambda: SEED.read_bytes().decode("utf-8"))
    source = ingest_file(SEED)
    parse_source(source)  # warm caches (registry, topic list, cn2an)
    for label, path in [("seed.txt", SEED), *((p.name, p) for p in sorted(FIXTURES.glob("seed*")))]:
        ingest = best_of(lambda p=path: ingest_file(p))
        src = ingest_file(path)
        parse = best_of(lambda s=src: parse_source(s))
        print(
            f"{label:22s} ingest {ingest * 1000:7.1f} ms  parse {parse * 1000:6.1f} ms  "
            f"(parse = {parse / baseline:8.0f}× reading the file)"
        )
    return 0


if __name__ == "__main__":
    main()
