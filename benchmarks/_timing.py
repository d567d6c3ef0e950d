"""Timing shared by the benchmarks: the median of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(f: Callable[[], object], repeats: int, *, warm: bool = False) -> float:
    """Median seconds of ``repeats`` calls of ``f`` (after one untimed call with ``warm``)."""
    if warm:
        f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_header(**extra: object) -> dict[str, object]:
    """What a benchmark's first printed line records: the machine (with torch's threads and
    version), the date and the commit, and ``extra``."""
    import platform
    import subprocess
    from pathlib import Path

    import torch

    commit = subprocess.run(
        ["git", "-C", str(Path(__file__).resolve().parents[1]), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        **extra,
    }
