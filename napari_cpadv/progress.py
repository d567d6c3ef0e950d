"""Long work as generators: each yields ``Progress`` and returns its result (DESIGN.md).

A run made of parts (the tiles of an attack, each with its steps; then the heatmaps) shows
one monotone bar: each part runs ``within`` its share of the whole, so the bar never
jumps back when a part starts. Loops that are not generators (an LCA iteration inside a
detector's forward) are made cancellable by calling ``check`` once an iteration: inside
``cancellable`` it raises ``Cancelled`` as soon as the runner asks to stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")

SCALE = 1000  # steps of a bar made of parts: tenths of a per cent


@dataclass(frozen=True)
class Progress:
    """One step of long work: ``step`` of ``total`` done, and what there is to show.

    ``payload`` holds small, JSON-friendly values (a loss, a tile position); ``total`` is 0
    when unknown.
    """

    step: int
    total: int
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """How much is done, in [0, 1] (0 while the total is unknown)."""
        return min(max(self.step / self.total, 0.0), 1.0) if self.total > 0 else 0.0


Work = Generator[Progress, None, R]


def drive(work: Work[R], on_progress: Callable[[Progress], None] | None = None) -> R:
    """Run ``work`` to completion, passing every ``Progress`` to ``on_progress``."""
    while True:
        try:
            p = next(work)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(p)


def within(work: Work[R], start: float, end: float, **payload: Any) -> Work[R]:
    """Run ``work`` as the part ``[start, end]`` (fractions) of a larger run.

    Its progress is mapped into that share of the whole, in ``SCALE`` steps, and never goes
    back (a part whose own total grows cannot move the bar backwards); ``payload`` is added
    to every step's. Closing this generator (a cancel) closes ``work`` too.
    """
    high = start
    try:
        while True:
            try:
                p = next(work)
            except StopIteration as stop:
                return stop.value
            high = max(high, start + (end - start) * p.fraction)
            yield Progress(round(high * SCALE), SCALE, {**p.payload, **payload})
    finally:
        work.close()


class Cancelled(Exception):
    """The runner asked the work to stop (raised by ``check``)."""


_local = threading.local()


@contextmanager
def cancellable(requested: Callable[[], bool]) -> Iterator[None]:
    """Within this block (on this thread), ``check`` raises ``Cancelled`` once
    ``requested()`` is true."""
    previous = getattr(_local, "requested", None)
    _local.requested = requested
    try:
        yield
    finally:
        _local.requested = previous


def check() -> None:
    """A cancel point for loops that are not generators: raises ``Cancelled`` when the work
    runs inside ``cancellable`` and its runner asked to stop; does nothing otherwise."""
    requested = getattr(_local, "requested", None)
    if requested is not None and requested():
        raise Cancelled("cancelled")
