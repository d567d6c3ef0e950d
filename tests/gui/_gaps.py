"""The longest stall of the GUI thread during an action: a 50 ms timer's largest gap."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from qtpy.QtCore import QTimer


class Gaps:
    """Ticks of a 50 ms timer; ``longest`` is the largest interval between two (seconds)."""

    def __init__(self) -> None:
        self.ticks: list[float] = []

    @property
    def longest(self) -> float:
        t = self.ticks
        return max((b - a for a, b in itertools.pairwise(t)), default=0.0)


@contextmanager
def gui_gaps() -> Iterator[Gaps]:
    gaps = Gaps()
    timer = QTimer()
    timer.timeout.connect(lambda: gaps.ticks.append(time.perf_counter()))
    gaps.ticks.append(time.perf_counter())
    timer.start(50)
    try:
        yield gaps
    finally:
        timer.stop()
        gaps.ticks.append(time.perf_counter())


def longest_gap(action: Callable[[], object], until: Callable[[], bool], qtbot, timeout=600_000):
    """Run ``action`` on the GUI thread, wait for ``until``; the longest GUI stall (s)."""
    with gui_gaps() as gaps:
        qtbot.wait(120)
        action()
        qtbot.waitUntil(until, timeout=timeout)
        qtbot.wait(120)
    return gaps.longest
