"""Long work as generators: each yields ``Progress`` and returns its result (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """One step of long work: ``step`` of ``total`` done, and what there is to show.

    ``payload`` holds small, JSON-friendly values (a loss, a tile position); ``total`` is 0
    when unknown.
    """

    step: int
    total: int
    payload: dict[str, Any] = field(default_factory=dict)


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
