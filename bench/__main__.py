"""Run the benchmarks: `python -m bench` runs all, `python -m bench match --quick` runs one with options."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _modules() -> list[str]:
    """The benchmark names (bench_<name>.py beside this file)."""
    here = Path(__file__).parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    """Run the named benchmark (or all of them) and return the exit status."""
    names = _modules()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [{'|'.join(names)}] [options]")
        return 0
    chosen = [argv[0]] if argv and not argv[0].startswith("-") else names
    options = argv[1:] if argv and not argv[0].startswith("-") else argv
    status = 0
    for name in chosen:
        if name not in names:
            print(f"unknown benchmark {name!r}; choose from {', '.join(names)}", file=sys.stderr)
            return 2
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== bench {name} ==", flush=True)
        status |= int(module.main(options) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
