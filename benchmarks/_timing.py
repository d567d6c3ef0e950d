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
