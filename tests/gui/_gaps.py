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


FLOOR_RATIO = 1.5
"""A long action may stall the GUI thread at most this many times napari's own floor."""


def napari_floor(viewer, qtbot, like, times: int = 3) -> float:
    """The reference run beside an action: the longest GUI-thread stall of napari's own
    add of one layer on the data of ``like`` (the open slide: napari's cost of a layer like
    an adversarial slide, with its first repaint), the longest of ``times`` adds, each
    copy removed after. Under a software GL renderer on 2 cores this is 0.2-0.4 s, above
    the 100 ms of a GPU desktop; an action that adds layers one per turn stalls no longer."""
    kwargs = {"rgb": like.rgb, "multiscale": like.multiscale, "scale": like.scale}
    kwargs |= {"translate": like.translate, "units": like.units}
    longest = 0.0
    for k in range(times):
        name = f"napari floor {k}"

        def add(name: str = name) -> None:
            viewer.add_image(like.data, name=name, **kwargs)

        longest = max(longest, longest_gap(add, lambda: True, qtbot))
        viewer.layers.remove(name)
        qtbot.wait(200)
    return longest
