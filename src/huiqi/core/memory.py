"""This process's peak memory, as the import's reading process and the benchmarks report it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB.

    ru_maxrss survives exec on Linux and would report the parent's size at fork time, so the
    kernel's per-address-space high-water mark (VmHWM) is read instead where it exists.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
